"""fc.nn: values against NumPy references, gradients by finite differences in
float64 (fc.testing.check_grads), stability at extreme logits, dropout, and
initializers (fans for dense and conv layouts, variances)."""

import math

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.testing import check_grads

RNG = np.random.default_rng(0)
X64 = RNG.standard_normal((3, 5)) * 2  # float64: gradient checks are exact to ~1e-8


def _np(x):
    return np.asarray(x)


def _np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _erf(x):
    return np.vectorize(math.erf)(x)


# --- activations: values ---------------------------------------------------------------

ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name):
    x = np.linspace(-7, 7, 29)
    np.testing.assert_allclose(_np(getattr(fc.nn, name)(fc.asarray(x))), ACTIVATIONS[name](x),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradients(name):
    # avoid the kinks of relu-like functions, where finite differences straddle two slopes
    x = X64 + 0.05 * (np.abs(X64) < 0.05)
    check_grads(getattr(fc.nn, name), (x,), order=2 if name in ("gelu", "softplus", "silu") else 1)


def test_gelu_tanh_is_close_to_exact():
    x = np.linspace(-4, 4, 33)
    exact = 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    np.testing.assert_allclose(_np(fc.nn.gelu(fc.asarray(x))), exact, atol=1e-3)
    if hasattr(fc, "erf"):
        np.testing.assert_allclose(_np(fc.nn.gelu(fc.asarray(x), approximate=False)), exact,
                                   rtol=1e-6, atol=1e-7)
    else:
        with pytest.raises(NotImplementedError):
            fc.nn.gelu(fc.asarray(x), approximate=False)


def test_relu_derivative_at_zero_is_zero():
    g = fc.grad(lambda x: fc.nn.relu(x).sum())(fc.array([-1.0, 0.0, 2.0]))
    assert _np(g).tolist() == [0.0, 0.0, 1.0]


def test_activations_are_stable_at_extremes():
    x = fc.array([-1000.0, -80.0, 0.0, 80.0, 1000.0])
    for f in (fc.nn.sigmoid, fc.nn.softplus, fc.nn.silu, fc.nn.gelu):
        v = _np(f(x))
        assert np.all(np.isfinite(v)), f.__name__
        g = _np(fc.grad(lambda t, f=f: f(t).sum())(x))
        assert np.all(np.isfinite(g)), f.__name__
    assert _np(fc.nn.softplus(x))[-1] == 1000.0


def test_ints_become_float():
    assert fc.nn.relu(fc.array([1, -2])).dtype == np.float32
    assert fc.nn.relu(fc.ones(2, dtype=fc.float64)).dtype == np.float64


# --- softmax family -------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax(axis):
    np.testing.assert_allclose(_np(fc.nn.log_softmax(X64, axis=axis)), _np_log_softmax(X64, axis),
                               rtol=1e-12)
    np.testing.assert_allclose(_np(fc.nn.softmax(X64, axis=axis)), np.exp(_np_log_softmax(X64, axis)),
                               rtol=1e-12)
    np.testing.assert_allclose(_np(fc.nn.logsumexp(X64, axis=axis)),
                               np.log(np.exp(X64).sum(axis=axis)), rtol=1e-12)
    check_grads(lambda x: fc.nn.log_softmax(x, axis=axis), (X64,), order=2)
    check_grads(lambda x: fc.nn.softmax(x, axis=axis), (X64,), order=2)


def test_softmax_huge_logits():
    x = fc.array([[1000.0, 0.0, -1000.0], [-1e30, -1e30, -1e30]])
    s = _np(fc.nn.softmax(x))
    np.testing.assert_allclose(s[0], [1, 0, 0])
    np.testing.assert_allclose(s[1], [1 / 3] * 3, rtol=1e-6)
    ls = _np(fc.nn.log_softmax(x))
    assert np.all(np.isfinite(ls)) and ls[0, 0] == 0.0


def test_one_hot():
    oh = fc.nn.one_hot(fc.array([0, 2, 1, 5, -1]), 3)
    assert oh.dtype == np.float32
    np.testing.assert_array_equal(_np(oh), [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    oh = fc.nn.one_hot(fc.array([[0, 1]]), 2, dtype=fc.int32, axis=0)
    assert oh.shape == (2, 1, 2) and oh.dtype == np.int32
    with pytest.raises(DTypeError, match="integers"):
        fc.nn.one_hot(fc.array([0.5]), 3)


def test_cross_entropy_int_labels():
    labels = np.array([4, 0, 2])
    want = -_np_log_softmax(X64)[np.arange(3), labels]
    np.testing.assert_allclose(_np(fc.nn.cross_entropy(X64, labels)), want.mean(), rtol=1e-12)
    np.testing.assert_allclose(_np(fc.nn.cross_entropy(X64, labels, reduction="sum")), want.sum(), rtol=1e-12)
    np.testing.assert_allclose(_np(fc.nn.cross_entropy(X64, labels, reduction="none")), want, rtol=1e-12)
    check_grads(lambda x: fc.nn.cross_entropy(x, fc.asarray(labels)), (X64,), order=2)
    # d/dlogits of the mean loss is (softmax - one_hot) / batch
    g = _np(fc.grad(fc.nn.cross_entropy)(fc.asarray(X64), fc.asarray(labels)))
    onehot = np.eye(5)[labels]
    np.testing.assert_allclose(g, (np.exp(_np_log_softmax(X64)) - onehot) / 3, rtol=1e-10)


def test_cross_entropy_probability_labels_and_stability():
    p = np.exp(_np_log_softmax(RNG.standard_normal((3, 5))))
    want = -(p * _np_log_softmax(X64)).sum(-1).mean()
    np.testing.assert_allclose(_np(fc.nn.cross_entropy(X64, p)), want, rtol=1e-12)
    big = fc.array([[1e4, 0.0, -1e4]])
    assert float(fc.nn.cross_entropy(big, fc.array([0]))) == 0.0
    assert float(fc.nn.cross_entropy(big, fc.array([2]))) == pytest.approx(2e4)


def test_cross_entropy_errors():
    with pytest.raises(ShapeError, match="class axis"):
        fc.nn.cross_entropy(fc.ones((3, 5)), fc.array([0, 1]))
    with pytest.raises(ShapeError):
        fc.nn.cross_entropy(fc.ones((3, 5)), fc.ones((3, 4)))
    with pytest.raises(ArgumentError, match="reduction"):
        fc.nn.cross_entropy(fc.ones((3, 5)), fc.array([0, 1, 2]), reduction="avg")


def test_accuracy():
    logits = fc.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(fc.nn.accuracy(logits, fc.array([1, 0, 0]))) == pytest.approx(2 / 3)


# --- dropout -----------------------------------------------------------------------------


def test_dropout():
    k = fc.random.key(0)
    x = fc.ones((200, 100))
    y = _np(fc.nn.dropout(k, x, 0.25))
    assert set(np.unique(y).tolist()) == {0.0, float(np.float32(1 / 0.75))}
    assert abs(np.mean(y == 0) - 0.25) < 0.01  # 20000 draws: 4 standard errors is 0.012
    assert abs(y.mean() - 1) < 0.02  # the expectation is preserved
    np.testing.assert_array_equal(_np(fc.nn.dropout(k, x, 0.25)), y)  # same key, same mask
    assert not np.array_equal(_np(fc.nn.dropout(fc.random.key(1), x, 0.25)), y)
    np.testing.assert_array_equal(_np(fc.nn.dropout(k, x, 0.25, deterministic=True)), _np(x))
    np.testing.assert_array_equal(_np(fc.nn.dropout(k, x, 1.0)), 0 * _np(x))
    with pytest.raises(ArgumentError, match="rate"):
        fc.nn.dropout(k, x, 1.5)


def test_dropout_gradient_is_the_mask():
    k = fc.random.key(3)
    x = fc.asarray(RNG.standard_normal((4, 6)))
    g = _np(fc.grad(lambda t: fc.nn.dropout(k, t, 0.5).sum())(x))
    y = _np(fc.nn.dropout(k, x, 0.5))
    np.testing.assert_allclose(g, np.where(y != 0, 2.0, 0.0))


def test_dropout_with_a_traced_key():
    from funconv.backends.interpreter import evaluate

    g = fc.make_graph(lambda k, x: fc.nn.dropout(k, x, 0.5))(fc.random.key(0), fc.ones(50))
    masks = [evaluate(g, [np.asarray(fc.random.key(s)), np.ones(50, np.float32)])[0] for s in (0, 1)]
    np.testing.assert_array_equal(masks[0], _np(fc.nn.dropout(fc.random.key(0), fc.ones(50), 0.5)))
    assert not np.array_equal(masks[0], masks[1])


# --- initializers ---------------------------------------------------------------------------


def test_compute_fans():
    assert fc.nn.compute_fans((784, 10)) == (784, 10)  # dense (in, out)
    assert fc.nn.compute_fans((16, 3, 5, 5)) == (75, 400)  # conv (out, in, kh, kw)
    assert fc.nn.compute_fans((8, 4, 3)) == (12, 24)  # 1-d conv
    assert fc.nn.compute_fans((8, 2, 3, 3, 3)) == (54, 216)  # 3-d conv
    assert fc.nn.compute_fans((7,)) == (7, 7)


@pytest.mark.parametrize("name, shape, variance", [
    ("he_normal", (64, 32, 3, 3), 2 / (32 * 9)),
    ("he_uniform", (64, 32, 3, 3), 2 / (32 * 9)),
    ("glorot_normal", (300, 200), 2 / 500),
    ("glorot_uniform", (32, 16, 5, 5), 2 / (16 * 25 + 32 * 25)),
    ("lecun_normal", (400, 100), 1 / 400),
    ("lecun_uniform", (400, 100), 1 / 400),
    ("normal", (300, 100), 1e-4),
])
def test_initializer_variance(name, shape, variance):
    w = getattr(fc.nn, name)(fc.random.key(0), shape)
    assert w.shape == shape and w.dtype == np.float32
    v = _np(w).astype(np.float64)
    n = v.size
    assert abs(v.mean()) < 5 * math.sqrt(variance / n)
    assert abs(v.var() / variance - 1) < 0.05  # n >= 18000 draws: a few percent
    if "uniform" in name:
        limit = math.sqrt(3 * variance)
        assert v.max() < limit and v.min() >= -limit and v.max() > 0.95 * limit


def test_initializers_dtype_zeros_and_reproducible():
    k = fc.random.key(5)
    assert fc.nn.he_normal(k, (3, 4), fc.float64).dtype == np.float64
    np.testing.assert_array_equal(_np(fc.nn.zeros(k, (2, 3))), np.zeros((2, 3)))
    np.testing.assert_array_equal(_np(fc.nn.glorot_uniform(k, (5, 5))), _np(fc.nn.glorot_uniform(k, (5, 5))))
    with pytest.raises(DTypeError):
        fc.nn.he_normal(k, (3, 4), fc.int32)


def test_jitted_loss_and_dropout_match_eager():
    def f(k, logits, labels):
        h = fc.nn.dropout(k, fc.nn.gelu(logits), 0.3)
        return fc.nn.cross_entropy(h, labels)

    args = (fc.random.key(2), fc.asarray(X64), fc.array([4, 0, 2]))
    jf = fc.jit(fc.value_and_grad(f, argnums=1))
    v, g = jf(*args)
    v0, g0 = fc.value_and_grad(f, argnums=1)(*args)
    np.testing.assert_allclose(float(v), float(v0), rtol=1e-12)
    np.testing.assert_allclose(_np(g), _np(g0), rtol=1e-12)
    # a different key gives a different mask through the same compiled function
    v1, _ = jf(fc.random.key(3), *args[1:])
    assert float(v1) != float(v)
