"""Reverse mode: the worked examples of issue 3, pytrees, has_aux, argnums,
stop_gradient, control flow under grad, derivative graphs, and the errors."""

from collections import namedtuple

import attrs
import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, DTypeError, ShapeError


def norm(x):
    return fc.sqrt((x * x).sum())


def np_(x):
    return np.asarray(x)


# --- the worked examples of issue 3 ---------------------------------------------------------


def test_norm_value_and_gradient():
    l, g = fc.value_and_grad(norm)(fc.array([1.0, 2.0, 2.0]))
    assert float(l) == pytest.approx(3.0)
    np.testing.assert_allclose(np_(g), [1 / 3, 2 / 3, 2 / 3], rtol=1e-6)


def test_accumulation_of_two_paths():
    # x reaches the output through norm and through dot: the cotangents add up
    f = lambda x: norm(x) + fc.dot(x, fc.array([-10.0, 10.0]))  # noqa: E731
    np.testing.assert_allclose(np_(fc.grad(f)(fc.array([3.0, 4.0]))), [-9.4, 10.8], rtol=1e-6)


def test_second_order_through_a_gradient():
    g1 = fc.grad(lambda x: (x ** 2).sum())
    x = fc.asarray(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(np_(g1(x)), [2, 4, 6])
    h = fc.grad(lambda x: fc.exp(g1(x)[0]) - fc.exp(g1(x)[2]))
    np.testing.assert_allclose(np_(h(x)), [14.7781, 0, -806.8576], rtol=1e-5)
    np.testing.assert_allclose(np_(h(x)), [2 * np.exp(2), 0, -2 * np.exp(6)], rtol=1e-12)


def test_shared_weight_dag_matches_finite_differences():
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((2, 3, 3))
    x0 = rng.standard_normal(3)

    def q(w1, w2):
        x1 = w1 @ x0
        x2 = x0 + w2 @ x1
        x3 = w1 @ (x1 + x2)
        return norm(x3)

    g1, g2 = fc.grad(q, argnums=(0, 1))(fc.asarray(w1), fc.asarray(w2))

    def q_np(w1, w2):
        x1 = w1 @ x0
        x3 = w1 @ (x1 + x0 + w2 @ x1)
        return np.sqrt((x3 ** 2).sum())

    eps = 1e-6
    for which, g in ((0, g1), (1, g2)):
        fd = np.zeros((3, 3))
        for i in range(3):
            for j in range(3):
                ws = [w1.copy(), w2.copy()]
                ws[which][i, j] += eps
                up = q_np(*ws)
                ws[which][i, j] -= 2 * eps
                fd[i, j] = (up - q_np(*ws)) / (2 * eps)
        np.testing.assert_allclose(np_(g), fd, rtol=1e-6, atol=1e-8)


# --- pytrees, has_aux, argnums -------------------------------------------------------------

Pair = namedtuple("Pair", ["a", "b"])


@attrs.frozen
class Layer:
    w: object
    b: object


def test_gradient_keeps_nested_pytree_structure():
    params = {"dense": Layer(fc.array([[1.0, 2.0], [3.0, 4.0]]), fc.array([0.5, -0.5])),
              "extra": [fc.array(2.0), (fc.array([1.0, -1.0]),)],
              "pair": Pair(fc.array(3.0), None)}
    x = fc.array([1.0, 1.0])

    def loss(p, x):
        h = p["dense"].w @ x + p["dense"].b
        return (h * h).sum() * p["extra"][0] + (p["extra"][1][0] * p["pair"].a).sum()

    g = fc.grad(loss)(params, x)
    assert isinstance(g["dense"], Layer) and isinstance(g["pair"], Pair)
    assert isinstance(g["extra"], list) and isinstance(g["extra"][1], tuple)
    assert g["pair"].b is None
    h = np.array([[1, 2], [3, 4]]) @ [1, 1] + np.array([0.5, -0.5])  # (3.5, 6.5)
    np.testing.assert_allclose(np_(g["dense"].w), 2 * 2 * np.outer(h, [1, 1]))
    np.testing.assert_allclose(np_(g["dense"].b), 2 * 2 * h)
    np.testing.assert_allclose(np_(g["extra"][0]), (h * h).sum())
    np.testing.assert_allclose(np_(g["extra"][1][0]), [3.0, 3.0])
    np.testing.assert_allclose(np_(g["pair"].a), 0.0)


def test_has_aux_returns_aux_untouched():
    def f(x):
        return (x ** 2).sum(), {"mean": x.mean(), "tag": [x * 2], "label": "sq", "n": 2}

    (v, aux), g = fc.value_and_grad(f, has_aux=True)(fc.array([1.0, 3.0]))
    assert float(v) == 10.0 and float(aux["mean"]) == 2.0
    assert aux["label"] == "sq" and aux["n"] == 2  # non-array aux passes through as is
    assert aux["mean"]._trace is None  # a concrete array, not a tracer
    np.testing.assert_allclose(np_(aux["tag"][0]), [2.0, 6.0])
    np.testing.assert_allclose(np_(g), [2.0, 6.0])
    g2, aux2 = fc.grad(f, has_aux=True)(fc.array([1.0, 3.0]))
    np.testing.assert_allclose(np_(g2), [2.0, 6.0])
    assert float(aux2["mean"]) == 2.0


def test_argnums_tuple_and_negative_and_kwargs():
    f = lambda x, y, z, scale=1.0: (x * y * z).sum() * scale  # noqa: E731
    x, y, z = fc.array([1.0, 2.0]), fc.array([3.0, 4.0]), fc.array([5.0, 6.0])
    gx, gz = fc.grad(f, argnums=(0, -1))(x, y, z, scale=2.0)
    np.testing.assert_allclose(np_(gx), 2 * np_(y) * np_(z))
    np.testing.assert_allclose(np_(gz), 2 * np_(x) * np_(y))
    (gy,) = fc.grad(f, argnums=(1,))(x, y, z)
    np.testing.assert_allclose(np_(gy), np_(x) * np_(z))


def test_vjp_with_pytree_output_and_cotangent():
    out, f_vjp = fc.vjp(lambda a, b: {"s": a * b, "d": [a - b]}, fc.array([1.0, 2.0]), fc.array(3.0))
    np.testing.assert_allclose(np_(out["s"]), [3.0, 6.0])
    ga, gb = f_vjp({"s": fc.array([1.0, 1.0]), "d": [fc.array([0.0, 2.0])]})
    np.testing.assert_allclose(np_(ga), [3.0, 5.0])
    assert float(gb) == pytest.approx(1.0 + 2.0 - 2.0)


def test_stop_gradient_blocks_only_its_path():
    f = lambda x: (x * fc.stop_gradient(x)).sum()  # noqa: E731
    x = fc.array([1.0, -2.0])
    np.testing.assert_allclose(np_(fc.grad(f)(x)), np_(x))
    tree = fc.stop_gradient({"a": x, "b": [x]})
    assert set(tree) == {"a", "b"}
    assert float(fc.grad(lambda x: fc.stop_gradient(x * 3).sum())(x).sum()) == 0.0


def test_unused_argument_gets_zero_gradient():
    g = fc.grad(lambda x, y: (x * 2).sum(), argnums=1)(fc.array([1.0]), fc.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(np_(g), np.zeros((1, 2), np.float32))


def test_gradient_dtype_follows_the_argument():
    assert fc.grad(lambda x: (x * 2.0).sum())(fc.asarray(np.ones(2))).dtype == np.float64
    assert fc.grad(lambda x: (x * 2.0).sum())(fc.ones(2)).dtype == np.float32


def test_python_control_flow_on_values_under_grad():
    def f(x):
        if x > 0:
            return x ** 2
        return -3.0 * x

    assert float(fc.grad(f)(fc.array(2.0))) == 4.0
    assert float(fc.grad(f)(fc.array(-1.0))) == -3.0
    assert float(fc.grad(fc.grad(f))(fc.array(2.0))) == 2.0

    def loop(x):
        y = x
        while float(y.sum()) < 100:
            y = y * 2
        return y.sum()

    assert float(fc.grad(loop)(fc.array([1.0, 2.0])).sum()) == 2 * 64.0


def test_higher_order_grads():
    f = lambda t: fc.sin(t) * t  # noqa: E731
    t = fc.asarray(np.array(0.7))
    d1, d2, d3 = fc.grad(f), fc.grad(fc.grad(f)), fc.grad(fc.grad(fc.grad(f)))
    assert float(d1(t)) == pytest.approx(np.cos(0.7) * 0.7 + np.sin(0.7))
    assert float(d2(t)) == pytest.approx(2 * np.cos(0.7) - 0.7 * np.sin(0.7))
    assert float(d3(t)) == pytest.approx(-3 * np.sin(0.7) - 0.7 * np.cos(0.7))


def test_grad_of_closure_over_outer_tracer():
    # d/dx [grad_y (x*y^2)](y=x) = d/dx (2 x y)|y=x -> inner gradient captures x
    def outer(x):
        inner = fc.grad(lambda y: x * y * y)
        return inner(x)

    x = fc.asarray(np.array(1.5))
    assert float(outer(x)) == pytest.approx(2 * 1.5 ** 2)
    assert float(fc.grad(outer)(x)) == pytest.approx(4 * 1.5)  # d(2x^2)/dx


# --- derivative graphs ---------------------------------------------------------------------


def test_make_graph_of_grad_prints_the_derivative_graph():
    g = fc.make_graph(fc.grad(lambda x: fc.sin(x).sum()))(fc.ones(3))
    text = str(g)
    assert text.startswith("graph(x0: f32[3]) -> (f32[3])")
    assert "cos(x0)" in text and "sin(" not in text  # only the derivative is reachable
    from funconv.backends.interpreter import evaluate

    np.testing.assert_allclose(evaluate(g, [np.array([0.0, 1.0, 2.0], np.float32)])[0],
                               np.cos([0.0, 1.0, 2.0]), rtol=1e-6)
    assert "digraph" in g.to_dot()


def test_derivative_graph_shares_forward_nodes():
    # the backward pass reuses (interns) the forward tanh: one tanh node in the graph
    g = fc.make_graph(lambda x: fc.value_and_grad(lambda x: fc.tanh(x).sum())(x))(fc.ones(4))
    assert [n.prim.name for n in g.applies()].count("tanh") == 1


def test_second_derivative_graph_evaluates_like_eager():
    f = lambda x: (fc.exp(x) * x).sum()  # noqa: E731
    x = np.array([0.1, -0.4, 2.0], np.float64)
    g = fc.make_graph(fc.grad(lambda x: fc.grad(f)(x).sum()))(fc.asarray(x))
    from funconv.backends.interpreter import evaluate

    np.testing.assert_allclose(evaluate(g, [x])[0], np.exp(x) * (x + 2), rtol=1e-12)


# --- errors ---------------------------------------------------------------------------------


def test_non_scalar_output_suggests_vjp_or_jacrev():
    with pytest.raises(ShapeError, match="jacrev"):
        fc.grad(lambda x: x * 2)(fc.ones(3))


def test_pair_output_without_has_aux_suggests_has_aux():
    with pytest.raises(ShapeError, match="has_aux=True"):
        fc.grad(lambda x: (x.sum(), x))(fc.ones(3))


def test_has_aux_without_a_pair_is_explained():
    with pytest.raises(ArgumentError, match="has_aux=True.*pair"):
        fc.grad(lambda x: x.sum(), has_aux=True)(fc.ones(3))
    with pytest.raises(ArgumentError, match="has_aux=True.*pair"):
        fc.vjp(lambda x: [x, x, x], fc.ones(3), has_aux=True)


def test_integer_argument_is_named():
    with pytest.raises(DTypeError, match=r"grad: argument 1 has dtype i32\[2\]"):
        fc.grad(lambda x, n: (x * n).sum(), argnums=1)(fc.ones(2), fc.array([1, 2]))


def test_string_argument_is_named_with_its_path():
    with pytest.raises(ArgumentError, match=r"grad: argument 0\['name'\] is str 'hello'"):
        fc.grad(lambda p: p["w"].sum())({"w": fc.ones(2), "name": "hello"})


def test_argnums_out_of_range_or_malformed():
    f = lambda x, y: (x * y).sum()  # noqa: E731
    with pytest.raises(ArgumentError, match="argnums=2 .* 2 positional"):
        fc.grad(f, argnums=2)(fc.ones(2), fc.ones(2))
    with pytest.raises(ArgumentError, match="argnums must be an int"):
        fc.grad(f, argnums="x")(fc.ones(2), fc.ones(2))
    with pytest.raises(ArgumentError, match="argnums must be an int"):
        fc.grad(f, argnums=())(fc.ones(2), fc.ones(2))


def test_vjp_cotangent_errors():
    out, f_vjp = fc.vjp(lambda x: x * 2, fc.ones(3))
    with pytest.raises(ShapeError, match=r"cotangent 0 has type f32\[2\]"):
        f_vjp(fc.ones(2))
    with pytest.raises(ShapeError, match="structure"):
        f_vjp((fc.ones(3), fc.ones(3)))


def test_non_array_output_is_explained():
    with pytest.raises(ArgumentError, match="returned str"):
        fc.vjp(lambda x: (x, "label"), fc.ones(2))


def test_leaked_tracer_from_grad_is_an_error():
    leaked = []

    def f(x):
        leaked.append(x * 2)
        return x.sum()

    fc.grad(f)(fc.ones(2))
    with pytest.raises(fc.errors.TracerLeakError):
        fc.grad(lambda y: (y * leaked[0]).sum())(fc.ones(2))


def test_grad_of_a_complex_scalar_says_to_take_a_real_part():
    with pytest.raises(fc.errors.DTypeError, match="fc.real"):
        fc.grad(lambda x: fc.fft.rfft2(x).sum())(np.ones((4, 4), np.float32))
