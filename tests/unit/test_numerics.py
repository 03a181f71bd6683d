"""Numerics at special points (issue 14): values at +-inf, derivatives at ties and kinks, higher
derivatives at zeros, and a simplifier that never changes a bit. Every value is checked eagerly,
under `fc.jit` and through `fc.make_graph` (the graph evaluated by the reference interpreter)."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.tree import leaves

INF = np.inf


def three_ways(f, *args):
    """f(*args) eagerly, jitted and through make_graph, as lists of NumPy arrays."""
    args = [fc.asarray(np.asarray(a, np.float32)) if not isinstance(a, fc.Array) else a for a in args]
    with np.errstate(all="ignore"):
        eager = [np.asarray(o) for o in leaves(f(*args))]
        jitted = [np.asarray(o) for o in leaves(fc.jit(f)(*args))]
        graphed = [np.asarray(o) for o in evaluate(fc.make_graph(f)(*args), [np.asarray(a) for a in args])]
    return eager, jitted, graphed


def assert_all_ways(f, args, want):
    want = [np.asarray(w, np.float32) for w in (want if isinstance(want, (tuple, list)) else [want])]
    for how, got in zip(("eager", "jit", "make_graph"), three_ways(f, *args)):
        assert len(got) == len(want), how
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w, err_msg=how)


# --- 1. forward values at infinities -----------------------------------------------------------

@pytest.mark.parametrize("x, y, want", [
    (-INF, -INF, -INF), (INF, INF, INF), (INF, -INF, INF), (-INF, INF, INF), (-INF, 2.0, 2.0),
    (INF, 2.0, INF), (np.nan, -INF, np.nan), (INF, np.nan, np.nan), (0.0, 0.0, np.log(2.0)),
])
def test_logaddexp_at_infinities(x, y, want):
    assert_all_ways(fc.logaddexp, [x, y], want)


def test_logaddexp_of_an_empty_sum_is_neutral():
    # logaddexp(-inf, -inf) is log(0 + 0) = -inf, the neutral element: its gradient is finite,
    # so the zero cotangent it gets here stays zero
    f = lambda a, b, c: fc.logaddexp(fc.logaddexp(a, b), c)  # noqa: E731
    assert_all_ways(f, [-INF, -INF, 2.0], 2.0)
    assert_all_ways(fc.grad(f, argnums=(0, 1, 2)), [-INF, -INF, 2.0], (0.0, 0.0, 1.0))


def test_logsumexp_at_infinities():
    cases = [([-INF, 1.0], 1.0, [0, 1]), ([-INF, -INF], -INF, [1, 0]), ([INF, 1.0], INF, [1, 0]),
             ([INF, INF], INF, [1, 0]), ([INF, -INF], INF, [1, 0])]
    for x, value, grad in cases:
        assert_all_ways(fc.logsumexp, [x], value)
        assert_all_ways(fc.nn.logsumexp, [x], value)
        # the gradients are the limits of softmax (ties of infinities: the first, as max and
        # logaddexp), and agree with logaddexp's
        assert_all_ways(fc.grad(fc.logsumexp), [x], [grad])
        assert_all_ways(fc.grad(lambda v: fc.logaddexp(v[0], v[1])), [x], [grad])
    f = lambda v, c: fc.logaddexp(fc.logsumexp(v), c)  # noqa: E731
    assert_all_ways(fc.grad(f, argnums=(0, 1)), [[-INF, -INF], 2.0], ([0, 0], 1.0))
    assert_all_ways(lambda v: fc.logsumexp(v, axis=1), [[[np.nan, 1.0], [-INF, -INF]]], [[np.nan, -INF]])


def test_softplus_and_sigmoid_at_infinities():
    x = [-INF, INF, -200.0, 100.0, 0.0]
    assert_all_ways(fc.nn.softplus, [x], [[0.0, INF, 0.0, 100.0, np.log(2.0)]])
    assert_all_ways(lambda v: fc.grad(lambda u: fc.sum(fc.nn.softplus(u)))(v), [x],
                    [[0.0, 1.0, 0.0, 1.0, 0.5]])
    assert_all_ways(fc.nn.sigmoid, [x], [[0.0, 1.0, 0.0, 1.0, 0.5]])
    assert_all_ways(lambda v: fc.grad(lambda u: fc.sum(fc.nn.sigmoid(u)))(v), [x],
                    [[0.0, 0.0, 0.0, 0.0, 0.25]])


def test_masked_logits():
    # a -inf logit is a masked class: probability 0, no NaN in the value or the gradient
    logits = [[-INF, 1.0, 1.0]]
    assert_all_ways(fc.nn.log_softmax, [logits], [[[-INF, -np.log(2.0), -np.log(2.0)]]])
    ce = lambda l: fc.nn.cross_entropy(l, fc.array([1]))  # noqa: E731
    assert_all_ways(ce, [logits], np.log(2.0))
    assert_all_ways(fc.grad(ce), [logits], [[[0.0, -0.5, 0.5]]])
    probs = lambda l: fc.nn.cross_entropy(l, fc.array([[0.0, 0.5, 0.5]]))  # noqa: E731
    assert_all_ways(probs, [logits], np.log(2.0))
    assert_all_ways(fc.grad(probs), [logits], [[[0.0, 0.0, 0.0]]])


# --- 2. derivatives at ties of smooth functions ---------------------------------------------------

def test_derivatives_at_ties_are_the_true_ones():
    assert_all_ways(fc.grad(fc.nn.softplus), [0.0], 0.5)
    assert_all_ways(fc.grad(fc.logaddexp, argnums=(0, 1)), [0.3, 0.3], (0.5, 0.5))
    # second order too: d2/dx2 logaddexp(x, y) = s (1 - s) with s = sigmoid(x - y)
    assert_all_ways(fc.grad(fc.grad(fc.logaddexp)), [0.3, 0.3], 0.25)
    assert_all_ways(fc.grad(fc.grad(fc.nn.softplus)), [0.0], 0.25)
    assert_all_ways(fc.grad(fc.logsumexp), [[0.5, 0.5]], [[0.5, 0.5]])


def test_maximum_and_minimum_split_ties_as_jax():
    # non-smooth at x == y: the cotangent is split evenly (JAX's and PyTorch's maximum)
    for op in (fc.maximum, fc.minimum):
        assert_all_ways(fc.grad(op, argnums=(0, 1)), [0.3, 0.3], (0.5, 0.5))
        assert_all_ways(fc.grad(op, argnums=(0, 1)), [0.3, 0.4], (op is fc.minimum, op is fc.maximum))
    assert_all_ways(fc.grad(lambda x: fc.clip(x, 0.0, 1.0)), [0.0], 0.5)


# --- 3. higher derivatives of prod with zeros -----------------------------------------------------

@pytest.mark.parametrize("x, want", [
    ([0.0, 2.0, 3.0], [[0, 3, 2], [3, 0, 0], [2, 0, 0]]),
    ([0.0, 0.0, 3.0], [[0, 3, 0], [3, 0, 0], [0, 0, 0]]),
    ([0.0, 0.0, 0.0], [[0, 0, 0], [0, 0, 0], [0, 0, 0]]),
    ([1.0, 2.0, 3.0], [[0, 3, 2], [3, 0, 1], [2, 1, 0]]),
])
def test_hessian_of_prod_with_zeros(x, want):
    assert_all_ways(fc.hessian(fc.prod), [x], [want])


def test_third_derivative_of_prod_at_zeros():
    # d3 prod / dx0 dx1 dx2 = 1 at any point
    f = lambda x: fc.grad(lambda y: fc.hessian(fc.prod)(y)[0, 1])(x)  # noqa: E731
    assert_all_ways(f, [[0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])


def test_prod_gradient_over_axes_with_zeros():
    x = np.array([[[0.0, 2.0], [3.0, 0.0]], [[1.0, 2.0], [0.0, 4.0]], [[1.0, 2.0], [3.0, 5.0]]],
                 np.float32)
    for axes in [(1, 2), (0,), (0, 2), None]:
        want = np.zeros_like(x)
        for i in np.ndindex(x.shape):  # the product of the others, by definition
            y = x.copy()
            y[i] = 1.0
            keep = [a for a in range(3) if axes is not None and a not in axes]
            same = np.ones(x.shape, bool)
            for a in keep:
                same &= (np.indices(x.shape)[a] == i[a])
            want[i] = np.prod(y[same])
        assert_all_ways(fc.grad(lambda v: fc.sum(fc.prod(v, axis=axes))), [x], [want])


# --- 4. jit does not change values: every simplifier rule on special values -----------------------

SPECIAL = np.array([0.0, -0.0, INF, -INF, np.nan, 1.0, -2.5], np.float32)

RULES = {  # each rule's pattern (the rewritten form and the ones left alone)
    "x+0.0": lambda x: x + 0.0, "0.0+x": lambda x: 0.0 + x,
    "x+-0.0": lambda x: x + (-0.0), "-0.0+x": lambda x: (-0.0) + x,
    "x-0.0": lambda x: x - 0.0, "x--0.0": lambda x: x - (-0.0),
    "0.0-x": lambda x: 0.0 - x, "-0.0-x": lambda x: -0.0 - x,
    "x*1": lambda x: x * 1.0, "1*x": lambda x: 1.0 * x, "x/1": lambda x: x / 1.0,
    "x*0": lambda x: x * 0.0, "--x": lambda x: -(-x),
    "x+-y": lambda x: x + (-x[::-1]), "-y+x": lambda x: (-x[::-1]) + x,
    "x--y": lambda x: x - (-x[::-1]),
    "where_same": lambda x: fc.where(x > 0, x, x),
    "where_zeros": lambda x: fc.where(x > 0, fc.zeros_like(x), fc.zeros_like(x)),
    "where_signed_zeros": lambda x: fc.where(x > 0, fc.zeros_like(x), -fc.zeros_like(x)),
    "neg_zeros": lambda x: -fc.zeros_like(x) + x * 0.0,
    "linear_zeros": lambda x: fc.zeros((7, 1)).T.reshape(7) + fc.sum(fc.zeros((7, 2)), axis=1) - x,
    "1/(0-x)": lambda x: 1.0 / (0.0 - x), "1/(x+0)": lambda x: 1.0 / (x + 0.0),
    "stop_gradient": lambda x: fc.stop_gradient(x) + (-0.0),
    "shape_ops": lambda x: x.reshape(1, 7).T.reshape(7) + 0.0,
}


def _bits(a: np.ndarray) -> bytes:
    # IEEE 754 leaves the sign and payload of a NaN result unspecified (x - y and x + (-y)
    # may return NaNs of opposite signs), so every NaN counts as one; all else bit for bit
    return np.where(np.isnan(a), np.float32(np.nan), a).astype(a.dtype).tobytes()


@pytest.mark.parametrize("name", sorted(RULES))
def test_jit_and_graph_give_the_eager_bits(name):
    f = RULES[name]
    eager, jitted, graphed = three_ways(f, SPECIAL)
    for got in (jitted, graphed):
        assert [_bits(g) for g in got] == [_bits(e) for e in eager], (name, eager, got)


def test_jit_signed_zero_examples():
    neg0 = fc.array(np.float32(-0.0))
    assert np.signbit(np.asarray(fc.jit(lambda x: x + 0.0)(neg0))) == np.signbit(np.asarray(neg0 + 0.0))
    assert not np.signbit(np.asarray(fc.jit(lambda x: x + 0.0)(neg0)))
    with np.errstate(divide="ignore"):
        assert np.asarray(fc.jit(lambda x: 1 / (0.0 - x))(fc.array(np.float32(0.0)))) == INF


# --- 5. gradients at points where peers give a finite answer --------------------------------------

def test_pow_with_zero_exponent_at_zero():
    assert_all_ways(fc.grad(lambda x: x ** fc.array(0.0)), [0.0], 0.0)
    assert_all_ways(fc.grad(lambda x: x ** fc.array(0.0)), [2.0], 0.0)
    # elsewhere the formula stands, and second order keeps d2/dx dy x**y = 1/x at y = 0
    assert_all_ways(fc.grad(lambda x, y: fc.grad(lambda a, b: a ** b)(x, y), argnums=1), [2.0, 0.0], 0.5)
    assert_all_ways(fc.grad(lambda x: x ** fc.array(2.0)), [0.0], 0.0)
    assert_all_ways(fc.grad(fc.grad(lambda x: x ** fc.array(2.0))), [0.0], 2.0)


def test_std_and_norm_kinks_take_the_zero_subgradient():
    v = [[-0.83], [0.4], [2.0]]
    assert_all_ways(fc.grad(lambda v: fc.sum(fc.std(v, axis=1))), [v], [np.zeros((3, 1))])
    assert_all_ways(fc.grad(lambda v: fc.sum(fc.std(v, axis=1))), [[[1.0, 1.0], [0.0, 2.0]]],
                    [[[0.0, 0.0], [-0.5, 0.5]]])
    assert_all_ways(fc.grad(fc.optim.global_norm), [[0.0, 0.0]], [[0.0, 0.0]])
    assert_all_ways(fc.grad(fc.optim.global_norm), [[3.0, 4.0]], [[0.6, 0.8]])
    assert_all_ways(fc.grad(fc.abs), [0.0], 0.0)
    assert_all_ways(lambda v: fc.std(v, axis=1), [[[np.nan, 1.0]]], [[np.nan]])


def test_logaddexp_of_equal_infinities_warns_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NaN computed and then masked would warn here
        for v in (-np.inf, np.inf):
            assert float(fc.logaddexp(v, v)) == v
        g = fc.grad(lambda a, b: fc.logaddexp(a, b), argnums=(0, 1))(-np.inf, -np.inf)
        assert all(np.isfinite(np.asarray(t)) for t in g)
