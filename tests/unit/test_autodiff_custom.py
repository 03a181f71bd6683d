"""custom_vjp: a numerically stable log1pexp, a straight-through estimator,
higher order through a custom bwd, pytrees, nondiff_argnums, graphs and jit,
and the errors a wrong rule gets."""

import numpy as np
import pytest

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.errors import ArgumentError, ShapeError


@fc.custom_vjp
def log1pexp(x):
    # log(1 + e^x) without overflow for large x
    return fc.where(x > 0, x + fc.log1p(fc.exp(-x)), fc.log1p(fc.exp(x)))


def _log1pexp_fwd(x):
    return log1pexp(x), x  # calling the function itself inside fwd is allowed (as in JAX)


def _log1pexp_bwd(x, ct):
    # the naive derivative exp(x) / (1 + exp(x)) is inf/inf = nan for large x
    return (ct * (1 - 1 / (1 + fc.exp(x))),)


log1pexp.defvjp(_log1pexp_fwd, _log1pexp_bwd)


def naive_log1pexp(x):
    return fc.log(1 + fc.exp(x))


def test_log1pexp_gradient_is_finite_where_the_naive_one_is_nan():
    x = fc.array([-100.0, -1.0, 0.0, 1.0, 100.0])
    with pytest.warns(RuntimeWarning, match="invalid value"):  # inf * 0 in the naive rule
        naive = np.asarray(fc.grad(lambda x: naive_log1pexp(x).sum())(x))
    assert np.isnan(naive[-1])  # the reason for a custom rule
    g = np.asarray(fc.grad(lambda x: log1pexp(x).sum())(x))
    xs = np.array([-100.0, -1.0, 0.0, 1.0, 100.0])
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-xs)), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(np.asarray(log1pexp(x)), np.logaddexp(0, xs), rtol=1e-6, atol=1e-12)


def test_log1pexp_passes_check_grads_to_second_order():
    # second order differentiates bwd itself: d/dx sigmoid(x) = sigmoid (1 - sigmoid)
    x = fc.asarray(np.array([-3.0, -0.5, 0.25, 4.0]))
    fc.testing.check_grads(log1pexp, (x,), order=2)
    d2 = fc.grad(fc.grad(lambda t: log1pexp(t)))(fc.asarray(np.array(0.5)))
    s = 1 / (1 + np.exp(-0.5))
    assert float(d2) == pytest.approx(s * (1 - s), rel=1e-12)


@fc.custom_vjp
def straight_through_round(x):
    return fc.round(x)


straight_through_round.defvjp(lambda x: (fc.round(x), None), lambda res, ct: (ct,))


def test_straight_through_estimator():
    x = fc.array([0.2, 1.7, -2.4])
    np.testing.assert_array_equal(np.asarray(straight_through_round(x)), [0.0, 2.0, -2.0])
    assert float(fc.grad(lambda x: fc.round(x).sum())(x).sum()) == 0.0  # round has zero slope
    g = fc.grad(lambda x: (straight_through_round(x) * fc.array([1.0, 2.0, 3.0])).sum())(x)
    np.testing.assert_array_equal(np.asarray(g), [1.0, 2.0, 3.0])


def test_custom_rule_is_used_even_when_it_is_wrong():
    # a deliberately different rule shows that bwd, not fun's own derivative, is used
    @fc.custom_vjp
    def f(x):
        return fc.sin(x)

    f.defvjp(lambda x: (fc.sin(x), (x, 3.0)), lambda res, ct: (ct * res[0] * res[1],))
    x = fc.asarray(np.array([0.5, 2.0]))
    np.testing.assert_allclose(np.asarray(fc.grad(lambda x: f(x).sum())(x)), 3 * np.asarray(x))
    with pytest.raises(AssertionError, match="VJP"):
        fc.testing.check_grads(f, (x,), modes=("rev",))


def test_multiple_outputs_pytree_arguments_and_none_cotangents():
    @fc.custom_vjp
    def f(p, y):
        return {"prod": p["a"] * y, "sum": p["b"] + y}

    def fwd(p, y):
        return f(p, y), (p["a"], y)

    def bwd(res, ct):
        a, y = res
        # cotangent for p as a pytree, with None for a zero leaf
        return ({"a": ct["prod"] * y, "b": ct["sum"]}, ct["prod"] * a + ct["sum"])

    f.defvjp(fwd, bwd)
    p = {"a": fc.asarray(np.array([1.0, 2.0])), "b": fc.asarray(np.array([0.5, 0.5]))}
    y = fc.asarray(np.array([3.0, 4.0]))
    fc.testing.check_grads(f, (p, y), order=1)
    gp, gy = fc.grad(lambda p, y: (f(p, y)["prod"] * 2 + f(p, y)["sum"]).sum(), argnums=(0, 1))(p, y)
    np.testing.assert_allclose(np.asarray(gp["a"]), 2 * np.asarray(y))
    np.testing.assert_allclose(np.asarray(gp["b"]), [1.0, 1.0])
    np.testing.assert_allclose(np.asarray(gy), 2 * np.asarray(p["a"]) + 1)

    @fc.custom_vjp
    def g(p, y):
        return p["a"] * y

    g.defvjp(lambda p, y: (g(p, y), y), lambda y, ct: ({"a": ct * y, "b": None}, None))
    gp, gy = fc.grad(lambda p, y: (g(p, y)).sum(), argnums=(0, 1))(p, y)
    np.testing.assert_allclose(np.asarray(gp["a"]), np.asarray(y))
    np.testing.assert_array_equal(np.asarray(gp["b"]), [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(gy), [0.0, 0.0])


def test_nondiff_argnums_are_passed_to_bwd_first():
    def clip_gradient(lo, hi, x):
        return x

    clip_gradient = fc.custom_vjp(clip_gradient, nondiff_argnums=(0, 1))
    clip_gradient.defvjp(lambda lo, hi, x: (x, None),
                         lambda lo, hi, res, ct: (fc.clip(ct, lo, hi),))
    g = fc.grad(lambda x: (clip_gradient(-1.0, 1.0, x) * fc.array([0.5, 3.0, -7.0])).sum())(fc.ones(3))
    np.testing.assert_array_equal(np.asarray(g), [0.5, 1.0, -1.0])


def test_eager_call_runs_the_function_itself():
    calls = []

    @fc.custom_vjp
    def f(x):
        calls.append("fun")
        return x * 2

    f.defvjp(lambda x: (calls.append("fwd") or x * 2, None), lambda r, ct: (ct * 2,))
    f(fc.ones(2))
    assert calls == ["fun"]
    fc.grad(lambda x: f(x).sum())(fc.ones(2))
    assert calls == ["fun", "fwd"]
    assert f.__name__ == "f"


def test_keyword_arguments_are_bound_by_name():
    @fc.custom_vjp
    def scale(x, factor=2.0):
        return x * factor

    scale.defvjp(lambda x, factor=2.0: (x * factor, factor), lambda factor, ct: (ct * factor, (ct * 0).sum()))
    g = fc.grad(lambda x: scale(x, factor=fc.array(5.0)).sum())(fc.ones(2))
    np.testing.assert_array_equal(np.asarray(g), [5.0, 5.0])


def test_graph_holds_an_identity_node_any_consumer_can_evaluate():
    graph = fc.make_graph(lambda x: log1pexp(x))(fc.ones(3))
    assert "custom_vjp_call" in str(graph) and "<custom_vjp log1pexp>" in str(graph)
    xs = np.array([-50.0, 0.0, 50.0], np.float32)
    np.testing.assert_allclose(evaluate(graph, [xs])[0], np.logaddexp(0, xs), rtol=1e-6, atol=1e-12)
    dgraph = fc.make_graph(fc.grad(lambda x: log1pexp(x).sum()))(fc.ones(3))
    sigmoid = 1 / (1 + np.exp(-xs.astype(np.float64)))
    np.testing.assert_allclose(evaluate(dgraph, [xs])[0], sigmoid, atol=1e-12, rtol=1e-6)


def test_custom_vjp_under_jit():
    try:
        jitted = fc.jit(fc.grad(lambda x: log1pexp(x).sum()))
        got = jitted(fc.array([0.0, 100.0]))
    except NotImplementedError:
        pytest.skip("fc.jit is not implemented yet")
    np.testing.assert_allclose(np.asarray(got), [0.5, 1.0], rtol=1e-6)
    # grad of a jitted function inlines the graph, custom rule included
    g = fc.grad(lambda x: fc.jit(log1pexp)(x).sum())(fc.array([0.0, 100.0]))
    np.testing.assert_allclose(np.asarray(g), [0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fc.jit(log1pexp)(fc.array([0.0, 100.0]))),
                               [np.log(2), 100.0], rtol=1e-6)


def test_jvp_and_jacobians_through_a_custom_rule():
    x = fc.asarray(np.array([0.3, -2.0]))
    s = 1 / (1 + np.exp(-np.asarray(x)))
    _, t = fc.jvp(log1pexp, (x,), (fc.asarray(np.array([1.0, 2.0])),))
    np.testing.assert_allclose(np.asarray(t), s * [1.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fc.jacfwd(log1pexp)(x)), np.diag(s), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fc.hessian(lambda x: log1pexp(x).sum())(x)),
                               np.diag(s * (1 - s)), rtol=1e-10)


# --- errors -------------------------------------------------------------------------------


def test_missing_rule_is_an_error_under_a_trace():
    @fc.custom_vjp
    def f(x):
        return x

    assert float(f(fc.array(1.0))) == 1.0  # eager: fine
    with pytest.raises(ArgumentError, match=r"f.defvjp\(fwd, bwd\)"):
        fc.grad(f)(fc.array(1.0))


def test_fwd_must_return_a_pair():
    @fc.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: x, lambda r, ct: (ct,))
    with pytest.raises(ArgumentError, match="fwd must return a pair"):
        fc.grad(f)(fc.array(1.0))


def test_bwd_result_is_checked():
    def make(bwd):
        @fc.custom_vjp
        def f(x, y):
            return x * y

        f.defvjp(lambda x, y: (x * y, (x, y)), bwd)
        return f

    x, y = fc.ones(2), fc.ones(2)
    with pytest.raises(ArgumentError, match="one cotangent per differentiable argument"):
        fc.grad(lambda x: make(lambda r, ct: ct)(x, y).sum())(x)
    with pytest.raises(ShapeError, match=r"f32\[3\] for argument 1 of type f32\[2\]"):
        fc.grad(lambda x: make(lambda r, ct: (ct, fc.ones(3)))(x, y).sum())(x)


def test_non_array_argument_needs_nondiff_argnums():
    @fc.custom_vjp
    def f(x, mode):
        return x

    f.defvjp(lambda x, mode: (x, None), lambda r, ct: (ct, None))
    with pytest.raises(ArgumentError, match="nondiff_argnums"):
        fc.grad(lambda x: f(x, "fast"))(fc.array(1.0))
