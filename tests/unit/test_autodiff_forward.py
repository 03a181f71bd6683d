"""Forward mode and Jacobians: jvp (the transpose of the VJP), jacfwd, jacrev,
hessian, against NumPy-computed derivatives; pytrees, argnums, has_aux, and
composition with grad and with graph tracing."""

from collections import namedtuple

import numpy as np
import pytest

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.errors import ArgumentError, DTypeError, ShapeError

rng = np.random.default_rng(42)
A = rng.standard_normal((3, 4))
X = rng.standard_normal(4)


def f_np(x):
    return np.tanh(A @ x) * np.sum(x ** 2)


def jac_np(x):
    # d/dx [tanh(Ax) * s], s = |x|^2: diag(1 - tanh^2) A s + tanh(Ax) 2x^T
    t = np.tanh(A @ x)
    return (1 - t ** 2)[:, None] * A * np.sum(x ** 2) + np.outer(t, 2 * x)


def f(x):
    return fc.tanh(fc.asarray(A) @ x) * (x ** 2).sum()


def test_jvp_matches_jacobian_times_tangent():
    v = rng.standard_normal(4)
    out, t = fc.jvp(f, (fc.asarray(X),), (fc.asarray(v),))
    np.testing.assert_allclose(np.asarray(out), f_np(X), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(t), jac_np(X) @ v, rtol=1e-12)


def test_jvp_is_linear_in_the_tangent():
    v, w = rng.standard_normal((2, 4))
    t = lambda d: np.asarray(fc.jvp(f, [fc.asarray(X)], [fc.asarray(d)])[1])  # noqa: E731
    np.testing.assert_allclose(t(2 * v - 3 * w), 2 * t(v) - 3 * t(w), rtol=1e-10, atol=1e-12)


def test_jvp_with_pytrees_and_several_arguments():
    P = namedtuple("P", ["w", "b"])

    def g(p, x):
        return {"y": p.w * x + p.b, "s": [(p.w * x).sum()]}

    p = P(fc.asarray(np.array([1.0, 2.0])), fc.asarray(np.array(0.5)))
    x = fc.asarray(np.array([3.0, -1.0]))
    tp = P(fc.asarray(np.array([0.1, 0.2])), fc.asarray(np.array(1.0)))
    tx = fc.asarray(np.array([1.0, 1.0]))
    out, t = fc.jvp(g, (p, x), (tp, tx))
    assert set(out) == {"y", "s"} and isinstance(t["s"], list)
    # d(w x + b) = dw x + w dx + db
    np.testing.assert_allclose(np.asarray(t["y"]), [0.1 * 3 + 1 * 1 + 1, 0.2 * -1 + 2 * 1 + 1])
    np.testing.assert_allclose(np.asarray(t["s"][0]), 0.3 - 0.2 + 1 + 2)


def test_jvp_has_aux_and_integer_outputs():
    def g(x):
        return {"f": fc.sin(x), "n": fc.argmax(x)}, x.sum()

    out, t, aux = fc.jvp(g, (fc.asarray(np.array([0.0, 1.0])),),
                         (fc.asarray(np.array([1.0, 1.0])),), has_aux=True)
    np.testing.assert_allclose(np.asarray(t["f"]), np.cos([0.0, 1.0]))
    assert int(out["n"]) == 1 and np.asarray(t["n"]).dtype.kind == "i"
    assert float(np.asarray(t["n"])) == 0
    assert float(aux) == 1.0


def test_jvp_argument_errors():
    x = fc.ones(3)
    with pytest.raises(ArgumentError, match="tuples"):
        fc.jvp(fc.sin, x, x)
    with pytest.raises(ArgumentError, match="1 primal.*2 tangent"):
        fc.jvp(fc.sin, (x,), (x, x))
    with pytest.raises(ShapeError, match=r"tangent 0 has type f32\[2\]"):
        fc.jvp(fc.sin, (x,), (fc.ones(2),))
    with pytest.raises(ArgumentError, match="structure"):
        fc.jvp(lambda d: d["a"], ({"a": x},), ({"b": x},))
    with pytest.raises(DTypeError, match="jvp: argument 0"):
        fc.jvp(lambda n: n * 2, (fc.array([1, 2]),), (fc.array([1, 2]),))


def test_jacrev_and_jacfwd_match_numpy():
    x = fc.asarray(X)
    np.testing.assert_allclose(np.asarray(fc.jacrev(f)(x)), jac_np(X), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fc.jacfwd(f)(x)), jac_np(X), rtol=1e-12)


def test_jacobian_shapes_are_out_shape_plus_in_shape():
    w = fc.asarray(rng.standard_normal((2, 3)))
    g = lambda w, x: fc.tanh(w @ x)  # noqa: E731  out (2, 5), w (2, 3), x (3, 5)
    x = fc.asarray(rng.standard_normal((3, 5)))
    for jac in (fc.jacrev, fc.jacfwd):
        jw, jx = jac(g, argnums=(0, 1))(w, x)
        assert jw.shape == (2, 5, 2, 3) and jx.shape == (2, 5, 3, 5)
        # entry [i, j, k, l] = d out[i, j] / d w[k, l] = (1 - t^2)[i, j] * delta(i, k) x[l, j]
        t = np.tanh(np.asarray(w) @ np.asarray(x))
        expect = np.einsum("ij,ik,lj->ijkl", 1 - t ** 2, np.eye(2), np.asarray(x))
        np.testing.assert_allclose(np.asarray(jw), expect, rtol=1e-12, atol=1e-15)


def test_jacobian_pytree_layout_output_outside_input_inside():
    def g(p):
        return {"u": p["a"] * 2.0, "v": (p["a"] * p["b"]).sum()}

    p = {"a": fc.asarray(np.array([1.0, 2.0])), "b": fc.asarray(np.array([3.0, 4.0]))}
    for jac in (fc.jacrev, fc.jacfwd):
        J = jac(g)(p)
        assert set(J) == {"u", "v"} and set(J["u"]) == {"a", "b"}
        np.testing.assert_allclose(np.asarray(J["u"]["a"]), 2 * np.eye(2))
        np.testing.assert_allclose(np.asarray(J["u"]["b"]), np.zeros((2, 2)))
        assert J["v"]["a"].shape == (2,)
        np.testing.assert_allclose(np.asarray(J["v"]["a"]), [3.0, 4.0])
        np.testing.assert_allclose(np.asarray(J["v"]["b"]), [1.0, 2.0])


def test_jacobian_has_aux():
    for jac in (fc.jacrev, fc.jacfwd):
        J, aux = jac(lambda x: (x * 3.0, {"n": x.sum()}), has_aux=True)(fc.ones(2))
        np.testing.assert_allclose(np.asarray(J), 3 * np.eye(2))
        assert float(aux["n"]) == 2.0


def test_jacobian_of_scalar_input_and_output():
    assert float(fc.jacrev(fc.sin)(fc.asarray(np.array(0.3)))) == pytest.approx(np.cos(0.3))
    assert float(fc.jacfwd(fc.sin)(fc.asarray(np.array(0.3)))) == pytest.approx(np.cos(0.3))


def test_jacrev_rejects_integer_outputs():
    with pytest.raises(DTypeError, match="jacrev: output 0"):
        fc.jacrev(lambda x: fc.argmax(x))(fc.ones(3))


def test_hessian_matches_numpy():
    B = rng.standard_normal((4, 4))

    def g(x):
        return (x @ fc.asarray(B) @ x) + fc.exp(x).sum() + (x[0] * x[1]) ** 2

    x = rng.standard_normal(4)
    H = np.asarray(fc.hessian(g)(fc.asarray(x)))
    expect = B + B.T + np.diag(np.exp(x))
    expect[0, 0] += 2 * x[1] ** 2
    expect[1, 1] += 2 * x[0] ** 2
    expect[0, 1] += 4 * x[0] * x[1]
    expect[1, 0] += 4 * x[0] * x[1]
    np.testing.assert_allclose(H, expect, rtol=1e-10)


def test_hessian_of_matrix_argument_and_argnums():
    def g(w, x):
        return fc.tanh(w @ x).sum()

    w = rng.standard_normal((2, 3))
    x = rng.standard_normal(3)
    H = np.asarray(fc.hessian(g, argnums=1)(fc.asarray(w), fc.asarray(x)))
    t = np.tanh(w @ x)
    expect = np.einsum("i,ij,ik->jk", -2 * t * (1 - t ** 2), w, w)
    assert H.shape == (3, 3)
    np.testing.assert_allclose(H, expect, rtol=1e-10, atol=1e-14)
    Hw = fc.hessian(g)(fc.asarray(w), fc.asarray(x))
    assert Hw.shape == (2, 3, 2, 3)


def test_grad_of_jvp_and_jvp_of_grad_agree():
    # both compute the Hessian-vector product of s(x) = sum(sin(x) * x^2)
    s = lambda x: (fc.sin(x) * x ** 2).sum()  # noqa: E731
    x, v = rng.standard_normal((2, 3))
    hvp_fwd = np.asarray(fc.jvp(fc.grad(s), (fc.asarray(x),), (fc.asarray(v),))[1])
    hvp_rev = np.asarray(fc.grad(lambda x: fc.jvp(s, (x,), (fc.asarray(v),))[1])(fc.asarray(x)))
    diag = 2 * np.sin(x) + 4 * x * np.cos(x) - x ** 2 * np.sin(x)
    np.testing.assert_allclose(hvp_fwd, diag * v, rtol=1e-10)
    np.testing.assert_allclose(hvp_rev, diag * v, rtol=1e-10)


def test_jvp_traces_to_a_graph_any_consumer_can_run():
    v = rng.standard_normal(4)
    g = fc.make_graph(lambda x, v: fc.jvp(f, (x,), (v,)))(fc.asarray(X), fc.asarray(v))
    out, t = evaluate(g, [X, v])
    np.testing.assert_allclose(out, f_np(X), rtol=1e-12)
    np.testing.assert_allclose(t, jac_np(X) @ v, rtol=1e-12)


def test_jacobians_under_jit_when_available():
    try:
        jf = fc.jit(fc.jacfwd(f))
        got = jf(fc.asarray(X))
    except NotImplementedError:
        pytest.skip("fc.jit is not implemented yet")
    np.testing.assert_allclose(np.asarray(got), jac_np(X), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fc.jit(fc.jacrev(f))(fc.asarray(X))), jac_np(X), rtol=1e-12)
    v = rng.standard_normal(4)
    out, t = fc.jit(lambda x, v: fc.jvp(f, (x,), (v,)))(fc.asarray(X), fc.asarray(v))
    np.testing.assert_allclose(np.asarray(t), jac_np(X) @ v, rtol=1e-12)
    # and the other way round: the jvp of a jitted function inlines its graph
    _, t2 = fc.jvp(fc.jit(f), (fc.asarray(X),), (fc.asarray(v),))
    np.testing.assert_allclose(np.asarray(t2), jac_np(X) @ v, rtol=1e-12)


def test_jvp_of_a_closure_over_an_outer_tracer():
    # d/da of the directional derivative of x -> a * sin(x): cos(x) . v; the inner
    # linearisation captures a, a variable of the outer grad trace
    x, v = rng.standard_normal((2, 3))

    def directional(a):
        return fc.jvp(lambda x: a * fc.sin(x), (fc.asarray(x),), (fc.asarray(v),))[1].sum()

    assert float(fc.grad(directional)(fc.asarray(np.array(2.0)))) == pytest.approx(np.cos(x) @ v)
    assert float(directional(fc.asarray(np.array(2.0)))) == pytest.approx(2 * np.cos(x) @ v)


def test_jvp_edge_cases_identity_constant_and_repeated_outputs():
    x = fc.asarray(np.array([1.0, 2.0]))
    v = fc.asarray(np.array([3.0, -1.0]))
    np.testing.assert_array_equal(np.asarray(fc.jvp(lambda x: x, (x,), (v,))[1]), [3.0, -1.0])
    t = fc.jvp(lambda x: (x, 2.0 * x), (x,), (v,))[1]
    np.testing.assert_array_equal(np.asarray(t[1]), [6.0, -2.0])
    np.testing.assert_array_equal(np.asarray(fc.jvp(lambda x: fc.ones(2), (x,), (v,))[1]), [0, 0])
    np.testing.assert_array_equal(np.asarray(fc.jvp(lambda a, b: a, (x, x), (v, v * 5))[1]), [3.0, -1.0])
    np.testing.assert_array_equal(np.asarray(fc.hessian(lambda x: x.sum())(x)), np.zeros((2, 2)))
