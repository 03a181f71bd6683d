"""Elementwise wrappers against NumPy: broadcasting, weak scalars and dtype promotion,
integer semantics (abs, sign, //, %, **), complex predicates, clip and friends; gradients."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import DTypeError, ShapeError
from funconv.testing import check_grads

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 1, 4)).astype(np.float32)
B = RNG.standard_normal((2, 4)).astype(np.float32)


def same(got, want, exact=False):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "maximum", "minimum", "less",
                                  "less_equal", "greater", "greater_equal", "equal", "not_equal", "arctan2",
                                  "logaddexp"])
def test_binary_broadcasting_matches_numpy(name):
    got = getattr(fc, name)(A, B)
    want = getattr(np, name)(A, B)
    same(got, want)
    assert got.dtype == want.dtype


@pytest.mark.parametrize("name, lo, hi", [("exp", -2, 2), ("log", 0.1, 3), ("log1p", -0.5, 2), ("expm1", -2, 2),
                                          ("sin", -3, 3), ("cos", -3, 3), ("tan", -1, 1), ("tanh", -3, 3),
                                          ("sqrt", 0, 4), ("floor", -3, 3), ("ceil", -3, 3), ("round", -3, 3),
                                          ("trunc", -3, 3), ("exp2", -3, 3), ("log2", 0.1, 4), ("log10", 0.1, 4),
                                          ("reciprocal", 0.5, 2), ("square", -2, 2), ("negative", -2, 2),
                                          ("abs", -2, 2), ("sign", -2, 2)])
def test_unary_matches_numpy(name, lo, hi):
    x = RNG.uniform(lo, hi, (3, 4)).astype(np.float32)
    got = getattr(fc, name)(x)
    want = getattr(np, name)(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-6, atol=1e-6)


def test_round_is_half_to_even_like_numpy():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49], np.float32)
    same(fc.round(x), np.round(x), exact=True)


def test_weak_scalars_and_promotion():
    f32 = fc.ones(3)
    assert (f32 * 2.0).dtype == np.float32
    assert (2 * f32).dtype == np.float32
    assert (fc.ones(3, fc.int32) * 2).dtype == np.int32
    assert (fc.ones(3, fc.int32) * 2.0).dtype == np.float32
    assert (fc.ones(3, fc.int32) + fc.ones(3, fc.float64)).dtype == np.float64
    assert (fc.ones(3, fc.float32) + fc.ones(3, fc.float64)).dtype == np.float64
    assert (fc.ones(3) + 1j).dtype == np.complex64
    assert (fc.ones(3, fc.bool_) + fc.ones(3, fc.bool_)).dtype == np.bool_
    assert fc.exp(fc.arange(3)).dtype == np.float32
    assert (fc.arange(3) / 2).dtype == np.float32
    assert (np.ones(3, np.float32) + fc.ones(3)).dtype == np.float32  # ndarray op Array -> Array
    assert isinstance(np.ones(3) * fc.ones(3), fc.Array)


def test_integer_semantics_match_numpy():
    i = np.array([-7, -3, 0, 3, 7], np.int32)
    j = np.array([2, -2, 3, 2, -3], np.int32)
    for name in ["abs", "sign", "negative", "square"]:
        got = getattr(fc, name)(i)
        assert got.dtype == np.int32, name
        same(got, getattr(np, name)(i), exact=True)
    for name in ["floor_divide", "remainder", "maximum", "minimum", "multiply", "subtract"]:
        got = getattr(fc, name)(i, j)
        assert got.dtype == np.int32, name
        same(got, getattr(np, name)(i, j), exact=True)
    same(fc.asarray(i) // 2, i // 2, exact=True)
    same(fc.asarray(i) % 3, i % 3, exact=True)
    same(fc.floor_divide(np.array([2**30 + 1], np.int32), 1), [2**30 + 1], exact=True)  # no float detour
    p = fc.power(fc.array([2, 3, -2]), fc.array([3, 2, 3]))
    assert p.dtype == np.int32
    same(p, [8, 9, -8], exact=True)
    same(fc.power(fc.array([2, 1, -1, -1]), fc.array([-1, -5, -1, -2])), [0, 1, -1, 1], exact=True)
    same(fc.array([1, 2, 3]) ** 2, [1, 4, 9], exact=True)
    same(fc.asarray(np.array([True, False])) & np.array([True, True]), [True, False], exact=True)
    same(fc.array([6, 5]) & 3, np.array([6, 5]) & 3, exact=True)
    same(fc.array([6, 5]) | 3, np.array([6, 5]) | 3, exact=True)
    same(fc.array([6, 5]) ^ 3, np.array([6, 5]) ^ 3, exact=True)
    same(~fc.array([True, False]), [False, True], exact=True)
    same(fc.logical_and(np.array([0, 2]), np.array([1, 1])), [False, True], exact=True)
    same(fc.logical_xor(np.array([0, 2]), np.array([1, 1])), [True, False], exact=True)


def test_float_remainder_and_floor_divide_follow_sign_of_divisor():
    x = np.array([7.5, -7.5, 7.5, -7.5], np.float32)
    y = np.array([2.0, 2.0, -2.0, -2.0], np.float32)
    same(fc.remainder(x, y), np.remainder(x, y))
    same(fc.floor_divide(x, y), np.floor_divide(x, y))


def test_nan_inf_predicates_including_complex():
    x = np.array([1.0, np.nan, np.inf, -np.inf], np.float32)
    for name in ["isnan", "isinf", "isfinite"]:
        same(getattr(fc, name)(x), getattr(np, name)(x), exact=True)
    z = np.array([1 + 1j, np.nan + 0j, complex(0, np.inf), complex(np.nan, np.inf)], np.complex64)
    for name in ["isnan", "isinf", "isfinite"]:
        same(getattr(fc, name)(z), getattr(np, name)(z), exact=True)
    i = np.array([1, 2], np.int32)
    same(fc.isnan(i), [False, False], exact=True)
    same(fc.isfinite(i), [True, True], exact=True)


def test_complex_helpers():
    z = np.array([3 + 4j, -1 - 1j, 0j], np.complex64)
    got = fc.abs(z)
    assert got.dtype == np.float32
    same(got, np.abs(z))
    same(fc.real(z), z.real)
    same(fc.imag(z), z.imag)
    same(fc.conj(z), np.conj(z))
    same(fc.complex_(np.float32(1), np.float32(2)), 1 + 2j)
    same(fc.asarray(z).real, z.real)
    # d|z|/dz in funconv's (JAX's) convention: conj(z) / |z|
    g = fc.grad(lambda a, b: fc.abs(fc.complex_(a, b)), argnums=(0, 1))(3.0, 4.0)
    np.testing.assert_allclose([float(g[0]), float(g[1])], [0.6, 0.8], rtol=1e-6)


def test_clip_where():
    x = np.linspace(-2, 2, 9).astype(np.float32)
    same(fc.clip(x, -1, 1.5), np.clip(x, -1, 1.5))
    same(fc.clip(x, None, 0), np.clip(x, None, 0))
    same(fc.asarray(x).clip(0), np.clip(x, 0, None))
    same(fc.where(x > 0, x, 0.0), np.where(x > 0, x, 0.0))
    same(fc.where(np.array([[True], [False]]), x, -x), np.where(np.array([[True], [False]]), x, -x))
    assert fc.where(True, fc.ones(2, fc.int32), 0.5).dtype == np.float32


@pytest.mark.parametrize("f", [fc.exp, fc.log1p, fc.sin, fc.cos, fc.tanh, fc.sigmoid, fc.sqrt, fc.rsqrt,
                               fc.square, fc.tan, fc.exp2, fc.log2, fc.log10, fc.reciprocal,
                               lambda x: fc.clip(x, 0.8, 1.6), lambda x: fc.logaddexp(x, 2 * x),
                               lambda x: fc.arctan2(x, 1.5 - x), lambda x: x ** 2.5, lambda x: 2.0 ** x,
                               lambda x: fc.remainder(x, 0.3), lambda x: fc.maximum(x, 1.3)])
def test_gradients(f):
    x = RNG.uniform(0.5, 2.0, (2, 3))
    check_grads(f, (x,), order=2)


def test_errors():
    with pytest.raises(ShapeError, match=r"add.*f32\[3\].*f32\[4\]"):
        fc.add(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(DTypeError, match="bitwise_and"):
        fc.ones(2) & fc.ones(2)
    with pytest.raises(DTypeError, match="invert"):
        ~fc.ones(2)
    with pytest.raises(DTypeError):
        fc.remainder(np.ones(2, np.complex64), 1)
    with pytest.raises(DTypeError):
        -fc.array([True])


def test_elementwise_does_not_mutate():
    x = np.array([1.0, -2.0, 3.0], np.float32)
    keep = x.copy()
    a = fc.asarray(x)
    _ = a + 1, -a, fc.exp(a), fc.clip(a, 0, 1), fc.where(a > 0, a, 0), a ** 2, a // 2, a % 2, abs(a)
    np.testing.assert_array_equal(x, keep)


def test_isclose_allclose_array_equal():
    a = np.array([1.0, np.inf, np.nan, 1e-9, 100.0], np.float32)
    b = np.array([1.0 + 1e-6, np.inf, np.nan, 0.0, 100.1], np.float32)
    same(fc.isclose(a, b), np.isclose(a, b), exact=True)
    same(fc.isclose(a, b, equal_nan=True), np.isclose(a, b, equal_nan=True), exact=True)
    same(fc.isclose(a, b, atol=0.2), np.isclose(a, b, atol=0.2), exact=True)
    assert bool(fc.allclose(a[:2], b[:2])) and not bool(fc.allclose(a, b))
    assert bool(fc.allclose(a, b, atol=0.2, equal_nan=True))
    assert bool(fc.array_equal(np.arange(3), np.arange(3)))
    assert not bool(fc.array_equal(np.arange(3), np.arange(4)))
    same(fc.isclose(np.array([1, 2]), np.array([1, 3])), [True, False], exact=True)
