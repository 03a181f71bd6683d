"""Pooling: the windowed-reduction primitive `reduce_window` (max and sum), the
two max-pool derivative primitives `select_and_scatter_add` and
`select_and_gather`, and the wrappers `max_pool`, `avg_pool` (with PyTorch's
`ceil_mode` and `count_include_pad`), `adaptive_max_pool` and `adaptive_avg_pool`
(see "wrappers" and "adaptive pooling" below: they need no primitive of their own).

All of them work on the trailing `len(window)` dims of their operand (the
spatial dims of an N C spatial... array); leading dims are batch-like.

- `reduce_window(x; computation, window, strides, padding, base_dilation)`:
  `out[..., p] = reduce_{k in window} xd[..., p*stride + k]`, where `xd` is x
  dilated by `base_dilation` and padded with the reduction's identity (-inf
  for max, 0 for sum); negative pads crop. Sum's VJP is again a windowed sum
  (of the cotangent dilated by the stride: the same algebra as conv's input
  gradient). Max's VJP is `select_and_scatter_add`.
- `select_and_scatter_add(ct, x; window, strides, padding)`: x-shaped; every
  window's cotangent is added at the FIRST maximum of x in that window (first
  in row-major window order: deterministic, as JAX and PyTorch do on CPU).
- `select_and_gather(t, x; ...)`: pooled-shaped; picks t at the same first
  maximum. The two are linear in their first operand and each other's
  transpose, so max pooling is differentiable to any order (the selection
  itself is piecewise constant in x: zero derivative).

The impls are the reference definitions (what the interpreter, the oracle,
evaluates): loops over the window taps (a handful) with whole-array operations
on strided slices. The fast paths (non-overlapping tiles, stages, spread, the
first maximum tracked arithmetically) are the NumPy backend's kernels
(backends/numpy/kernels/pool.py), which eager mode and the generated code call.
Imports ops._core, ops._window, primitive, types and errors; must not import
funconv.backends, funconv.passes or funconv.jit.
"""

from __future__ import annotations

import attrs
import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops._core import asarray, operand, per_dim, to_dtype
from funconv.ops._window import dilate as _dilate
from funconv.ops._window import dilate_and_pad, padding_pairs, tap_slices
from funconv.primitive import Primitive
from funconv.types import DEFAULT_FLOAT, ArrayType, is_inexact

# --- shared geometry ----------------------------------------------------------------------


def _out_sizes(shape, window, strides, padding, base_dilation, where: str):
    nd = len(window)
    for name, v in (("strides", strides), ("padding", padding), ("base_dilation", base_dilation)):
        if len(v) != nd:
            raise ShapeError(f"{where}: {name} needs one entry per window dim ({nd})")
    if len(shape) < nd:
        raise ShapeError(f"{where}: a {nd}-d window needs an operand of rank >= {nd}")
    if any(v < 1 for v in tuple(window) + tuple(strides) + tuple(base_dilation)):
        raise ShapeError(f"{where}: window, strides and base_dilation must be positive")
    lead = len(shape) - nd
    out = []
    for i in range(nd):
        padded = _dilate(shape[lead + i], base_dilation[i]) + padding[i][0] + padding[i][1]
        if padded < window[i]:
            raise ShapeError(f"{where}: along pooled dim {i} the window ({window[i]}) is larger "
                             f"than the padded input ({padded}); pad more or use a smaller window")
        out.append((padded - window[i]) // strides[i] + 1)
    return tuple(shape[:lead]) + tuple(out)


def _identity(computation: str, dtype: np.dtype):
    if computation == "sum":
        return 0
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


# --- reduce_window ---------------------------------------------------------------------------


def _reduce_window_rule(x: ArrayType, *, computation, window, strides, padding,
                        base_dilation) -> ArrayType:
    where = (f"reduce_window({x.short()}; computation={computation!r}, window={window}, "
             f"strides={strides}, padding={padding}, base_dilation={base_dilation})")
    if computation not in ("max", "sum"):
        raise ArgumentError(f"{where}: computation must be 'max' or 'sum'")
    if computation == "max" and x.dtype.kind not in "biuf":
        raise DTypeError(f"{where}: max pooling needs real operands")
    return ArrayType(_out_sizes(x.shape, window, strides, padding, base_dilation, where), x.dtype)


def _taps(window, strides, out_shape):
    """The index (Ellipsis + strided slices) of every window tap, row-major, into the
    dilated, padded operand: tap k of the window at every output position."""
    nd = len(window)
    taps = tap_slices(window, (1,) * nd, strides, out_shape[len(out_shape) - nd:])
    return [(Ellipsis,) + sl for _, sl in taps]


def _reduce_window_impl(x, *, computation, window, strides, padding, base_dilation):
    """The definition: each window's taps combined (max or sum), one whole-array
    operation per tap; x dilated and padded with the reduction's identity."""
    out_shape = _out_sizes(x.shape, window, strides, padding, base_dilation, "reduce_window")
    xp = dilate_and_pad(x, base_dilation, padding, _identity(computation, x.dtype))
    combine = np.maximum if computation == "max" else np.add
    taps = _taps(window, strides, out_shape)
    out = np.array(xp[taps[0]], dtype=x.dtype)
    for tap in taps[1:]:
        combine(out, xp[tap], out=out)
    return out


def _reduce_window_vjp(ct, out, x, *, computation, window, strides, padding, base_dilation):
    nd = len(window)
    lead = x.ndim - nd
    if computation == "max":
        if any(d != 1 for d in base_dilation) or any(lo < 0 or hi < 0 for lo, hi in padding):
            raise NotImplementedError("the derivative of a max reduce_window with base dilation "
                                      "or negative padding is not implemented (max_pool never "
                                      "builds one)")
        return (select_and_scatter_add_p(ct, x, window=window, strides=strides, padding=padding),)
    # sum: the adjoint of a windowed sum is a windowed sum of the cotangent dilated by the
    # stride, padded so the result has x's size (as conv's input gradient, with a ones kernel)
    in_dil = [_dilate(x.shape[lead + i], base_dilation[i]) for i in range(nd)]
    out_dil = [_dilate(ct.shape[lead + i], strides[i]) for i in range(nd)]
    lo = [window[i] - 1 - padding[i][0] for i in range(nd)]
    pads = tuple((lo[i], in_dil[i] + window[i] - 1 - out_dil[i] - lo[i]) for i in range(nd))
    return (reduce_window_p(ct, computation="sum", window=window, strides=tuple(base_dilation),
                            padding=pads, base_dilation=tuple(strides)),)


reduce_window_p = Primitive("reduce_window", _reduce_window_rule, _reduce_window_impl,
                            _reduce_window_vjp)

# --- select_and_scatter_add / select_and_gather (max pooling's derivatives) ----------------


def _select_rule(name, pooled_first: bool):
    def rule(a: ArrayType, x: ArrayType, *, window, strides, padding) -> ArrayType:
        where = (f"{name}({a.short()}, {x.short()}; window={window}, strides={strides}, "
                 f"padding={padding})")
        if x.dtype.kind not in "biuf":
            raise DTypeError(f"{where}: the selecting operand must be real")
        if any(lo < 0 or hi < 0 for lo, hi in padding):
            raise ShapeError(f"{where}: padding must be non-negative")
        pooled = _out_sizes(x.shape, window, strides, padding, (1,) * len(window), where)
        expect = pooled if pooled_first else x.shape
        if a.shape != expect:
            raise ShapeError(f"{where}: the first operand must have shape {expect}")
        return ArrayType(x.shape if pooled_first else pooled, a.dtype)

    return rule


def _first_max(x, window, strides, padding):
    """Per window, the number of the tap (row-major) holding its first maximum; the padded
    operand's shape and the taps' indices into it."""
    nd = len(window)
    out_shape = _out_sizes(x.shape, window, strides, padding, (1,) * nd, "select")
    xp = dilate_and_pad(x, (1,) * nd, padding, _identity("max", x.dtype))
    taps = _taps(window, strides, out_shape)
    best, first = xp[taps[0]], np.zeros(out_shape, np.intp)
    for t, tap in enumerate(taps[1:], 1):
        better = xp[tap] > best  # strict: a tie keeps the earlier tap
        best = np.where(better, xp[tap], best)
        first = np.where(better, t, first)
    return first, xp.shape, taps


def _select_and_scatter_add_impl(ct, x, *, window, strides, padding):
    """The definition: every window's cotangent added at its first maximum of x."""
    nd = len(window)
    first, padded_shape, taps = _first_max(x, window, strides, padding)
    res = np.zeros(padded_shape, ct.dtype)
    zero = np.zeros((), ct.dtype)
    for t, tap in enumerate(taps):
        # one tap's positions are distinct (stride >= 1), so += through the slice is exact
        res[tap] += np.where(first == t, ct, zero)
    return res[(Ellipsis,) + tuple(slice(lo, lo + n) for (lo, _), n
                                   in zip(padding, x.shape[x.ndim - nd:]))]


def _select_and_gather_impl(t_, x, *, window, strides, padding):
    """The definition: per window, t at the window's first maximum of x (0 in the padding)."""
    nd = len(window)
    first, _, taps = _first_max(x, window, strides, padding)
    tp = dilate_and_pad(t_, (1,) * nd, padding, 0)
    res = np.zeros(first.shape, t_.dtype)
    for t, tap in enumerate(taps):
        res = np.where(first == t, tp[tap], res)
    return res


select_and_scatter_add_p = Primitive(
    "select_and_scatter_add", _select_rule("select_and_scatter_add", True),
    _select_and_scatter_add_impl,
    lambda ct, out, a, x, **p: (select_and_gather_p(ct, x, **p), None))
select_and_gather_p = Primitive(
    "select_and_gather", _select_rule("select_and_gather", False), _select_and_gather_impl,
    lambda ct, out, a, x, **p: (select_and_scatter_add_p(ct, x, **p), None))

# --- wrappers ------------------------------------------------------------------------------
# The wrappers speak PyTorch's and flax's options (ceil_mode, count_include_pad, adaptive
# pooling) and lower them onto the three primitives above plus ordinary differentiable ops:
# ceil mode is extra high padding (the identity of the reduction, so the overhang is
# ignored) and averaging divisors are constant arrays computed with NumPy at trace time.


def _flag(value, name: str, opname: str, x: Array) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{opname}({x.aval.short()}, ...): {name} must be True or False, "
                            f"got {value!r}")
    return bool(value)


def _out_size(n: int, k: int, s: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """Number of windows along one dim of size n padded by (lo, hi).

    Floor mode (the default, and reduce_window's rule): (n + lo + hi - k) // s + 1.
    Ceil mode, PyTorch's `pooling_output_shape`: ceil((n + lo + hi - k) / s) + 1, minus
    one when the last window would start past the input and the low padding
    ((out - 1) * s >= n + lo), so every window starts on the input or its low padding.
    """
    span = n + lo + hi - k
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1  # ceil, also for a negative span (a window wider than the input)
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


@attrs.frozen(eq=False)
class _Geometry:
    """A pooling call's resolved arguments: the operand, the window, the strides, the
    user's (lo, hi) pads, the output's spatial sizes and the pads given to the primitive
    (the user's high pad plus the ceil-mode overhang)."""

    x: Array
    window: tuple
    strides: tuple
    pads: tuple
    out: tuple
    prim_pads: tuple

    def reduce(self, x, computation: str) -> Array:
        """reduce_window over the geometry, cropped to `out` windows per dim."""
        nd = len(self.window)
        y = reduce_window_p(x, computation=computation, window=self.window, strides=self.strides,
                            padding=self.prim_pads, base_dilation=(1,) * nd)
        if tuple(y.shape[y.ndim - nd:]) != self.out:
            # only in ceil mode with a high pad of at least a window: the primitive's floor
            # rule then counts one window that starts in the high padding, which PyTorch drops
            y = y[(Ellipsis,) + tuple(slice(0, o) for o in self.out)]
        return y


def _pool_args(opname, x, window, stride, padding, ceil_mode=False) -> _Geometry:
    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    if isinstance(window, (int, np.integer)):
        nd = x.ndim - 2
        if nd < 1:
            raise ShapeError(f"{opname}: an int window pools the spatial dims of an (N, C, "
                             f"spatial...) array, got {x.aval.short()}; pass a tuple window "
                             "to pool the trailing dims of any array")
    else:
        try:
            nd = len(window)
        except TypeError:
            raise ArgumentError(f"{opname}: window must be an int or a tuple of ints, "
                                f"got {window!r}") from None
    if nd < 1 or nd > x.ndim:
        raise ShapeError(f"{opname}: a window {window!r} does not fit {x.aval.short()}")
    window = per_dim(window, nd, "window", opname)
    strides = window if stride is None else per_dim(stride, nd, "stride", opname)
    ceil_mode = _flag(ceil_mode, "ceil_mode", opname, x)
    where = f"{opname}({x.aval.short()}, window={window}, stride={stride}, padding={padding!r}"
    where += ", ceil_mode=True)" if ceil_mode else ")"
    sizes = x.shape[x.ndim - nd:]
    pads = padding_pairs(padding, sizes, window, strides, where)
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ShapeError(f"{where}: padding must be non-negative")
    out = []
    for i in range(nd):  # (first: a window that does not fit at all, in any dim)
        (lo, hi), k, s = pads[i], window[i], strides[i]
        out.append(_out_size(sizes[i], k, s, lo, hi, ceil_mode))
        if out[i] < 1:
            padded = sizes[i] + lo + hi
            raise ShapeError(f"{where}: along pooled dim {i} the window ({k}) is larger than "
                             f"the padded input ({padded}); pad more or use a smaller window")
    prim_pads = []
    for i in range(nd):
        (lo, hi), k, s, o = pads[i], window[i], strides[i], out[i]
        # a window wholly in the padding has no input element: max_pool would give -inf and
        # avg_pool 0, silently. PyTorch refuses such pads (more strictly: at most half the
        # window); a pad below the window on each side never makes one
        if k <= lo or (o - 1) * s - lo >= sizes[i]:
            raise ShapeError(f"{where}: along pooled dim {i} (size {sizes[i]}) the padding "
                             f"({lo}, {hi}) puts a whole window in the padding, with no input "
                             f"element to pool; the largest valid padding is {k - 1} on each "
                             f"side (less than the window, {k})")
        # ceil mode: pad the high side so the last window fits; the overhang holds the
        # reduction's identity (-inf / 0), so max ignores it and avg's divisor leaves it out
        prim_pads.append((lo, hi + max(0, (o - 1) * s + k - (sizes[i] + lo + hi))))
    return _Geometry(x, window, strides, pads, tuple(out), tuple(prim_pads))


def max_pool(x, window, stride=None, padding=0, *, ceil_mode=False) -> Array:
    """Max pooling over the trailing spatial dims (PyTorch's max_pool1d/2d/3d, flax's max_pool).

    Args:
        x: (N, C, spatial...) (or any array, with a tuple `window` over its trailing dims).
        window: int (every spatial dim of an N C spatial... array) or a tuple.
        stride: int or per dim; defaults to the window (non-overlapping).
        padding: "SAME", "VALID", an int, per-dim ints or per-dim (lo, hi)
            pairs; padded positions count as -inf.
        ceil_mode: PyTorch's: out = ceil((in + lo + hi - window) / stride) + 1 windows
            instead of floor(...), minus one if the last would start past the input and
            its low padding. The extra window hangs off the high end; the overhang is
            ignored. It also allows a window wider than the padded input (one window),
            as PyTorch does. With "SAME" it changes nothing (SAME's ceil(in / stride)
            windows already cover the input); "VALID" means padding 0.

    Returns:
        The pooled array. Its gradient goes to the first maximum of each
        window (row-major order within the window).
    """
    g = _pool_args("max_pool", x, window, stride, padding, ceil_mode)
    if g.x.dtype.kind == "c":
        raise DTypeError(f"max_pool: complex values have no maximum, got {g.x.aval.short()}")
    return g.reduce(g.x, "max")


def _window_counts(n, k, s, lo, hi, out, include_pad: bool) -> np.ndarray:
    """Per window along one dim, PyTorch's avg_pool divisor: the window clipped to the
    padded input [-lo, n + hi) (so the ceil-mode overhang never counts), or with
    include_pad=False to the input itself [0, n)."""
    start = np.arange(out) * s - lo
    end = np.minimum(start + k, n + hi)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return np.maximum(end - start, 0)


def _divide_by_counts(total: Array, counts) -> Array:
    """total (..., out...) divided by the outer product of the per-dim window counts.

    The counts are static, so the divisor is a constant array; where they all equal one
    number, a scalar. A window with no element to count (only possible wholly inside the
    padding, where the sum is 0) is divided by 1, giving 0 as PyTorch does.
    """
    div = np.ones((), np.int64)
    for c in counts:
        div = np.multiply.outer(div, c)
    div = np.maximum(div, 1)
    if div.size and (div == div.flat[0]).all():
        return total / int(div.flat[0])
    real = np.finfo(total.dtype).dtype  # the real dtype (a complex average divides by reals)
    return total / asarray(div.astype(real))


def avg_pool(x, window, stride=None, padding=0, *, ceil_mode=False,
             count_include_pad=True) -> Array:
    """Average pooling over the trailing spatial dims (PyTorch's avg_pool1d/2d/3d, flax's
    avg_pool).

    Args:
        x, window, stride, padding: as `max_pool`; padded positions count as zeros.
        ceil_mode: as `max_pool`. The ceil-mode overhang is never counted in a divisor.
        count_include_pad: True (PyTorch's and flax's default): divide by the window size,
            clipped to the padded input, so windows overlapping the padding are pulled
            towards zero. False: divide by the number of input (non-padding) elements in
            each window.

    Returns:
        The pooled array; integer inputs average in float32.
    """
    g = _pool_args("avg_pool", x, window, stride, padding, ceil_mode)
    include = _flag(count_include_pad, "count_include_pad", "avg_pool", g.x)
    x = g.x if is_inexact(g.x.dtype) else to_dtype(g.x, DEFAULT_FLOAT)
    nd = len(g.window)
    sizes = x.shape[x.ndim - nd:]
    counts = [_window_counts(sizes[i], g.window[i], g.strides[i], *g.pads[i], g.out[i], include)
              for i in range(nd)]
    return _divide_by_counts(g.reduce(x, "sum"), counts)


# --- adaptive pooling --------------------------------------------------------------------------
# PyTorch's adaptive pooling: output window i along a dim of size n pooled to o covers
# [floor(i * n / o), ceil((i + 1) * n / o)). When o divides n these are the windows of a
# plain pool (window = stride = n / o). Otherwise they vary in size (and overlap when
# o > n), so each such dim is pooled on its own: both reductions are separable (the
# max / mean of a box is the max / mean along one dim of the max / mean along the others).


def _adaptive_args(opname, x, output_size):
    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    where = f"{opname}({x.aval.short()}, output_size={output_size!r})"
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, (bool, np.bool_)):
        nd = x.ndim - 2
        if nd < 1:
            raise ShapeError(f"{where}: an int output_size pools the spatial dims of an (N, C, "
                             "spatial...) array; pass a tuple (one size per trailing dim) to "
                             "pool the trailing dims of any array")
        sizes = (output_size,) * nd
    elif isinstance(output_size, (tuple, list)):
        sizes = tuple(output_size)
        nd = len(sizes)
        if not 1 <= nd <= x.ndim:
            raise ShapeError(f"{where}: output_size needs one entry per pooled trailing dim "
                             f"(1 to {x.ndim} entries for this array), got {nd}")
    else:
        raise ArgumentError(f"{where}: output_size must be an int or a tuple of ints (None "
                            f"keeps a dim), got {type(output_size).__name__}")
    ins = x.shape[x.ndim - nd:]
    out = []
    for n, o in zip(ins, sizes):
        if o is None:
            o = n
        elif isinstance(o, (bool, np.bool_)) or not isinstance(o, (int, np.integer)):
            raise ArgumentError(f"{where}: output sizes must be ints or None, got {o!r}")
        elif o < 1:
            raise ArgumentError(f"{where}: output sizes must be >= 1, got {o}; use 1 for "
                                "global pooling")
        if n == 0:
            raise ShapeError(f"{where}: cannot pool an empty spatial dim into {o} windows")
        out.append(int(o))
    return x, nd, tuple(ins), tuple(out)


def _adaptive_bounds(n: int, o: int):
    """Start and end (exclusive) of every adaptive window along one dim, as NumPy arrays."""
    i = np.arange(o)
    return (i * n) // o, -(-((i + 1) * n) // o)


def _one_dim_window(nd: int, d: int, k: int) -> tuple[int, ...]:
    return tuple(k if j == d else 1 for j in range(nd))


def _global_axes(lead, ins, out):
    """The axes pooled to size 1, if every pooled dim is either that or kept whole, else None.

    Global pooling (output size 1, the most common adaptive pooling) is then one plain
    reduction over those axes: a window as large as the input would make reduce_window
    loop over all of its taps.
    """
    if not all(o == 1 or o == n for n, o in zip(ins, out)):
        return None
    return tuple(lead + d for d, (n, o) in enumerate(zip(ins, out)) if o != n)


def adaptive_avg_pool(x, output_size) -> Array:
    """Adaptive average pooling (PyTorch's adaptive_avg_pool1d/2d/3d) over the trailing dims.

    Args:
        x: (N, C, spatial...) (or any array, with a tuple `output_size` over its trailing dims).
        output_size: an int (every spatial dim of an N C spatial... array) or a tuple,
            one entry per trailing dim; a None entry keeps that dim's size. Sizes larger
            than the input are allowed (windows then overlap). 1 is global average pooling.

    Returns:
        (..., output_size...): output i along a dim of size n pooled to o is the mean over
        [floor(i * n / o), ceil((i + 1) * n / o)). Integer inputs average in float32.
    """
    from funconv.ops.linalg import tensordot
    from funconv.ops.reduce import mean
    from funconv.ops.reduce import sum as reduce_sum
    from funconv.ops.shape import moveaxis

    x, nd, ins, out = _adaptive_args("adaptive_avg_pool", x, output_size)
    if not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    lead = x.ndim - nd
    axes = _global_axes(lead, ins, out)
    if axes is not None:
        return mean(x, axis=axes, keepdims=True) if axes else x
    if all(n % o == 0 for n, o in zip(ins, out)):
        return avg_pool(x, tuple(n // o for n, o in zip(ins, out)))
    # (the sum and the mean are separable, so each dim is summed on its own, in any order)
    counts = []
    for d, (n, o) in enumerate(zip(ins, out)):
        if n == o:
            counts.append(np.ones(o, np.int64))
        elif o == 1:
            x = reduce_sum(x, axis=lead + d, keepdims=True)
            counts.append(np.full(1, n))
        elif n % o == 0:  # a plain windowed sum along this dim
            w = _one_dim_window(nd, d, n // o)
            x = reduce_window_p(x, computation="sum", window=w, strides=w,
                                padding=((0, 0),) * nd, base_dilation=(1,) * nd)
            counts.append(np.full(o, n // o))
        else:
            # the window sums as a contraction with a constant 0/1 (o, n) matrix: exact, linear
            start, end = _adaptive_bounds(n, o)
            cols = np.arange(n)
            member = (cols >= start[:, None]) & (cols < end[:, None])
            m = asarray(member.astype(np.finfo(x.dtype).dtype))
            x = moveaxis(tensordot(x, m, axes=([lead + d], [1])), -1, lead + d)
            counts.append(end - start)
    # then divide by the box sizes, as PyTorch does (sum / count, not a sum of x / count)
    return _divide_by_counts(x, counts)


def adaptive_max_pool(x, output_size) -> Array:
    """Adaptive max pooling (PyTorch's adaptive_max_pool1d/2d/3d) over the trailing dims.

    Args:
        x, output_size: as `adaptive_avg_pool`.

    Returns:
        (..., output_size...): output i along a dim of size n pooled to o is the maximum
        over [floor(i * n / o), ceil((i + 1) * n / o)). The gradient goes to the first
        maximum of each window (row-major order), as `max_pool` and PyTorch on CPU.
    """
    from funconv.ops.indexing import take
    from funconv.ops.reduce import max as reduce_max

    x, nd, ins, out = _adaptive_args("adaptive_max_pool", x, output_size)
    if x.dtype.kind == "c":
        raise DTypeError(f"adaptive_max_pool: complex values have no maximum, got {x.aval.short()}")
    lead = x.ndim - nd
    axes = _global_axes(lead, ins, out)
    if axes is not None:  # (one reduction over all the axes: its first maximum is row-major)
        return reduce_max(x, axis=axes, keepdims=True) if axes else x
    if all(n % o == 0 for n, o in zip(ins, out)):
        return max_pool(x, tuple(n // o for n, o in zip(ins, out)))
    # one dim at a time, the LAST first: keeping the first maximum at each stage then gives
    # the first maximum of the whole box in row-major order (see _stages)
    for d in reversed(range(nd)):
        n, o = ins[d], out[d]
        if n == o:
            continue
        if o == 1:
            x = reduce_max(x, axis=lead + d, keepdims=True)
        elif n % o == 0:
            x = max_pool(x, _one_dim_window(nd, d, n // o))
        else:
            # gather every window into a row of an (o, widest) table, short windows padded
            # by repeating their last element (a later duplicate never is the FIRST
            # maximum), then reduce the rows; the gather's derivative adds the cotangent
            # back. (reduce_window over the table measured 3x slower here: its fast path
            # handles a long last-dim window with shifted whole-array slices)
            start, end = _adaptive_bounds(n, o)
            width = int((end - start).max())
            idx = np.minimum(start[:, None] + np.arange(width), end[:, None] - 1)
            x = reduce_max(take(x, idx, axis=lead + d), axis=lead + d + 1)
    return x


__all__ = [
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "avg_pool",
    "max_pool",
    "reduce_window_p",
    "select_and_gather_p",
    "select_and_scatter_add_p",
]
