"""The Array API standard's values and namespace (issue 16): each value that funconv got
wrong before (empty reductions, integer rounding, complex special values, floor division by
or of infinity, complex sign, ~ on ints, 0-d bool index, tuples, dtypes), the namespace
functions, and that the new functions trace and differentiate."""

from __future__ import annotations

import math

import numpy as np
import pytest

import funconv as fc
from funconv.errors import DTypeError, ShapeError
from funconv.testing import check_grads

inf, nan = math.inf, math.nan


# --- reductions over empty axes --------------------------------------------------------------

def test_empty_all_any_are_their_identities():
    e = fc.zeros((0,), fc.bool_)
    assert fc.all(e).item() is True and fc.any(e).item() is False
    assert fc.all(e).dtype == np.bool_ and fc.all(e).shape == ()
    r = fc.any(fc.zeros((0, 3)), axis=0)
    assert r.shape == (3,) and not np.any(np.asarray(r))
    assert fc.all(fc.zeros((2, 0)), axis=1, keepdims=True).shape == (2, 1)


def test_empty_sum_prod_are_0_and_1():
    assert float(fc.sum(fc.zeros((0,)))) == 0.0
    assert float(fc.prod(fc.zeros((0,)))) == 1.0
    assert int(fc.sum(fc.zeros((0,), fc.int8))) == 0


def test_empty_max_min_raise_clearly():
    with pytest.raises(ShapeError, match=r"max: zero-size reduction .*f32\[0\].*no identity"):
        fc.max(fc.zeros((0,)))


def test_sum_of_narrow_ints_accumulates_in_the_default_int():
    x = fc.asarray(np.array([200, 100], np.uint8))
    assert fc.sum(x).dtype == np.uint32 and int(fc.sum(x)) == 300  # not 44 (wrapped in uint8)
    assert fc.sum(fc.asarray(np.array([100, 100], np.int8))).dtype == np.int32
    assert fc.sum(fc.zeros(3, fc.int64)).dtype == np.int64
    assert fc.prod(fc.asarray(np.array([16, 16], np.uint8))).item() == 256


# --- rounding of integers --------------------------------------------------------------------

@pytest.mark.parametrize("fn", [fc.floor, fc.ceil, fc.trunc, fc.round])
@pytest.mark.parametrize("dt", [fc.int8, fc.int32, fc.uint16, fc.int64])
def test_rounding_an_integer_keeps_it(fn, dt):
    x = fc.asarray(np.array([-3 if np.dtype(dt).kind == "i" else 3, 0, 7], dt))
    out = fn(x)
    assert out.dtype == dt
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


def test_rounding_floats_unchanged():
    np.testing.assert_array_equal(np.asarray(fc.trunc(fc.array([-1.5, 1.5]))), [-1.0, 1.0])
    np.testing.assert_array_equal(np.asarray(fc.round(fc.array([0.5, 1.5, 2.5]))), [0.0, 2.0, 2.0])


# --- complex special values ------------------------------------------------------------------

def test_tan_of_large_imaginary_part_does_not_overflow():
    v = complex(fc.tan(fc.array(1 + 90j, fc.complex64)))
    assert abs(v - 1j) < 1e-6  # sin/cos overflowed to nan+nanj
    assert complex(fc.tan(fc.array(1 - 90j, fc.complex128))) == pytest.approx(-1j)


@pytest.mark.parametrize("z, want", [
    (complex(inf, 0), complex(inf, 0)),
    (complex(-inf, inf), complex(-1, 0)),
    (complex(-inf, 1), complex(-1, 0)),
    (complex(0, 0), complex(0, 0)),
    (complex(nan, 0), complex(nan, 0)),
])
def test_expm1_complex_special_values(z, want):
    got = complex(fc.expm1(fc.array(z, fc.complex128)))
    for g, w in ((got.real, want.real), (got.imag, want.imag)):
        assert (math.isnan(g) and math.isnan(w)) or g == w, (z, got)


def test_expm1_complex_small_values_are_accurate():
    z = 1e-10 + 1e-10j
    assert complex(fc.expm1(fc.array(z, fc.complex128))) == pytest.approx(np.expm1(z), rel=1e-12)
    # exp(z) - 1 would lose every digit here
    assert abs(complex(fc.expm1(fc.array(z, fc.complex128))) - z) < 1e-19


def test_floor_divide_special_cases_follow_the_standard():
    def fd(a, b):
        return float(fc.floor_divide(fc.array(a, fc.float64), fc.array(b, fc.float64)))

    assert fd(inf, 2.0) == inf and fd(-inf, 2.0) == -inf and fd(inf, -2.0) == -inf  # NumPy: nan
    assert math.isnan(fd(inf, inf)) and math.isnan(fd(0.0, 0.0))
    assert fd(5.0, inf) == 0.0 and math.copysign(1, fd(5.0, -inf)) == -1 and fd(5.0, -inf) == 0.0
    assert fd(-5.0, inf) == 0.0 and math.copysign(1, fd(-5.0, inf)) == -1  # NumPy: -1.0
    assert fd(7.0, 2.0) == 3.0 and fd(-7.0, 2.0) == -4.0
    assert float(fc.array(inf) // 2.0) == inf


def test_remainder_special_cases_follow_the_standard():
    def rem(a, b):
        return float(fc.remainder(fc.array(a, fc.float64), fc.array(b, fc.float64)))

    assert math.isnan(rem(inf, 2.0)) and math.isnan(rem(5.0, 0.0))
    assert rem(5.0, inf) == 5.0 and rem(5.0, -inf) == -inf and rem(-5.0, inf) == inf
    assert rem(-7.0, 2.0) == 1.0


# --- valid inputs that were rejected ---------------------------------------------------------

def test_sign_of_complex_is_z_over_abs():
    assert complex(fc.sign(3 + 4j)) == pytest.approx(0.6 + 0.8j)
    assert complex(fc.sign(fc.array(0j))) == 0
    np.testing.assert_array_equal(np.asarray(fc.sign(fc.array([-2, 0, 5]))), [-1, 0, 1])
    with pytest.raises(DTypeError, match="sign: not defined for bool"):
        fc.sign(fc.array([True]))


def test_invert_of_ints_is_bitwise_not():
    np.testing.assert_array_equal(np.asarray(~fc.array([0, 5], fc.int32)), [-1, -6])
    u = ~fc.asarray(np.array([0, 5], np.uint8))
    assert u.dtype == np.uint8 and np.asarray(u).tolist() == [255, 250]
    assert fc.bitwise_invert(fc.array([True, False])).tolist() == [False, True]
    with pytest.raises(DTypeError, match=r"invert \(~x\): needs an integer or bool array, got f32\[1\]"):
        ~fc.array([1.0])


def test_zero_d_bool_index_adds_an_axis():
    x = fc.arange(3)
    assert x[fc.asarray(True)].shape == (1, 3)
    assert x[fc.asarray(False)].shape == (0, 3)
    assert fc.asarray(5)[fc.asarray(True)].tolist() == [5]


def test_meshgrid_and_broadcast_arrays_return_tuples():
    assert isinstance(fc.meshgrid(fc.arange(2), fc.arange(3)), tuple)
    assert isinstance(fc.broadcast_arrays(fc.ones(2), fc.ones((3, 1))), tuple)


# --- dtypes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                  "uint64", "float32", "float64", "complex64", "complex128", "bool"])
def test_every_standard_dtype_is_carried_as_is(name):
    x = fc.asarray([1, 0], dtype=np.dtype(name))
    assert x.dtype == np.dtype(name) and getattr(fc, name) == np.dtype(name)
    assert fc.asarray(np.array([1, 0], name)).dtype == np.dtype(name)


def test_unsupported_dtypes_raise_instead_of_being_replaced():
    with pytest.raises(DTypeError, match=r"float16 is not supported.*astype\(np.float32\)"):
        fc.asarray([1, 2], dtype=np.float16)
    with pytest.raises(DTypeError, match="float16 is not supported"):
        fc.asarray(np.ones(2, np.float16))


def test_uint8_wraps_as_uint8():
    x = fc.asarray(np.array([250], np.uint8))
    assert (x + 10).dtype == np.uint8 and (x + 10).tolist() == [4]


@pytest.mark.parametrize("a, b, want", [
    ("uint8", "int8", "int16"), ("uint16", "int16", "int32"), ("uint32", "int32", "int64"),
    ("uint8", "uint32", "uint32"), ("int8", "int64", "int64"), ("uint64", "int64", "float64"),
    ("uint8", "float32", "float32"), ("int16", "complex64", "complex64"), ("bool", "uint8", "uint8"),
])
def test_promotion_lattice(a, b, want):
    assert fc.result_type(np.dtype(a), np.dtype(b)) == np.dtype(want)
    assert (fc.zeros(1, a) + fc.zeros(1, b)).dtype == np.dtype(want)


def test_python_scalars_are_weak_for_small_ints():
    assert (fc.zeros(2, fc.uint8) + 1).dtype == np.uint8
    assert (fc.zeros(2, fc.int8) * 2.0).dtype == np.float32
    assert fc.result_type(fc.int16, 1) == np.int16


# --- the namespace ---------------------------------------------------------------------------

def test_namespace_and_version():
    x = fc.ones((2, 3))
    assert x.__array_namespace__() is fc
    assert fc.__array_api_version__ == "2025.12"
    assert x.device == "cpu" and x.to_device("cpu") is x
    assert x.mT.shape == (3, 2)
    with pytest.raises(ValueError, match="cpu"):
        x.to_device("gpu")
    info = fc.__array_namespace_info__()
    assert info.default_device() == "cpu" and info.devices() == ("cpu",)
    assert info.default_dtypes()["integral"] == np.int32
    assert set(info.dtypes(kind="unsigned integer")) == {"uint8", "uint16", "uint32", "uint64"}


def test_finfo_iinfo_isdtype_can_cast():
    assert fc.finfo(fc.float32).eps == np.finfo(np.float32).eps
    assert fc.finfo(fc.complex128).bits == 64
    assert fc.iinfo(fc.uint8).max == 255 and fc.iinfo(fc.zeros(1, fc.int8)).min == -128
    with pytest.raises(DTypeError, match="finfo: needs a floating-point dtype, got i32"):
        fc.finfo(fc.int32)
    assert fc.isdtype(fc.uint8, "integral") and not fc.isdtype(fc.uint8, "signed integer")
    assert fc.isdtype(fc.float32, ("bool", "real floating"))
    assert fc.can_cast(fc.int8, fc.int32) and not fc.can_cast(fc.int32, fc.int8)
    assert not fc.can_cast(fc.uint8, fc.int8)


def test_device_and_copy_keywords():
    assert fc.zeros(2, device="cpu").shape == (2,)
    with pytest.raises(fc.errors.ArgumentError, match="device must be None or 'cpu'"):
        fc.ones(2, device="cuda")
    x = fc.ones(2)
    assert fc.asarray(x, copy=False) is x
    with pytest.raises(ValueError, match="copy=False"):
        fc.asarray(np.ones(2), copy=False)
    assert fc.astype(x, fc.float64, copy=False).dtype == np.float64


def test_standard_names():
    x = fc.reshape(fc.arange(6), (2, 3))
    assert fc.concat([x, x], axis=None).shape == (12,)
    assert fc.permute_dims(x, (1, 0)).shape == (3, 2)
    assert fc.matrix_transpose(x).shape == (3, 2)
    assert [u.tolist() for u in fc.unstack(x)] == [[0, 1, 2], [3, 4, 5]]
    assert fc.pow(fc.array(2), 3).item() == 8 and fc.atan2 is fc.arctan2
    assert fc.vecdot(fc.array([1j, 2]), fc.array([1j, 1])).item() == pytest.approx(3)  # conj(x1)
    np.testing.assert_array_equal(np.asarray(fc.cumulative_sum(fc.array([1, 2, 3]), include_initial=True)),
                                  [0, 1, 3, 6])
    np.testing.assert_array_equal(np.asarray(fc.cumulative_prod(fc.array([1, 2, 3, 4]))), [1, 2, 6, 24])
    assert fc.searchsorted(fc.array([1.0, 2.0, 3.0]), fc.array([2.0, 0.0]), side="right").tolist() == [2, 0]
    u = fc.unique_all(fc.array([3, 1, 3]))
    assert u.values.tolist() == [1, 3] and u.counts.tolist() == [1, 2]
    assert u.inverse_indices.tolist() == [1, 0, 1] and u.indices.tolist() == [1, 0]
    assert fc.isin(fc.array([1, 2]), fc.array([2, 5])).tolist() == [False, True]
    assert fc.var(fc.arange(4.0), correction=1).item() == pytest.approx(5 / 3)
    assert fc.clip(fc.arange(5), min=1, max=3).tolist() == [1, 1, 2, 3, 3]
    assert fc.clip(fc.arange(5), a_min=1).tolist() == [1, 1, 2, 3, 4]
    assert fc.diff(fc.array([1, 4]), prepend=fc.array([0]), append=fc.array([9])).tolist() == [1, 3, 5]
    assert (fc.array([1, 2]) << 3).tolist() == [8, 16]
    assert fc.bitwise_left_shift(fc.array([1], fc.int32), fc.array([40], fc.int32)).tolist() == [0]
    assert fc.bitwise_right_shift(fc.array([-8]), fc.array([40])).tolist() == [-1]
    assert fc.hypot(fc.array(3e30), fc.array(4e30)).item() == pytest.approx(5e30)
    assert fc.signbit(fc.array([-0.0, 0.0])).tolist() == [True, False]


@pytest.mark.parametrize("fn, lo, hi", [
    (fc.sinh, -2, 2), (fc.cosh, -2, 2), (fc.tan, -1, 1), (fc.asin, -0.9, 0.9), (fc.acos, -0.9, 0.9),
    (fc.atan, -2, 2), (fc.asinh, -2, 2), (fc.acosh, 1.2, 3), (fc.atanh, -0.9, 0.9),
])
def test_new_functions_differentiate_and_jit(fn, lo, hi):
    x = fc.asarray(np.linspace(lo, hi, 5))
    check_grads(fn, (x,), order=2)
    np.testing.assert_allclose(np.asarray(fc.jit(fn)(x)), np.asarray(fn(x)), rtol=1e-12)


def test_compositions_differentiate():
    x = fc.asarray(np.array([1.0, 2.0, 0.5, 3.0]))
    check_grads(lambda v: fc.cumulative_prod(v), (x,), order=2)
    check_grads(lambda v: fc.cumulative_sum(v, include_initial=True), (x,), order=1)
    check_grads(lambda v: fc.vecdot(v, v * 2), (x,), order=2)
    check_grads(lambda v: fc.hypot(v, v + 1), (x,), order=1)
    check_grads(lambda v: fc.sign(fc.complex_(v, v + 1)).real, (x,), order=1)
    g = fc.grad(lambda v: fc.unique_values(v).sum())(fc.array([2.0, 1.0, 2.0]))
    assert g.tolist() == [1.0, 1.0, 0.0]  # the first occurrence carries the gradient


# --- the linalg extension --------------------------------------------------------------------

def _spd(n=3, seed=0):
    a = np.random.default_rng(seed).normal(size=(2, n, n))
    return a @ np.swapaxes(a, -1, -2) + np.diag(np.arange(1.0, n + 1) * 2)


def test_linalg_values_match_numpy():
    a = np.random.default_rng(1).normal(size=(2, 3, 3)) + 3 * np.eye(3)
    b = np.random.default_rng(2).normal(size=(2, 3, 2))
    la = fc.linalg
    np.testing.assert_allclose(np.asarray(la.inv(a)), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(la.solve(a, b)), np.linalg.solve(a, b), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(la.solve(a[0], b[0, :, 0])), np.linalg.solve(a[0], b[0, :, 0]))
    np.testing.assert_allclose(np.asarray(la.det(a)), np.linalg.det(a), rtol=1e-10)
    s, l = la.slogdet(a)
    np.testing.assert_allclose(np.asarray(l), np.linalg.slogdet(a)[1], rtol=1e-10)
    spd = _spd()
    np.testing.assert_allclose(np.asarray(la.cholesky(spd)), np.linalg.cholesky(spd), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(la.cholesky(spd, upper=True)),
                               np.swapaxes(np.linalg.cholesky(spd), -1, -2), rtol=1e-10)
    w, v = la.eigh(spd)
    np.testing.assert_allclose(np.asarray(w), np.linalg.eigvalsh(spd), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(v @ (w[..., None] * v.mT)), spd, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(la.matrix_norm(a, ord=1)), np.linalg.norm(a, 1, axis=(-2, -1)))
    np.testing.assert_allclose(np.asarray(la.vector_norm(a, axis=-1, ord=3)),
                               np.linalg.norm(a, 3, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(la.matrix_power(a, -3)), np.linalg.matrix_power(a, -3), rtol=1e-8)
    assert la.cross(fc.array([1.0, 0, 0]), fc.array([0.0, 1, 0])).tolist() == [0, 0, 1]
    assert np.isnan(np.asarray(la.cholesky(-np.eye(2)))).all()  # not positive definite: NaN


def test_linalg_gradients():
    a = fc.asarray(np.random.default_rng(1).normal(size=(3, 3)) + 3 * np.eye(3))
    b = fc.asarray(np.random.default_rng(2).normal(size=(3, 2)))
    spd = fc.asarray(_spd()[0])
    la = fc.linalg
    check_grads(la.inv, (a,), order=2)
    check_grads(la.solve, (a, b), order=2)
    check_grads(la.det, (a,), order=2)
    check_grads(lambda m: la.slogdet(m).logabsdet, (a,), order=1)
    check_grads(lambda m: la.cholesky(m), (spd,), order=2)
    check_grads(lambda m: la.eigvalsh(m + m.mT), (spd,), order=1)
    check_grads(lambda m: la.eigh(m + m.mT).eigenvectors ** 2, (spd,), order=1)  # sign-free
    check_grads(lambda m: la.vector_norm(m), (a,), order=2)


def test_linalg_errors():
    with pytest.raises(ShapeError, match=r"linalg.inv: needs a stack of square matrices .*f32\[2,3\]"):
        fc.linalg.inv(fc.zeros((2, 3)))
    with pytest.raises(DTypeError, match=r"cholesky: needs real floating matrices, got c64\[2,2\]"):
        fc.linalg.cholesky(fc.zeros((2, 2), fc.complex64))
    with pytest.raises(fc.errors.ArgumentError, match="'nuc' need an SVD"):
        fc.linalg.matrix_norm(fc.eye(2), ord="nuc")


def test_singular_matrices_give_nan_not_a_numpy_exception():
    """As JAX: LAPACK's refusal becomes NaN for that matrix (eagerly and under jit), never a
    bare numpy.linalg.LinAlgError from deep inside."""
    a = np.stack([np.eye(2), np.zeros((2, 2))]).astype(np.float32)
    b = np.ones((2, 2, 1), np.float32)
    for f in (lambda a, b: fc.linalg.solve(a, b), fc.jit(lambda a, b: fc.linalg.solve(a, b))):
        x = np.asarray(f(a, b))
        np.testing.assert_array_equal(x[0], np.ones((2, 1)))
        assert np.isnan(x[1]).all()
    inv = np.asarray(fc.linalg.inv(a))
    np.testing.assert_array_equal(inv[0], np.eye(2))
    assert np.isnan(inv[1]).all()


def test_namespace_serves_earlier_versions_and_refuses_unknown_ones():
    x = fc.ones(3)
    for v in (None, "2023.12", fc.__array_api_version__):
        assert x.__array_namespace__(api_version=v) is fc
    with pytest.raises(ValueError, match="2030.12"):
        x.__array_namespace__(api_version="2030.12")
