"""Reductions against NumPy: axis None/int/tuple/negative, keepdims, dtypes; gradients
(max/min send the cotangent to the first extremum; prod through zeros)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import funconv as fc
from funconv.errors import AxisError, ShapeError
from funconv.testing import check_grads

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4)).astype(np.float32)
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2), ()]


def close(got, want, rtol=1e-5):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "max", "min", "any", "all"])
def test_reductions_match_numpy(name, axis, keepdims):
    x = X > 0 if name in ("any", "all") else X
    got = getattr(fc, name)(x, axis=axis, keepdims=keepdims)
    want = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    close(got, want)
    if name in ("any", "all"):
        assert got.dtype == np.bool_
    else:
        assert got.dtype == np.float32
    method = getattr(fc.asarray(x), name)(axis=axis, keepdims=keepdims)
    close(method, want)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_argmin_logsumexp_cumsum(axis, keepdims):
    for name in ("argmax", "argmin"):
        got = getattr(fc, name)(X, axis=axis, keepdims=keepdims)
        want = getattr(np, name)(X, axis=axis, keepdims=keepdims)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(np.asarray(got), want)
    m = np.max(X, axis=axis, keepdims=True)
    lse = np.log(np.sum(np.exp(X - m), axis=axis, keepdims=True)) + m
    close(fc.logsumexp(X, axis=axis, keepdims=keepdims), lse if keepdims else np.squeeze(lse, axis))
    close(fc.cumsum(X, axis=axis), np.cumsum(X, axis=axis))


def test_dtypes_follow_jax():
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert fc.sum(i).dtype == np.int32 and int(fc.sum(i)) == 15
    assert fc.sum(np.ones(3, bool)).dtype == np.int32
    assert fc.sum(np.arange(3, dtype=np.int64)).dtype == np.int64
    assert fc.mean(i).dtype == np.float32 and float(fc.mean(i)) == 2.5
    assert fc.prod(i + 1).dtype == np.int32 and int(fc.prod(i + 1)) == 720
    assert fc.max(i, axis=0).dtype == np.int32
    assert fc.sum(i, dtype=np.float64).dtype == np.float64
    assert fc.cumsum(np.ones(3, bool)).dtype == np.int32
    assert fc.count_nonzero(np.array([0, 1, 2])).item() == 2
    z = (np.arange(4) + 1j * np.arange(4)).astype(np.complex64)
    close(fc.var(z), np.var(z))
    assert fc.var(z).dtype == np.float32
    close(fc.sum(z), np.sum(z))
    close(fc.var(X, axis=1, ddof=1), np.var(X, axis=1, ddof=1))


def test_extreme_values():
    close(fc.logsumexp(np.array([-np.inf, -np.inf])), -np.inf)
    close(fc.logsumexp(np.array([1000.0, 1000.0], np.float32)), 1000 + np.log(2))
    close(fc.max(np.array([1.0, np.inf])), np.inf)
    close(fc.prod(np.array([2.0, 0.0, 3.0])), 0.0)
    close(fc.prod(np.array([-2.0, -1.5, 3.0])), 9.0)


def test_max_min_gradient_goes_to_first_extremum():
    x = fc.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    g = fc.grad(lambda a: fc.max(a, axis=1).sum())(x)
    np.testing.assert_array_equal(np.asarray(g), [[0, 1, 0], [1, 0, 0]])
    g = fc.grad(lambda a: fc.min(a))(fc.array([[5.0, 1.0], [1.0, 1.0]]))
    np.testing.assert_array_equal(np.asarray(g), [[0, 1], [0, 0]])
    g = fc.grad(lambda a: fc.max(a, axis=0).sum())(fc.array([[1.0, 2.0], [1.0, 2.0]]))
    np.testing.assert_array_equal(np.asarray(g), [[1, 1], [0, 0]])


def test_prod_gradient_through_zeros():
    for x in ([2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [2.0, -1.0, 3.0], [0.0]):
        x = np.array(x)
        g = np.asarray(fc.grad(lambda a: fc.prod(a))(x))
        want = [np.prod(np.delete(x, i)) for i in range(x.size)]
        np.testing.assert_allclose(g, want)
    x = RNG.standard_normal((3, 4))
    x[1, 2] = 0.0
    check_grads(lambda a: fc.prod(a, axis=1), (x,))


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "max", "min", "logsumexp"])
def test_reduction_gradients(name):
    x = RNG.standard_normal((3, 4)) + np.arange(12).reshape(3, 4) * 0.3  # no ties
    f = getattr(fc, name)
    check_grads(lambda a: f(a, axis=1), (x,), order=2)
    check_grads(lambda a: f(a, axis=(0, 1), keepdims=True), (x,), order=2)


def test_cumsum_gradient():
    x = RNG.standard_normal((3, 4))
    check_grads(lambda a: fc.cumsum(a, axis=1) ** 2, (x,), order=2)
    check_grads(lambda a: fc.cumsum(a), (x,))


def test_errors():
    with pytest.raises(AxisError, match="out of range"):
        fc.sum(X, axis=3)
    with pytest.raises(AxisError, match="repeated"):
        fc.sum(X, axis=(0, 0))
    with pytest.raises(AxisError):
        fc.argmax(X, axis=-4)
    with pytest.raises(ShapeError, match="zero-size"):
        fc.max(np.zeros((0, 3)), axis=0)
    assert fc.sum(np.zeros((0, 3)), axis=0).shape == (3,)


def test_reductions_do_not_mutate():
    base = X.copy()
    a = fc.asarray(base)
    _ = fc.sum(a), fc.var(a, axis=1), fc.prod(a), fc.logsumexp(a), fc.cumsum(a), fc.grad(lambda t: fc.max(t))(a)
    np.testing.assert_array_equal(base, X)


@given(st.data())
def test_random_axes_match_numpy(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=0, max_size=4), label="shape"))
    nd = len(shape)
    x = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed")).standard_normal(shape)
    x = x.astype(np.float32)
    axis = data.draw(st.none() | st.lists(st.integers(-nd, nd - 1), unique_by=lambda a: a % nd,
                                           max_size=nd).map(tuple) if nd else st.none(), label="axis")
    if axis is not None and len(axis) == 1 and data.draw(st.booleans(), label="as int"):
        axis = axis[0]
    keepdims = data.draw(st.booleans(), label="keepdims")
    name = data.draw(st.sampled_from(["sum", "mean", "max", "min", "prod", "var", "std", "any", "all"]),
                     label="op")
    arg = x > 0 if name in ("any", "all") else x
    got = getattr(fc, name)(arg, axis=axis, keepdims=keepdims)
    want = getattr(np, name)(arg, axis=axis, keepdims=keepdims)
    close(got, want, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cumsum_of_short_axes_is_numpys_exactly(dtype, axis):
    # many short rows take the add-per-position path (see reduce._SHORT_SCAN): same order
    # of additions as np.cumsum, so the same bits
    from funconv.ops import reduce as reduce_mod

    shape = [40, 30, 50]
    shape[axis] = 7
    x = np.random.default_rng(axis).standard_normal(shape) * 100
    x = x.astype(dtype) if dtype is not np.bool_ else x > 0
    assert x.size >= 64 * 7 and 7 <= reduce_mod._SHORT_SCAN
    ref = np.cumsum(x, axis=axis, dtype=np.int32 if dtype is np.bool_ else dtype)
    np.testing.assert_array_equal(np.asarray(fc.cumsum(x, axis=axis)), ref)
    if dtype is np.float64:
        check_grads(lambda a: fc.cumsum(a, axis=axis) ** 2, (x,), order=1)
