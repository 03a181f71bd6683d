"""The NumPy backend's lowering table: how each primitive becomes one line of Python.

`LOWERINGS[prim]` is a `Lowering`: an emitter `(gen, node, args, out) -> str` that
returns the expression computing `node` from the names `args` of its operands
(`out`, when not None, names a buffer the expression may write its result into),
and what the buffer planner needs to know about that expression. A primitive
without an entry is called as a function: its fast kernel from `kernels.KERNELS`
when it has one, else its reference `impl`.

- elementwise primitives whose impl is a NumPy ufunc (`Primitive.ufunc`, set by the
  `elementwise` factory) are called as that ufunc, with `out=`; the "quiet" ones
  (warnings ignored) make the whole body run under one `np.errstate` instead of one
  per op (~1.3 us each on NumPy 2);
- `dot_general` becomes one `np.matmul` with the transposes and reshapes worked out
  at compile time (the generic impl derives them per call), or a broadcasting
  multiply when nothing is contracted (an outer product);
- sums/max/min become `np.add.reduce` & co; shape ops become methods.

Imports numpy and the funconv core and ops (for the primitive records).
"""

from __future__ import annotations

from typing import Callable

import attrs
import numpy as np

from funconv.ir import Apply
from funconv.ops import elementwise as ew
from funconv.ops.linalg import dot_general_p
from funconv.ops.reduce import reduce_max_p, reduce_min_p, reduce_sum_p
from funconv.ops.shape import broadcast_to_p, reshape_p, transpose_p


@attrs.frozen
class Lowering:
    """How one primitive is emitted.

    Attributes:
        emit: `(gen, node, args, out) -> str`, the Python expression.
        fresh: `node -> bool`: the expression returns a new buffer that nothing else
            references (so the code may later write into it, and it never aliases an input).
        elementwise: operands may be passed unbroadcast (NumPy broadcasting does the rest).
        takes_out: the emitter honours `out` (an operand buffer to write the result into).
    """

    emit: Callable[..., str]
    fresh: Callable[[Apply], bool] = lambda n: False
    elementwise: bool = False
    takes_out: bool = False


def _always(n: Apply) -> bool:
    return True


def _ufunc(gen, n: Apply, args, out) -> str:
    p = n.prim
    if p.quiet:
        gen.quiet = True
    uf = gen.bind(p.ufunc, f"_{p.ufunc.__name__}")
    return f"{uf}({', '.join(args)}{f', out={out}' if out else ''})"


def _select(gen, n, args, out) -> str:
    return f"{gen.bind(np.where, '_where')}({', '.join(args)})"


def _reducer(ufunc: np.ufunc) -> Lowering:
    def emit(gen, n, args, out) -> str:
        red = gen.bind(ufunc.reduce, f"_{ufunc.__name__}_reduce")
        dt = f", {gen.param(n.dtype)}" if ufunc is np.add else ""
        return f"{red}({args[0]}, {n.params['axes']!r}{dt})"

    return Lowering(emit, fresh=lambda n: bool(n.params["axes"]))


def _convert(gen, n, args, out) -> str:
    if n.args[0].dtype.kind == "c" and n.dtype.kind != "c":
        return gen.call_function(n, args)  # the impl drops the imaginary part explicitly
    return f"{args[0]}.astype({gen.param(n.dtype)})"


def _dot(gen, n: Apply, args, out) -> str:
    """dot_general as one matmul; layout work decided now rather than per call."""
    x, y = n.args
    a, b = args
    (xc, yc), (xb, yb) = n.params["dimension_numbers"]
    mm = gen.bind(np.matmul, "_matmul")
    xn, yn = len(x.shape), len(y.shape)
    if not xb and tuple(xc) == (xn - 1,) and tuple(yc) == (0,) and yn in (1, 2) and xn >= 1:
        return f"{mm}({a}, {b})"  # NumPy's own matmul semantics give exactly this layout
    if not xc and not xb:
        # no contraction: an outer product, which NumPy broadcasting does without a GEMM
        mul = gen.bind(np.multiply, "_multiply")
        xs = f"{a}.reshape({tuple(x.shape) + (1,) * yn!r})" if yn else a
        return f"{mul}({xs}, {b})"
    xf = [i for i in range(xn) if i not in xc and i not in xb]
    yf = [i for i in range(yn) if i not in yc and i not in yb]

    def size(shape, dims):
        return int(np.prod([shape[i] for i in dims], dtype=np.int64))

    B, M, K, N = size(x.shape, xb), size(x.shape, xf), size(x.shape, xc), size(y.shape, yf)
    xs = _relayout(a, x.shape, tuple(xb) + tuple(xf) + tuple(xc), ((B,) if xb else ()) + (M, K))
    ys = _relayout(b, y.shape, tuple(yb) + tuple(yc) + tuple(yf), ((B,) if yb else ()) + (K, N))
    if xb:  # a batch of matrices, which may be strided views (FFT convolution's spectra)
        mm = gen.bind(_batched_matmul, "_batched_matmul")
    code = f"{mm}({xs}, {ys})"
    mm_shape = ((B,) if xb else ()) + (M, N)
    if mm_shape != n.shape:
        code += f".reshape({n.shape!r})"
    return code


def _row_major(a: np.ndarray) -> bool | None:
    """Whether a's matrices (its last two axes) are row-major (True), column-major (False),
    or neither (None: BLAS cannot take them)."""
    (s1, s2), (d1, d2), size = a.strides[-2:], a.shape[-2:], a.itemsize
    if d2 == 1 or (s2 == size and s1 % size == 0 and s1 >= d2 * size):
        return True
    if d1 == 1 or (s1 == size and s2 % size == 0 and s2 >= d1 * size):
        return False
    return None


def _batched_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul of two batches of matrices (..., m, k) @ (..., k, n), with two measured
    fixes (2-core EPYC, NumPy 2.4, OpenBLAS 0.3.31):
    - an operand whose matrices are neither row- nor column-major is copied first:
      `np.matmul` hands BLAS only those and loops in C over the others, slowly (conv11's
      spectra, 9940 frequencies of (4 x 8) @ (8 x 8) complex64: 4.9 ms strided against
      1.0 ms contiguous; the copy costs 0.15 ms);
    - a complex product whose right operand is column-major and left row-major is computed
      as (b^T a^T)^T: OpenBLAS's small complex GEMM with a transposed right operand took
      1.55 ms for that shape, the swapped product 1.12 ms (float32 is the other way round,
      and larger matrices do not care)."""
    ra, rb = _row_major(a), _row_major(b)
    if ra is None:
        a, ra = np.ascontiguousarray(a), True
    if rb is None:
        b, rb = np.ascontiguousarray(b), True
    if a.dtype.kind == "c" and ra and not rb:
        return np.matmul(np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    return np.matmul(a, b)


def _relayout(name: str, shape, perm, new_shape) -> str:
    code = name
    if tuple(perm) != tuple(range(len(shape))):
        code += f".transpose({tuple(perm)!r})"
    if tuple(shape[p] for p in perm) != tuple(new_shape):
        code += f".reshape({tuple(new_shape)!r})"
    return code


LOWERINGS: dict = {
    ew.select_p: Lowering(_select, fresh=_always, elementwise=True),
    ew.convert_element_type_p: Lowering(_convert, fresh=lambda n: n.args[0].dtype != n.dtype),
    dot_general_p: Lowering(_dot, fresh=_always),
    reduce_sum_p: _reducer(np.add),
    reduce_max_p: _reducer(np.maximum),
    reduce_min_p: _reducer(np.minimum),
    reshape_p: Lowering(lambda gen, n, args, out: f"{args[0]}.reshape({n.params['shape']!r})"),
    transpose_p: Lowering(lambda gen, n, args, out: f"{args[0]}.transpose({n.params['perm']!r})"),
    broadcast_to_p: Lowering(lambda gen, n, args, out:
                             f"{gen.bind(np.broadcast_to, '_broadcast_to')}({args[0]}, {n.params['shape']!r})"),
}
_UFUNC = Lowering(_ufunc, fresh=_always, elementwise=True, takes_out=True)


def lowering(prim) -> Lowering | None:
    """The lowering of `prim`: its table entry, the ufunc call for a primitive whose impl is a
    ufunc (read off the record, see `Primitive.ufunc`), or None (called as a function)."""
    low = LOWERINGS.get(prim)
    if low is None and prim.ufunc is not None:
        return _UFUNC
    return low
