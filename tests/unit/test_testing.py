"""fc.testing: the gradient checks find wrong rules (first and second order,
both modes) and accept right ones; the hypothesis strategies respect their
domains; hypothesis stays optional for `import funconv`."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import funconv as fc
from funconv.errors import ArgumentError
from funconv.testing import check_grads, check_jvp, check_vjp, strategies as fst

X = fc.asarray(np.array([0.3, -1.2, 2.0]))


def _custom(fun, fwd, bwd):
    f = fc.custom_vjp(fun)
    f.defvjp(fwd, bwd)
    return f


# a correct first derivative whose own derivative is wrong: bwd stops the gradient of cos(x)
sin_first_order_only = _custom(fc.sin, lambda x: (fc.sin(x), x),
                               lambda x, ct: (ct * fc.stop_gradient(fc.cos(x)),))
sin_wrong = _custom(fc.sin, lambda x: (fc.sin(x), x), lambda x, ct: (ct * fc.sin(x),))


def test_correct_functions_pass_to_third_order():
    check_grads(lambda x: fc.tanh(x) * fc.exp(x), (X,), order=3)
    check_grads(lambda x, y: (x[:, None] * y[None, :]) ** 2 / (1 + y * y), (X, X * 2), order=2)


def test_pytree_arguments_and_outputs_with_integer_leaves_held_fixed():
    def f(p, n):
        return {"a": fc.sin(p["w"]) * n, "b": [(p["w"] * p["v"][0]).sum()]}

    p = {"w": X, "v": [X * 0.5]}
    check_grads(f, (p, fc.array(3)), order=2)  # the int leaf is not perturbed
    check_grads(f, (p, 3), order=1)


def test_float32_arguments_use_float32_tolerances():
    check_grads(lambda x: fc.log(x * x + 1.0), (fc.array([0.5, -2.0, 3.0]),), order=2)


def test_complex_arguments_follow_the_jax_convention():
    z = fc.asarray(np.array([1.0 + 2.0j, -0.5 + 0.1j]))
    check_grads(lambda z: fc.real(z * fc.conj(z)) + fc.imag(z), (z,), order=1)
    check_grads(lambda z: z * z, (z,), order=1)


def test_wrong_first_derivative_is_caught_in_both_modes():
    with pytest.raises(AssertionError, match=r"^VJP check of .*<u, J v> by central differences"):
        check_vjp(sin_wrong, (X,))
    with pytest.raises(AssertionError, match=r"^JVP check of .*output leaf 0 \(f64\[3\]\)"):
        check_jvp(sin_wrong, (X,))
    with pytest.raises(AssertionError, match="JVP check"):
        check_grads(sin_wrong, (X,), modes=("fwd",))


def test_wrong_second_derivative_is_caught_only_at_order_two():
    check_grads(sin_first_order_only, (X,), order=1)
    with pytest.raises(AssertionError, match="JVP of JVP"):
        check_grads(sin_first_order_only, (X,), order=2, modes=("fwd",))
    with pytest.raises(AssertionError, match="VJP of VJP"):
        check_grads(sin_first_order_only, (X,), order=2, modes=("rev",))


def test_large_third_derivatives_do_not_fail_a_correct_rule():
    """tanh of a convolution whose outputs reach ~30: the plain central difference of the
    second derivative is 1e-4 off at eps=1e-5 (truncation); the retry with Richardson's
    extrapolation passes it, at default tolerances, in both modes."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 16, 16))
    w = rng.standard_normal((8, 8, 5, 5))
    fc.testing.check_grads(lambda w: fc.sum(fc.tanh(fc.conv(x, w, padding=1))), (w,), order=2)


def test_the_primal_output_is_checked_too():
    lying = _custom(fc.sin, lambda x: (fc.sin(x) + 1.0, None), lambda r, ct: (ct,))
    with pytest.raises(AssertionError, match="differs from the function's own output"):
        check_vjp(lying, (X,))


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="modes"):
        check_grads(fc.sin, (X,), modes=("backward",))
    with pytest.raises(ArgumentError, match="order"):
        check_grads(fc.sin, (X,), order=0)
    with pytest.raises(ArgumentError, match="tuple of arguments"):
        check_grads(fc.sin, X)


def test_explicit_tolerances_are_honoured():
    # a rule off by 1% passes a 5% tolerance and fails the default
    off = _custom(fc.sin, lambda x: (fc.sin(x), x), lambda x, ct: (ct * fc.cos(x) * 1.01,))
    check_grads(off, (X,), atol=0.05, rtol=0.05)
    with pytest.raises(AssertionError):
        check_grads(off, (X,))


# --- strategies ------------------------------------------------------------------------------


@given(fst.shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_shapes_respect_bounds(shape):
    assert 1 <= len(shape) <= 3 and all(2 <= s <= 4 for s in shape)


@given(fst.arrays(fst.shapes(max_dims=2), elements="positive"))
def test_positive_domain(x):
    assert isinstance(x, fc.Array) and x.dtype == np.float64
    assert np.all(np.asarray(x) >= 0.1) and np.all(np.asarray(x) <= 10)


@given(fst.arrays((3, 2), fc.float32, elements="nonzero"))
def test_bounded_away_from_zero(x):
    assert x.shape == (3, 2) and x.dtype == np.float32
    assert np.all(np.abs(np.asarray(x)) >= 0.0999)


@given(fst.arrays(4, elements=(-2.0, 3.0), min_abs=0.5))
def test_interval_with_min_abs(x):
    v = np.asarray(x)
    assert np.all((v >= -2.0) & (v <= 3.0)) and np.all(np.abs(v) >= 0.5)


@given(fst.arrays(fst.shapes(max_dims=2), fst.dtypes("fci")))
def test_dtype_strategy(x):
    assert x.dtype.kind in "fci" and x.dtype in (np.float32, np.float64, np.complex64,
                                                 np.complex128, np.int8, np.int16, np.int32, np.int64)


@given(fst.conv_configs(spatial_dims=2))
def test_conv_configs_are_valid_problems(cfg):
    x, w, kw = cfg
    y = fc.conv(x, w, **kw)
    n, cin, *sizes = x.shape
    cout, cg, *ks = w.shape
    assert cin == kw["groups"] * cg and cout % kw["groups"] == 0
    assert y.shape[:2] == (n, cout)
    for i, (size, k) in enumerate(zip(sizes, ks)):
        s, d, p = kw["stride"][i], kw["dilation"][i], kw["padding"]
        if p == "SAME":
            expect = -(-size // s)
        else:
            lo, hi = ((0, 0) if p == "VALID" else (p, p) if isinstance(p, int)
                      else (p[i], p[i]) if isinstance(p[i], int) else p[i])
            expect = (size + lo + hi - d * (k - 1) - 1) // s + 1
        assert y.shape[2 + i] == expect >= 1


@settings(max_examples=8)
@given(fst.conv_configs(spatial_dims=1, max_channels=2, max_extra=2))
def test_conv_configs_one_line_gradient_check(cfg):
    x, w, kw = cfg
    check_grads(lambda x, w: fc.conv(x, w, **kw), (x, w), modes="rev")


def test_unknown_domain_is_an_error():
    with pytest.raises(ArgumentError, match="unknown domain"):
        fst.arrays(3, elements="imaginary")
    with pytest.raises(ArgumentError, match="no values"):
        fst.arrays(3, elements=(-0.2, 0.2), min_abs=0.5)


@given(fst.arrays(fst.shapes(max_dims=2, max_side=3), elements="positive"))
def test_one_line_property_test_of_a_user_function(x):
    check_grads(lambda x: fc.log(x) * fc.sqrt(x), (x,), order=2)


def test_import_funconv_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import funconv as fc\n"
            "fc.testing.check_grads(fc.sin, (fc.ones(2),))\n"
            "try:\n"
            "    fc.testing.strategies.shapes()\n"
            "except ImportError as e:\n"
            "    print('ImportError:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "needs hypothesis: pip install hypothesis" in out.stdout
