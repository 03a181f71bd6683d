"""Linear algebra: the `dot_general` primitive (contracting and batch dimensions,
as in XLA/JAX) and the wrappers built on it: `matmul`, `dot`, ...

dot_general's output lays out the batch dims, then the lhs free dims, then the
rhs free dims. Its impl is one (batched) `np.matmul` after transposes and
reshapes, so BLAS does the work.
"""

from __future__ import annotations

import numpy as np

from funconv.array import Array
from funconv.errors import DTypeError, ShapeError
from funconv.ops._core import asarray, broadcast_shapes, broadcast_to, operand, promote
from funconv.primitive import Primitive
from funconv.types import ArrayType


def _split_dims(ndim, contract, batch):
    return [i for i in range(ndim) if i not in contract and i not in batch]


def _dot_general_rule(x: ArrayType, y: ArrayType, *, dimension_numbers) -> ArrayType:
    (xc, yc), (xb, yb) = dimension_numbers
    if x.dtype != y.dtype:
        raise DTypeError(f"dot_general: operand dtypes differ: {x.short()}, {y.short()}")
    if len(xc) != len(yc) or len(xb) != len(yb):
        raise ShapeError(f"dot_general: unpaired dimensions {dimension_numbers} for {x.short()}, {y.short()}")
    for a, b in list(zip(xc, yc)) + list(zip(xb, yb)):
        if not (0 <= a < x.ndim and 0 <= b < y.ndim) or x.shape[a] != y.shape[b]:
            raise ShapeError(f"dot_general: dimension {a} of {x.short()} does not match dimension "
                             f"{b} of {y.short()} (dimension_numbers={dimension_numbers})")
    xf = _split_dims(x.ndim, xc, xb)
    yf = _split_dims(y.ndim, yc, yb)
    shape = tuple(x.shape[i] for i in xb) + tuple(x.shape[i] for i in xf) + tuple(y.shape[i] for i in yf)
    return ArrayType(shape, x.dtype)


def _dot_general_impl(x, y, *, dimension_numbers):
    (xc, yc), (xb, yb) = dimension_numbers
    xf = _split_dims(x.ndim, xc, xb)
    yf = _split_dims(y.ndim, yc, yb)
    size = lambda a, dims: int(np.prod([a.shape[i] for i in dims], dtype=np.int64))  # noqa: E731
    B, M, K, N = size(x, xb), size(x, xf), size(x, xc), size(y, yf)
    out_shape = tuple(x.shape[i] for i in xb) + tuple(x.shape[i] for i in xf) + tuple(y.shape[i] for i in yf)
    xt = np.transpose(x, tuple(xb) + tuple(xf) + tuple(xc))
    yt = np.transpose(y, tuple(yb) + tuple(yc) + tuple(yf))
    if B == 1:
        out = np.matmul(xt.reshape(M, K), yt.reshape(K, N))
    else:
        out = np.matmul(xt.reshape(B, M, K), yt.reshape(B, K, N))
    return out.reshape(out_shape)


def _dot_general_vjp(ct, out, x, y, *, dimension_numbers):
    from funconv.ops.shape import transpose

    (xc, yc), (xb, yb) = dimension_numbers
    xf = _split_dims(x.ndim, xc, xb)
    yf = _split_dims(y.ndim, yc, yb)
    nb = len(xb)
    ct_batch = tuple(range(nb))
    ct_xfree = tuple(range(nb, nb + len(xf)))
    ct_yfree = tuple(range(nb + len(xf), ct.ndim))

    def back(other, other_free, other_batch, other_contract, mine_batch, mine_free, mine_contract,
             ct_other_free):
        # contract ct's "other free" dims away against the other operand
        r = dot_general_p(ct, other, dimension_numbers=((ct_other_free, tuple(other_free)),
                                                        (ct_batch, tuple(other_batch))))
        order = np.argsort(other_contract)
        axes_of_r = list(mine_batch) + list(mine_free) + [mine_contract[j] for j in order]
        return transpose(r, tuple(np.argsort(axes_of_r).tolist()))

    x_ct = back(y, yf, yb, yc, xb, xf, xc, ct_yfree)
    y_ct = back(x, xf, xb, xc, yb, yf, yc, ct_xfree)
    return x_ct, y_ct


dot_general_p = Primitive("dot_general", _dot_general_rule, _dot_general_impl, _dot_general_vjp)


def dot_general(x, y, dimension_numbers) -> Array:
    """`lax.dot_general`: `dimension_numbers = ((x_contract, y_contract), (x_batch, y_batch))`."""
    x, y = _promote_dtypes("dot_general", x, y)
    (xc, yc), (xb, yb) = dimension_numbers
    dn = ((tuple(int(a) for a in xc), tuple(int(a) for a in yc)),
          (tuple(int(a) for a in xb), tuple(int(a) for a in yb)))
    return dot_general_p(x, y, dimension_numbers=dn)


def _promote_dtypes(opname, x, y):
    from funconv.ops._core import dtype_of, to_dtype
    from funconv.types import result_type

    x, y = operand(x, opname), operand(y, opname)
    x = x if isinstance(x, Array) else asarray(x)
    y = y if isinstance(y, Array) else asarray(y)
    dt = result_type(dtype_of(x), dtype_of(y))
    return to_dtype(x, dt), to_dtype(y, dt)


def matmul(x, y) -> Array:
    """`x @ y` with NumPy's rules (1-d operands, broadcast batch dimensions)."""
    from funconv.ops.shape import reshape

    x, y = _promote_dtypes("matmul", x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul: operands must be at least 1-d, got {x.aval.short()} @ {y.aval.short()}; "
                         "use * for scalars")
    xk = x.shape[-1]
    yk = y.shape[0] if y.ndim == 1 else y.shape[-2]
    if xk != yk:
        raise ShapeError(f"matmul: contracted dimensions differ: {x.aval.short()} @ {y.aval.short()} "
                         f"({xk} vs {yk}); transpose one operand (x.T) or check the layout")
    if y.ndim <= 2:
        # (..., m, k) @ (k, n): one big GEMM over all leading dims
        return dot_general_p(x, y, dimension_numbers=(((x.ndim - 1,), (0,)), ((), ())))
    if x.ndim == 1:
        return reshape(matmul(reshape(x, (1, xk)), y), y.shape[:-2] + (y.shape[-1],))
    batch = broadcast_shapes("matmul", x.shape[:-2], y.shape[:-2], types=[x.aval, y.aval])
    x = broadcast_to(x, batch + x.shape[-2:])
    y = broadcast_to(y, batch + y.shape[-2:])
    nb = len(batch)
    b = tuple(range(nb))
    return dot_general_p(x, y, dimension_numbers=(((nb + 1,), (nb,)), (b, b)))
