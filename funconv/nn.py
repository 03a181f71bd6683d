"""fc.nn: activations, softmax and losses, dropout, and weight initializers.

Everything here is a pure function written in funconv ops, so it
differentiates (to any order) and compiles under `jit` like user code; there
are no layers and no hidden state. Names, arguments and numerics follow
`jax.nn` (and optax for the loss):

    logits = x @ params["w"] + params["b"]
    loss = fc.nn.cross_entropy(logits, labels)       # mean over the batch

Initializers take `(key, shape, dtype=float32)`. Their fan-in and fan-out
follow funconv's layouts: a dense weight used as `x @ w` is `(in, out)`; a
convolution kernel is `(out, in, *spatial)` (OIHW), whose fans are
multiplied by the receptive field size (see `compute_fans`).

Imports ops (relu_p and stop_gradient from ops/special.py) and random.
"""

from __future__ import annotations

import math

import numpy as np

from funconv import random as _random
from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops._core import asarray, describe, normalize_axes, operand
from funconv.ops.creation import arange, zeros as _zeros
from funconv.ops.elementwise import exp, logaddexp, logistic, tanh, where
from funconv.ops.reduce import logsumexp as _logsumexp, max as _max, mean as _mean, sum as _sum
from funconv.ops.shape import expand_dims
from funconv.ops.special import relu_p, stop_gradient
from funconv.types import DEFAULT_FLOAT, canonical_dtype, is_float, is_inexact, is_integer

# --- activations ---------------------------------------------------------------------


def _float(x, opname: str) -> Array:
    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    if not is_inexact(x.dtype):
        x = x.astype(DEFAULT_FLOAT)
    return x


def relu(x) -> Array:
    """max(x, 0), with derivative 0 at x = 0 (as JAX)."""
    return relu_p(_float(x, "relu"))


def relu6(x) -> Array:
    """min(max(x, 0), 6)."""
    x = _float(x, "relu6")
    return where(x > 0, where(x < 6, x, 6), 0)


def leaky_relu(x, negative_slope: float = 0.01) -> Array:
    """x for x >= 0, `negative_slope * x` otherwise."""
    x = _float(x, "leaky_relu")
    return where(x >= 0, x, negative_slope * x)


def sigmoid(x) -> Array:
    """1 / (1 + exp(-x)), stable for large |x|."""
    return logistic(_float(x, "sigmoid"))


def softplus(x) -> Array:
    """log(1 + exp(x)) = logaddexp(x, 0), as JAX: never overflows, and its derivative at 0 is
    the true 0.5 (see `fc.logaddexp`)."""
    return logaddexp(_float(x, "softplus"), 0.0)


def silu(x) -> Array:
    """x * sigmoid(x) (also called swish)."""
    x = _float(x, "silu")
    return x * logistic(x)


swish = silu

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def gelu(x, approximate: bool = True) -> Array:
    """The Gaussian error linear unit, x * Phi(x).

    Args:
        x: input.
        approximate: True (the default, as JAX) uses the tanh approximation
            `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`; False uses the
            exact `0.5 x (1 + erf(x / sqrt(2)))`, which needs `fc.erf`.
    """
    x = _float(x, "gelu")
    if approximate:
        # 0.044715: the cubic coefficient of Hendrycks & Gimpel's tanh fit
        return 0.5 * x * (1 + tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
    import funconv.ops as ops

    if not hasattr(ops, "erf"):
        raise NotImplementedError("gelu(approximate=False) needs fc.erf, which funconv does not "
                                  "have yet; use the default approximate=True")
    return 0.5 * x * (1 + ops.erf(x / math.sqrt(2)))


def elu(x, alpha: float = 1.0) -> Array:
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    from funconv.ops.elementwise import expm1

    x = _float(x, "elu")
    return where(x > 0, x, alpha * expm1(where(x > 0, 0, x)))


# --- softmax family -----------------------------------------------------------------


def logsumexp(x, axis=None, keepdims: bool = False) -> Array:
    """log(sum(exp(x), axis)), stable (the max is subtracted first)."""
    return _logsumexp(_float(x, "logsumexp"), axis=axis, keepdims=keepdims)


def log_softmax(x, axis=-1) -> Array:
    """x - logsumexp(x, axis): log-probabilities, stable for large logits."""
    x = _float(x, "log_softmax")
    axes = normalize_axes(axis, x.ndim, "log_softmax")
    shifted = x - stop_gradient(_max(x, axis=axes, keepdims=True))
    return shifted - _logsumexp(shifted, axis=axes, keepdims=True)


def softmax(x, axis=-1) -> Array:
    """exp(x) / sum(exp(x), axis), computed with the max subtracted (never overflows)."""
    x = _float(x, "softmax")
    axes = normalize_axes(axis, x.ndim, "softmax")
    e = exp(x - stop_gradient(_max(x, axis=axes, keepdims=True)))
    return e / _sum(e, axis=axes, keepdims=True)


def one_hot(labels, num_classes: int, dtype=DEFAULT_FLOAT, axis=-1) -> Array:
    """`labels[..., None] == arange(num_classes)` as `dtype` (as `jax.nn.one_hot`).

    Labels outside `[0, num_classes)` give an all-zero row.
    """
    labels = operand(labels, "one_hot")
    labels = labels if isinstance(labels, Array) else asarray(labels)
    if not is_integer(labels.dtype):
        raise DTypeError(f"one_hot: labels must be integers, got {labels.aval.short()}; "
                         "convert them with .astype(fc.int32)")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ArgumentError(f"one_hot: num_classes must be a positive int, got {describe(num_classes)}")
    ndim = labels.ndim + 1
    ax = normalize_axes(axis, ndim, "one_hot")[0]
    classes = arange(int(num_classes), dtype=labels.dtype).reshape(
        tuple(int(num_classes) if i == ax else 1 for i in range(ndim)))
    return (expand_dims(labels, ax) == classes).astype(canonical_dtype(dtype))


def cross_entropy(logits, labels, axis=-1, reduction: str = "mean") -> Array:
    """Softmax cross-entropy, numerically stable (through `log_softmax`).

    Args:
        logits: unnormalised scores, e.g. `f32[batch, classes]`.
        labels: integer class indices of `logits`' shape without `axis`
            (`i32[batch]`), or target probabilities of `logits`' shape.
        axis: the class axis.
        reduction: "mean" (the default) or "sum" over the examples, or "none"
            for the per-example losses.

    Returns:
        The loss: a scalar, or `logits`' shape without `axis` for "none".
    """
    logits = _float(logits, "cross_entropy")
    labels = operand(labels, "cross_entropy")
    labels = labels if isinstance(labels, Array) else asarray(labels)
    ax = normalize_axes(axis, logits.ndim, "cross_entropy")[0]
    if is_integer(labels.dtype):
        expect = logits.shape[:ax] + logits.shape[ax + 1:]
        if labels.shape != expect:
            raise ShapeError(f"cross_entropy: integer labels {labels.aval.short()} must have the "
                             f"shape of the logits {logits.aval.short()} without the class axis, "
                             f"{expect}")
        target = one_hot(labels, logits.shape[ax], logits.dtype, axis=ax)
    elif is_float(labels.dtype):
        if labels.shape != logits.shape:
            raise ShapeError(f"cross_entropy: probability labels {labels.aval.short()} must have "
                             f"the shape of the logits {logits.aval.short()}")
        target = labels.astype(logits.dtype)
    else:
        raise DTypeError(f"cross_entropy: labels must be class indices (int) or probabilities "
                         f"(float), got {labels.aval.short()}")
    # 0 * log(0) is 0 (as xlogy): a -inf logit (a masked class) with target 0 adds nothing,
    # where 0 * -inf would be NaN
    log_p = log_softmax(logits, axis=ax)
    losses = -_sum(target * where(target == 0, 0, log_p), axis=ax)
    if reduction == "mean":
        return _mean(losses)
    if reduction == "sum":
        return _sum(losses)
    if reduction == "none":
        return losses
    raise ArgumentError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def accuracy(logits, labels, axis=-1) -> Array:
    """Fraction of examples whose arg-max class equals the integer label."""
    from funconv.ops.reduce import argmax

    pred = argmax(_float(logits, "accuracy"), axis=axis)
    return _mean((pred == asarray(labels).astype(pred.dtype)).astype(DEFAULT_FLOAT))


# --- dropout ---------------------------------------------------------------------------


def dropout(key, x, rate: float, deterministic: bool = False) -> Array:
    """Zero each element with probability `rate` and scale the rest by 1 / (1 - rate).

    Args:
        key: a key from `fc.random`; a traced key works under `jit`.
        x: input.
        rate: drop probability in [0, 1] (a Python number).
        deterministic: True (evaluation) returns `x` unchanged.
    """
    x = _float(x, "dropout")
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ArgumentError(f"dropout: rate must be a number in [0, 1], got {describe(rate)}")
    if deterministic or rate == 0:
        return x
    if rate == 1:
        return x * 0
    keep = _random.bernoulli(key, 1.0 - rate, x.shape)
    return where(keep, x / (1.0 - rate), 0)


# --- initializers ------------------------------------------------------------------------


def compute_fans(shape) -> tuple[float, float]:
    """`(fan_in, fan_out)` of a weight of `shape` in funconv's layouts.

    1-d `(n,)`: (n, n). 2-d dense `(in, out)` (used as `x @ w`): (in, out).
    N-d convolution kernel `(out, in, *spatial)`: (in * r, out * r) with
    r = prod(spatial), the receptive field size (as PyTorch's OIHW).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[2:])
    return float(shape[1] * receptive), float(shape[0] * receptive)


def _init_dtype(dtype):
    dt = canonical_dtype(dtype)
    if not is_float(dt):
        raise DTypeError(f"initializers make float weights, got dtype {dt}")
    return dt


def normal(key, shape, dtype=DEFAULT_FLOAT, stddev: float = 1e-2) -> Array:
    """N(0, stddev^2) weights (the default stddev 0.01 is JAX's)."""
    return _random.normal(key, shape, _init_dtype(dtype)) * stddev


def uniform(key, shape, dtype=DEFAULT_FLOAT, scale: float = 1e-2) -> Array:
    """U[0, scale) weights (as `jax.nn.initializers.uniform`)."""
    return _random.uniform(key, shape, _init_dtype(dtype), 0.0, scale)


def zeros(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """All zeros (the key is ignored; it is there so all initializers share one signature)."""
    return _zeros(tuple(shape), _init_dtype(dtype))


def ones(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """All ones (the key is ignored)."""
    from funconv.ops.creation import ones as _ones

    return _ones(tuple(shape), _init_dtype(dtype))


def _scaled_normal(key, shape, dtype, variance):
    return _random.normal(key, shape, _init_dtype(dtype)) * math.sqrt(variance)


def _scaled_uniform(key, shape, dtype, variance):
    limit = math.sqrt(3 * variance)  # U(-a, a) has variance a^2 / 3
    return _random.uniform(key, shape, _init_dtype(dtype), -limit, limit)


def he_normal(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """Kaiming/He normal: N(0, 2 / fan_in), for ReLU networks (He et al. 2015)."""
    fan_in, _ = compute_fans(shape)
    return _scaled_normal(key, shape, dtype, 2.0 / fan_in)


def he_uniform(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """Kaiming/He uniform: U(-a, a) with a = sqrt(6 / fan_in)."""
    fan_in, _ = compute_fans(shape)
    return _scaled_uniform(key, shape, dtype, 2.0 / fan_in)


def glorot_normal(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(shape)
    return _scaled_normal(key, shape, dtype, 2.0 / (fan_in + fan_out))


def glorot_uniform(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(shape)
    return _scaled_uniform(key, shape, dtype, 2.0 / (fan_in + fan_out))


def lecun_normal(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """LeCun normal: N(0, 1 / fan_in)."""
    fan_in, _ = compute_fans(shape)
    return _scaled_normal(key, shape, dtype, 1.0 / fan_in)


def lecun_uniform(key, shape, dtype=DEFAULT_FLOAT) -> Array:
    """LeCun uniform: U(-a, a) with a = sqrt(3 / fan_in)."""
    fan_in, _ = compute_fans(shape)
    return _scaled_uniform(key, shape, dtype, 1.0 / fan_in)


kaiming_normal, kaiming_uniform = he_normal, he_uniform
xavier_normal, xavier_uniform = glorot_normal, glorot_uniform

__all__ = ["relu", "relu6", "leaky_relu", "sigmoid", "softplus", "silu", "swish", "gelu", "elu",
           "logsumexp", "log_softmax", "softmax", "one_hot", "cross_entropy", "accuracy", "dropout",
           "compute_fans", "normal", "uniform", "zeros", "ones", "he_normal", "he_uniform",
           "glorot_normal", "glorot_uniform", "lecun_normal", "lecun_uniform", "kaiming_normal",
           "kaiming_uniform", "xavier_normal", "xavier_uniform"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
