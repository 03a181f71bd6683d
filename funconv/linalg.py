"""The Array API's `linalg` extension (`fc.linalg.solve`, ...): the decompositions and solves
of funconv/ops/decomp.py (each with a VJP) and compositions of funconv ops for the rest.

Matrices are the last two axes; leading axes are a batch (broadcast where the standard
says so). Real floating matrices only for the decompositions (their VJPs are the
real-matrix formulas). Not provided yet: `qr`, `svd`, `svdvals`, `pinv`, `matrix_rank` and the
2-norm / nuclear `matrix_norm` (they need an SVD or QR primitive with a VJP).
"""

from __future__ import annotations

import math

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, ShapeError
from funconv.ops import _core
from funconv.ops import elementwise as E, reduce as R, shape as S
from funconv.ops.array_api import matrix_transpose, vecdot  # noqa: F401 (re-exported)
from funconv.ops.decomp import cholesky_p, det_p, eigh_p, inv_p, solve_p
from funconv.ops.linalg import matmul, outer as _outer, tensordot  # noqa: F401 (re-exported)
from funconv.ops.linalg import diagonal as _diagonal
from funconv.types import DEFAULT_FLOAT, is_inexact


def _matrices(x, opname) -> Array:
    x = _core.asarray(_core.operand(x, opname))
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"linalg.{opname}: needs a stack of square matrices (..., n, n), got "
                         f"{x.aval.short()}")
    return x if is_inexact(x.dtype) else _core.to_dtype(x, DEFAULT_FLOAT)


def inv(x, /) -> Array:
    """The inverse of each square matrix."""
    return inv_p(_matrices(x, "inv"))


def det(x, /) -> Array:
    """The determinant of each square matrix."""
    return det_p(_matrices(x, "det"))


class SlogdetResult(tuple):
    """(sign, logabsdet), also by name."""

    __slots__ = ()
    sign = property(lambda self: self[0])
    logabsdet = property(lambda self: self[1])


def slogdet(x, /) -> SlogdetResult:
    """The sign and log |det| of each square matrix (from det: it overflows where det does)."""
    d = det(x)
    return SlogdetResult((E.sign(d), E.log(E.abs(d))))


def cholesky(x, /, *, upper=False) -> Array:
    """The lower (or `upper`) Cholesky factor of each symmetric positive-definite matrix
    (only the lower triangle is read; a non-positive-definite one gives NaN, as JAX)."""
    from funconv.ops.linalg import tril

    x = _matrices(x, "cholesky")
    # LAPACK reads the lower triangle; symmetrised here so the VJP (symmetric) is the
    # derivative of what is computed
    low = tril(x)
    sym = low + S.swapaxes(tril(x, -1), -1, -2)
    factor = cholesky_p(sym)
    return S.swapaxes(factor, -1, -2) if upper else factor


def solve(x1, x2, /) -> Array:
    """The solution of x1 @ out = x2 for square x1: x2 is a stack of matrices (..., n, k)
    broadcast against x1's batch, or a vector (n,)."""
    a = _matrices(x1, "solve")
    b = _core.asarray(_core.operand(x2, "solve"))
    a, b = (_core.to_dtype(v, _core.result_type(a.dtype, b.dtype)) for v in (a, b))
    if not is_inexact(a.dtype):
        a, b = _core.to_dtype(a, DEFAULT_FLOAT), _core.to_dtype(b, DEFAULT_FLOAT)
    vector = b.ndim == 1
    if vector:
        b = b[:, None]
    if b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"linalg.solve: {a.aval.short()} and {b.aval.short()} do not match "
                         "(x2 needs n rows for an n x n x1)")
    batch = _core.broadcast_shapes("linalg.solve", a.shape[:-2], b.shape[:-2])
    a = _core.broadcast_to(a, batch + a.shape[-2:])
    b = _core.broadcast_to(b, batch + b.shape[-2:])
    out = solve_p(a, b)
    return out[..., 0] if vector else out


class EighResult(tuple):
    """(eigenvalues, eigenvectors), also by name."""

    __slots__ = ()
    eigenvalues = property(lambda self: self[0])
    eigenvectors = property(lambda self: self[1])


def eigh(x, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of each symmetric matrix (its lower
    triangle is read, as LAPACK)."""
    x = _matrices(x, "eigh")
    packed = eigh_p(x)
    return EighResult((packed[..., 0, :], packed[..., 1:, :]))


def eigvalsh(x, /) -> Array:
    """The eigenvalues (ascending) of each symmetric matrix."""
    return eigh(x)[0]


def outer(x1, x2, /) -> Array:
    """The outer product of two vectors."""
    return _outer(x1, x2)


def diagonal(x, /, *, offset=0) -> Array:
    """The `offset` diagonal of each matrix (the last two axes)."""
    return _diagonal(x, offset, -2, -1)


def trace(x, /, *, offset=0, dtype=None) -> Array:
    """The sum of the `offset` diagonal of each matrix (the last two axes); ints accumulate
    as `sum` does."""
    return R.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def cross(x1, x2, /, *, axis=-1) -> Array:
    """The cross product of 3-vectors along `axis` (broadcast over the other axes)."""
    a, b = _core.promote("linalg.cross", x1, x2)
    ax = _core.normalize_axis(axis, a.ndim, "linalg.cross") if a.ndim else 0
    if a.ndim == 0 or a.shape[ax] != 3:
        raise ShapeError(f"linalg.cross: needs 3-vectors along axis {axis}, got {a.aval.short()}")
    a, b = S.moveaxis(a, ax, -1), S.moveaxis(b, ax, -1)
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    out = S.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return S.moveaxis(out, -1, ax)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2) -> Array:  # noqa: A002
    """The `ord`-norm of the vectors along `axis` (None: all elements as one vector): ord
    2 (default), 1, inf, -inf, 0 (the count of nonzeros) or any other p."""
    x = _core.asarray(_core.operand(x, "linalg.vector_norm"))
    if not is_inexact(x.dtype):
        x = _core.to_dtype(x, DEFAULT_FLOAT)
    a = E.abs(x)
    if ord == 2:
        return R.sqrt_zero_subgradient(R.sum(a * a, axis=axis, keepdims=keepdims))
    if ord == 1:
        return R.sum(a, axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return _extreme(R.max, a, axis, keepdims, 0.0)
    if ord == -math.inf:
        return _extreme(R.min, a, axis, keepdims, math.inf)
    if ord == 0:
        return R.sum(_core.to_dtype(a != 0, a.dtype), axis=axis, keepdims=keepdims)
    if not isinstance(ord, (int, float)) or isinstance(ord, bool):
        raise ArgumentError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    return E.power(R.sum(E.power(a, float(ord)), axis=axis, keepdims=keepdims), 1.0 / ord)


def _extreme(reduce, a, axis, keepdims, empty):
    # max/min have no identity; the norm of an empty vector is 0 (the inf-norm's convention)
    axes = _core.normalize_axes(axis, a.ndim, "linalg.vector_norm")
    if any(a.shape[i] == 0 for i in axes):
        shape = tuple(1 if i in axes else d for i, d in enumerate(a.shape)) if keepdims else \
            tuple(d for i, d in enumerate(a.shape) if i not in axes)
        return _core.broadcast_to(_core.to_dtype(empty, a.dtype), shape)
    return reduce(a, axis=axis, keepdims=keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro") -> Array:  # noqa: A002
    """The `ord`-norm of each matrix: "fro" (default), 1, -1, inf, -inf (max/min column or
    row sums of |x|). The SVD-based 2, -2 and "nuc" are not provided yet."""
    x = _core.asarray(_core.operand(x, "linalg.matrix_norm"))
    if x.ndim < 2:
        raise ShapeError(f"linalg.matrix_norm: needs matrices (..., m, n), got {x.aval.short()}")
    if ord == "fro":
        return vector_norm(x, axis=(-2, -1), keepdims=keepdims)
    a = E.abs(x if is_inexact(x.dtype) else _core.to_dtype(x, DEFAULT_FLOAT))
    sums = {1: (-2, R.max), -1: (-2, R.min), math.inf: (-1, R.max), -math.inf: (-1, R.min)}
    if ord not in sums:
        raise ArgumentError(f"linalg.matrix_norm: ord {ord!r} is not supported (use 'fro', 1, -1, "
                            "inf or -inf; 2, -2 and 'nuc' need an SVD, not provided yet)")
    along, reduce = sums[ord]
    out = reduce(R.sum(a, axis=along, keepdims=True), axis=(-2, -1), keepdims=True)
    return out if keepdims else out[..., 0, 0]


def matrix_power(x, n, /) -> Array:
    """x @ x @ ... (n times) by repeated squaring; n = 0 gives the identity, n < 0 the
    power of the inverse."""
    x = _core.asarray(_core.operand(x, "linalg.matrix_power"))
    n = _core.static_int(n, "n", "linalg.matrix_power")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"linalg.matrix_power: needs square matrices, got {x.aval.short()}")
    if n < 0:
        x, n = inv(x), -n
    out = None
    while n:
        if n & 1:
            out = x if out is None else matmul(out, x)
        n >>= 1
        if n:
            x = matmul(x, x)
    if out is None:
        eye = np.broadcast_to(np.eye(x.shape[-1]), x.shape).astype(x.dtype)
        return _core.asarray(eye)
    return out


__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
           "matrix_norm", "matrix_power", "matrix_transpose", "outer", "slogdet", "solve",
           "tensordot", "trace", "vecdot", "vector_norm"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
