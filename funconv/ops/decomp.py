"""Matrix decompositions and solves for the Array API's `linalg` extension: the primitives
`inv`, `solve`, `det`, `cholesky` and `eigh`, each on a stack of matrices (..., n, n),
with a NumPy (LAPACK) impl and a VJP written in funconv ops (so second derivatives trace).

Real floating inputs only: the VJPs below are the real-matrix formulas (complex ones need
conjugations in JAX's convention, not written yet), so complex inputs raise DTypeError
rather than give wrong gradients. `eigh` returns eigenvalues and eigenvectors packed in one
array (..., n + 1, n): row 0 the eigenvalues, rows 1..n the eigenvectors as columns; the
user-facing `fc.linalg.eigh` slices them apart. The VJP formulas are the standard ones
(Giles 2008; Murray 2016 for Cholesky), as in JAX.
"""

from __future__ import annotations

import numpy as np

from funconv.errors import DTypeError, ShapeError
from funconv.primitive import Primitive
from funconv.types import ArrayType


def _square_rule(name):
    def rule(a: ArrayType, *rest: ArrayType, **params) -> ArrayType:
        if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
            raise ShapeError(f"{name}: needs a stack of square matrices (..., n, n), got {a.short()}")
        if a.dtype.kind != "f":
            raise DTypeError(f"{name}: needs real floating matrices, got {a.short()}"
                             + ("; complex matrices are not supported yet" if a.dtype.kind == "c" else
                                "; convert with .astype(fc.float32)"))
        return a

    return rule


def _mT(x):
    from funconv.ops.shape import swapaxes

    return swapaxes(x, -1, -2)


def _mm(x, y):
    from funconv.ops.linalg import matmul

    return matmul(x, y)


def _nan_where_singular(fn, a, *rest):
    """`fn(a, *rest)` over a batch of matrices in a's dtype, NaN for each matrix that LAPACK
    refuses (singular, or not positive definite for cholesky), as JAX gives NaN/inf there:
    an exception would be raised only eagerly, and by NumPy, not at the user's line."""
    try:
        return fn(a, *rest).astype(a.dtype, copy=False)
    except np.linalg.LinAlgError:
        shape = np.broadcast_shapes(*(x.shape[:-2] for x in (a,) + rest))
        first = None
        for i in np.ndindex(shape):
            try:
                r = fn(a[i], *(x[i] for x in rest))
            except np.linalg.LinAlgError:
                r = None
            if first is None and r is not None:
                first = np.full(shape + r.shape, np.nan, a.dtype)
            if first is not None and r is not None:
                first[i] = r
        if first is None:  # every matrix refused: the output has fn's shape for a's shape
            out_shape = a.shape if not rest else rest[0].shape
            return np.full(out_shape, np.nan, a.dtype)
        return first


# --- inv ---------------------------------------------------------------------------------------
inv_p = Primitive("inv", _square_rule("inv"), lambda a: _nan_where_singular(np.linalg.inv, a),
                  lambda ct, out, a: (-_mm(_mT(out), _mm(ct, _mT(out))),))


# --- solve: a x = b for b of shape (..., n, k) -------------------------------------------------
def _solve_rule(a: ArrayType, b: ArrayType) -> ArrayType:
    _square_rule("solve")(a)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1] or b.dtype != a.dtype:
        raise ShapeError(f"solve: right-hand side {b.short()} does not match {a.short()} "
                         "(needs (..., n, k) with the same batch dims and dtype)")
    return b


def _solve_vjp(ct, out, a, b):
    bb = solve_p(_mT(a), ct)          # b's cotangent: a^-T ct
    return -_mm(bb, _mT(out)), bb     # a's: -(a^-T ct) x^T


solve_p = Primitive("solve", _solve_rule, lambda a, b: _nan_where_singular(np.linalg.solve, a, b),
                    _solve_vjp)


# --- det ---------------------------------------------------------------------------------------
def _det_rule(a: ArrayType) -> ArrayType:
    _square_rule("det")(a)
    return ArrayType(a.shape[:-2], a.dtype)


def _det_vjp(ct, out, a):
    # d det(a) = det(a) tr(a^-1 da): the cotangent is ct det(a) a^-T (a singular a has no
    # inverse; its gradient, the adjugate, is not computed here: inf/nan result)
    return ((ct * out)[..., None, None] * _mT(inv_p(a)),)


det_p = Primitive("det", _det_rule, lambda a: np.linalg.det(a).astype(a.dtype, copy=False), _det_vjp)


# --- cholesky ----------------------------------------------------------------------------------
def _phi(x):
    """The lower triangle with the diagonal halved."""
    from funconv.ops.linalg import tril

    n = x.shape[-1]
    half = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
    return x * half.astype(x.dtype) if n else tril(x)


def _cholesky_vjp(ct, out, a):
    # Murray 2016: abar = L^-T phi(L^T Lbar) L^-1, symmetrised (only a's lower triangle is read,
    # but a symmetric cotangent is the convention of JAX and PyTorch)
    p = _phi(_mm(_mT(out), ct))
    x = solve_p(_mT(out), p)                   # L^-T P
    g = _mT(solve_p(_mT(out), _mT(x)))         # (L^-T (L^-T P)^T)^T = L^-T P L^-1
    return (0.5 * (g + _mT(g)),)


def _cholesky_impl(a):
    return _nan_where_singular(np.linalg.cholesky, a)


cholesky_p = Primitive("cholesky", _square_rule("cholesky"), _cholesky_impl, _cholesky_vjp)


# --- eigh (packed) -----------------------------------------------------------------------------
def _eigh_rule(a: ArrayType) -> ArrayType:
    _square_rule("eigh")(a)
    return ArrayType(a.shape[:-2] + (a.shape[-1] + 1, a.shape[-1]), a.dtype)


def _eigh_impl(a):
    w, v = np.linalg.eigh(a)
    return np.concatenate([w[..., None, :], v], axis=-2).astype(a.dtype, copy=False)


def _eigh_vjp(ct, out, a):
    # a = V diag(w) V^T: abar = V (diag(wbar) + F o (V^T Vbar)) V^T with F_ij = 1 / (w_j - w_i)
    # off the diagonal, 0 on it (Giles 2008), symmetrised. Repeated eigenvalues make F infinite:
    # their eigenvectors are not unique, so neither is the gradient (as in JAX).
    from funconv.ops.elementwise import where

    w, v = out[..., 0, :], out[..., 1:, :]
    wbar, vbar = ct[..., 0, :], ct[..., 1:, :]
    n = w.shape[-1]
    diff = w[..., None, :] - w[..., :, None]
    off = ~np.eye(n, dtype=bool)
    f = where(off, 1 / where(off, diff, 1), 0)
    eye = np.eye(n, dtype=a.dtype)
    inner = eye * wbar[..., None, :] + f * _mm(_mT(v), vbar)
    g = _mm(v, _mm(inner, _mT(v)))
    return (0.5 * (g + _mT(g)),)


eigh_p = Primitive("eigh", _eigh_rule, _eigh_impl, _eigh_vjp)
