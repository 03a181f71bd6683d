"""Domain entries of the Array API's elementwise primitives (funconv/ops/elementwise.py's
"Array API additions"): the inverse and hyperbolic functions, tan, hypot, copysign,
nextafter, signbit, integer bitwise not and the shifts. Shifts are checked against Python's
unbounded ints (x << y wrapped to the dtype, x >> y floored), so counts past the width are
tested against the mathematical meaning, not NumPy's platform-dependent one."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from domains import DOMAINS, Case, Domain, away, draw_shape, floats, ints, rng


def _unary(np_fn, lo=-2.0, hi=2.0, **kw):
    def sample(data, dtype):
        return Case((floats(rng(data), draw_shape(data), dtype, lo, hi),))

    return Domain(sample, numpy=np_fn, **kw)


def _pair(data, dtype):
    r = rng(data)
    shape = draw_shape(data)
    return Case((away(r, shape, dtype), away(r, shape, dtype)))


DOMAINS["tan"] = _unary(np.tan, -1.2, 1.2, rtol=1e-5)
DOMAINS["sinh"] = _unary(np.sinh, rtol=1e-5)
DOMAINS["cosh"] = _unary(np.cosh, rtol=1e-5)
DOMAINS["asin"] = _unary(np.arcsin, -0.9, 0.9, rtol=1e-5)
DOMAINS["acos"] = _unary(np.arccos, -0.9, 0.9, rtol=1e-5)
DOMAINS["atan"] = _unary(np.arctan, rtol=1e-5)
DOMAINS["asinh"] = _unary(np.arcsinh, rtol=1e-5)
DOMAINS["acosh"] = _unary(np.arccosh, 1.2, 3.0, rtol=1e-5)
DOMAINS["atanh"] = _unary(np.arctanh, -0.9, 0.9, rtol=1e-5)
DOMAINS["signbit"] = _unary(np.signbit)
DOMAINS["hypot"] = Domain(_pair, numpy=lambda x, y: np.sqrt(x.astype(np.float64) ** 2 + y.astype(np.float64) ** 2).astype(x.dtype), rtol=1e-5)
DOMAINS["copysign"] = Domain(_pair, numpy=lambda x, y: np.where((y < 0) == (x < 0), x, -x))
DOMAINS["nextafter"] = Domain(_pair, numpy=np.nextafter)


def _int_sample(n, shift=False):
    def sample(data, dtype):
        r = rng(data)
        shape = draw_shape(data)
        dt = np.dtype(data.draw(st.sampled_from(["int8", "int32", "int64", "uint8", "uint16"]),
                                label="int dtype"))
        lo = 0 if dt.kind == "u" else -9
        x = ints(r, shape, lo, 10, dt)
        if not shift:
            return Case((x,))
        return Case((x, ints(r, shape, 0, 8 * dt.itemsize + 3, dt)))

    return sample


def _wrap(v, dtype):
    bits = 8 * dtype.itemsize
    v %= 2 ** bits
    return v - 2 ** bits if dtype.kind == "i" and v >= 2 ** (bits - 1) else v


def _python_shift(op):
    def ref(x, y):
        out = [_wrap(op(int(a), int(b)), x.dtype) for a, b in zip(x.ravel(), y.ravel())]
        return np.array(out, dtype=x.dtype).reshape(x.shape)

    return ref


DOMAINS["bitwise_not"] = Domain(_int_sample(1), numpy=lambda x: _python_shift(lambda a, b: ~a)(x, x))
DOMAINS["shift_left"] = Domain(_int_sample(2, shift=True), numpy=_python_shift(lambda a, b: a << b))
DOMAINS["shift_right"] = Domain(_int_sample(2, shift=True), numpy=_python_shift(lambda a, b: a >> b))


def _searchsorted(data, dtype):
    r = rng(data)
    x1 = np.sort(np.round(floats(r, (data.draw(st.integers(1, 6), label="n"),), dtype) * 2) / 2)
    x2 = (np.round(floats(r, draw_shape(data), dtype) * 2) / 2).astype(dtype)  # ties with x1 too
    return Case((x1.astype(dtype), x2), {"side": data.draw(st.sampled_from(["left", "right"]))})


def _searchsorted_reference(x1, x2, *, side):
    # the count of elements before the insertion point, by definition
    below = (x1[None, :] < x2.reshape(-1, 1)) if side == "left" else (x1[None, :] <= x2.reshape(-1, 1))
    return below.sum(axis=1).astype(np.int32).reshape(x2.shape)


DOMAINS["searchsorted"] = Domain(_searchsorted, numpy=_searchsorted_reference)


# --- linalg decompositions (funconv/ops/decomp.py) --------------------------------------------


def _matrices(data, dtype, spd=False):
    r = rng(data)
    n = data.draw(st.integers(1, 4), label="n")
    batch = draw_shape(data, max_dims=1, max_side=2)
    a = r.normal(size=batch + (n, n))
    if spd:  # well conditioned, distinct eigenvalues (eigh's derivative needs them)
        a = a @ np.swapaxes(a, -1, -2) + np.diag(np.arange(1, n + 1) * 2.0)
    else:
        a = a + 3 * np.eye(n)  # far from singular
    return a.astype(dtype)


DOMAINS["inv"] = Domain(lambda data, dtype: Case((_matrices(data, dtype),)), numpy=np.linalg.inv,
                        rtol=1e-4, atol=1e-5)
DOMAINS["det"] = Domain(lambda data, dtype: Case((_matrices(data, dtype),)), numpy=np.linalg.det,
                        rtol=1e-4, atol=1e-5)


def _solve(data, dtype):
    a = _matrices(data, dtype)
    k = data.draw(st.integers(1, 3), label="k")
    return Case((a, rng(data).normal(size=a.shape[:-1] + (k,)).astype(dtype)))


DOMAINS["solve"] = Domain(_solve, numpy=lambda a, b: np.einsum("...ij,...jk->...ik", np.linalg.inv(a), b),
                          rtol=1e-4, atol=1e-5)


def _cholesky_reference(a):
    # the Cholesky-Banachiewicz recurrence, independent of LAPACK
    a = a.astype(np.float64)
    out = np.zeros_like(a)
    n = a.shape[-1]
    for i in range(n):
        for j in range(i + 1):
            s = a[..., i, j] - (out[..., i, :j] * out[..., j, :j]).sum(-1)
            out[..., i, j] = np.sqrt(s) if i == j else s / out[..., j, j]
    return out


# the derivative checks perturb every entry; only symmetric perturbations keep the input
# symmetric, so the checks go through fc.linalg (which symmetrises) in the unit tests, and
# the impls are checked here
DOMAINS["cholesky"] = Domain(lambda data, dtype: Case((_matrices(data, dtype, spd=True),)),
                             numpy=lambda a: _cholesky_reference(a).astype(a.dtype), rtol=1e-4,
                             atol=1e-5, vjp_is_derivative=False)




DOMAINS["eigh"] = Domain(lambda data, dtype: Case((_matrices(data, dtype, spd=True),)),
                         numpy=lambda a: np.concatenate(
                             [np.linalg.eigvalsh(a)[..., None, :], np.linalg.eigh(a)[1]], axis=-2),
                         rtol=1e-4, atol=1e-4, vjp_is_derivative=False)
