"""fc.optim: optax-style optimizers and learning-rate schedules.

An optimizer is a pair of pure functions (an `Optimizer` named tuple):

    opt = fc.optim.adam(1e-3)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = fc.optim.apply_updates(params, updates)

`params`, `grads` and `updates` are pytrees of one structure; the state is a
pytree (named tuples) of Arrays, including the step count, so a whole
training step `(params, state, batch) -> (params, state, loss)` can be
jitted. Updates are what to *add* to the parameters (already negated and
scaled by the learning rate), as in optax.

A learning rate is a number or a schedule: a function of the step count
(0 for the first update) written in funconv ops, so it also works on a traced
step under `jit`. Schedules: `constant`, `exponential_decay`, `cosine_decay`,
`warmup` (and optax's names `constant_schedule`, `cosine_decay_schedule`,
`warmup_cosine_decay_schedule`).

Imports ops and tree only.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np

from funconv import tree as tree_util
from funconv.array import Array
from funconv.errors import ArgumentError
from funconv.ops._core import asarray, describe
from funconv.ops.creation import zeros
from funconv.ops.elementwise import cos, maximum, minimum, power, sqrt, where

Schedule = Callable[[Any], Any]


class Optimizer(NamedTuple):
    """`init(params) -> state` and `update(grads, state, params=None) -> (updates, state)`."""

    init: Callable
    update: Callable


# --- schedules ------------------------------------------------------------------------


def _step(count) -> Array:
    """The step count as float32 (an Array; traced under jit)."""
    return asarray(count).astype(np.float32)


def constant(value: float) -> Schedule:
    """The same learning rate at every step."""
    return lambda count: value


constant_schedule = constant


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """`init_value * decay_rate ** ((step - transition_begin) / transition_steps)` (as optax).

    Constant at `init_value` before `transition_begin`; with `staircase`, the
    exponent is floored (decay in steps); `end_value` bounds the decay.
    """
    if transition_steps <= 0:
        raise ArgumentError(f"exponential_decay: transition_steps must be > 0, got {transition_steps}")

    def schedule(count):
        from funconv.ops.elementwise import floor

        p = maximum(_step(count) - transition_begin, 0) / transition_steps
        if staircase:
            p = floor(p)
        v = init_value * power(float(decay_rate), p)
        if end_value is not None:
            v = maximum(v, end_value) if decay_rate < 1 else minimum(v, end_value)
        return v

    return schedule


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """Cosine decay from `init_value` to `alpha * init_value` over `decay_steps`, then flat.

    `init_value * ((1 - alpha) * (1 + cos(pi * t)) / 2 + alpha)` with
    t = min(step, decay_steps) / decay_steps (Loshchilov & Hutter, SGDR; as optax).
    """
    if decay_steps <= 0:
        raise ArgumentError(f"cosine_decay: decay_steps must be > 0, got {decay_steps}")

    def schedule(count):
        t = minimum(_step(count), decay_steps) / decay_steps
        return init_value * ((1 - alpha) * 0.5 * (1 + cos(math.pi * t)) + alpha)

    return schedule


cosine_decay_schedule = cosine_decay


def warmup(schedule, warmup_steps: int, init_value: float = 0.0) -> Schedule:
    """Linear warm-up from `init_value` to `schedule(0)` over `warmup_steps`, then `schedule`.

    After the warm-up, step `s` uses `schedule(s - warmup_steps)`. `schedule`
    may also be a number (a constant learning rate after the warm-up).
    """
    sched = schedule if callable(schedule) else constant(schedule)
    if warmup_steps <= 0:
        return sched

    def warmed(count):
        s = _step(count)
        peak = sched(0)
        ramp = init_value + (peak - init_value) * (s / warmup_steps)
        return where(s < warmup_steps, ramp, sched(maximum(s - warmup_steps, 0)))

    return warmed


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0) -> Schedule:
    """Linear warm-up to `peak_value`, then cosine decay to `end_value` (as optax).

    `decay_steps` counts the warm-up too, as in optax.
    """
    alpha = end_value / peak_value if peak_value else 0.0
    return warmup(cosine_decay(peak_value, max(decay_steps - warmup_steps, 1), alpha),
                  warmup_steps, init_value)


def _lr_at(lr, count):
    if callable(lr):
        return lr(count)
    if not isinstance(lr, (int, float)):
        raise ArgumentError(f"the learning rate must be a number or a schedule (a function of "
                            f"the step), got {describe(lr)}")
    return lr


# --- helpers ----------------------------------------------------------------------------------


def _zeros_like_tree(params):
    return tree_util.map(lambda p: zeros(asarray(p).shape, asarray(p).dtype), params)


def _check_params(name, params, weight_decay):
    if weight_decay and params is None:
        raise ArgumentError(f"{name}: weight_decay needs the parameters: call "
                            "opt.update(grads, state, params)")


def _count0() -> Array:
    return asarray(np.int32(0))


def apply_updates(params, updates):
    """`params + updates`, leafwise, keeping each parameter's dtype."""
    return tree_util.map(lambda p, u: (asarray(p) + u).astype(asarray(p).dtype), params, updates)


# --- SGD -----------------------------------------------------------------------------------


class SgdState(NamedTuple):
    count: Array  # int32 scalar: updates done so far
    momentum: Any  # pytree like params, or None without momentum


def sgd(learning_rate, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0) -> Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

    With g = grad + weight_decay * param and buf the momentum buffer (zeros at
    first, so the first step is plain SGD, as PyTorch):
    buf = momentum * buf + g; update = -lr * (g + momentum * buf if nesterov else buf).

    Args:
        learning_rate: a number or a schedule.
        momentum: momentum coefficient in [0, 1).
        nesterov: use Nesterov momentum (needs momentum > 0).
        weight_decay: L2 penalty coefficient, added to the gradient.
    """
    if nesterov and not momentum:
        raise ArgumentError("sgd: nesterov=True needs momentum > 0")

    def init(params):
        return SgdState(_count0(), _zeros_like_tree(params) if momentum else None)

    def update(grads, state, params=None):
        _check_params("sgd", params, weight_decay)
        if weight_decay:
            grads = tree_util.map(lambda g, p: g + weight_decay * p, grads, params)
        lr = _lr_at(learning_rate, state.count)
        if momentum:
            buf = tree_util.map(lambda b, g: momentum * b + g, state.momentum, grads)
            if nesterov:
                direction = tree_util.map(lambda g, b: g + momentum * b, grads, buf)
            else:
                direction = buf
        else:
            buf, direction = None, grads
        updates = tree_util.map(lambda d: (-lr * d).astype(d.dtype), direction)
        return updates, SgdState(state.count + 1, buf)

    return Optimizer(init, update)


# --- Adam and AdamW -------------------------------------------------------------------------


class AdamState(NamedTuple):
    count: Array  # int32 scalar: updates done so far
    mu: Any  # first-moment estimates, like params
    nu: Any  # second-moment estimates, like params


def _adam(name, learning_rate, b1, b2, eps, weight_decay, decoupled) -> Optimizer:
    def init(params):
        return AdamState(_count0(), _zeros_like_tree(params), _zeros_like_tree(params))

    def update(grads, state, params=None):
        _check_params(name, params, weight_decay)
        if weight_decay and not decoupled:  # Adam's L2: into the gradient (as PyTorch Adam)
            grads = tree_util.map(lambda g, p: g + weight_decay * p, grads, params)
        count = state.count + 1
        mu = tree_util.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = tree_util.map(lambda v, g: b2 * v + (1 - b2) * (g * g), state.nu, grads)
        lr = _lr_at(learning_rate, state.count)

        def step(m, v, p):
            # bias corrections of the zero-initialised moments (Kingma & Ba, alg. 1), in the
            # parameter's dtype: 1 - 0.999**t loses 5 digits to cancellation in float32
            t = count.astype(m.dtype)
            c1 = 1 - power(float(b1), t)
            c2 = 1 - power(float(b2), t)
            u = (m / c1) / (sqrt(v / c2) + eps)
            if weight_decay and decoupled:  # AdamW: decay the weights directly
                u = u + weight_decay * p
            return (-lr * u).astype(m.dtype)

        ps = params if params is not None else mu  # placeholder leaves when unused
        return tree_util.map(step, mu, nu, ps), AdamState(count, mu, nu)

    return Optimizer(init, update)


def adam(learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         weight_decay: float = 0.0) -> Optimizer:
    """Adam (Kingma & Ba 2015), with bias correction; `eps` is added outside the sqrt (as optax).

    `weight_decay` is an L2 penalty added to the gradient (PyTorch's Adam);
    for decoupled weight decay use `adamw`.
    """
    return _adam("adam", learning_rate, b1, b2, eps, weight_decay, decoupled=False)


def adamw(learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> Optimizer:
    """AdamW (Loshchilov & Hutter 2019): Adam plus `lr * weight_decay * param` decay.

    The default weight_decay, 1e-4, is optax's.
    """
    return _adam("adamw", learning_rate, b1, b2, eps, weight_decay, decoupled=True)


# --- utilities -------------------------------------------------------------------------------


def global_norm(tree) -> Array:
    """sqrt of the sum of squares of all leaves (its gradient at all-zero leaves is 0, the
    subgradient at the kink, as PyTorch's norm)."""
    from funconv.ops.reduce import sqrt_zero_subgradient, sum as _sum

    leaves = [asarray(x) for x in tree_util.leaves(tree)]
    total = _sum(leaves[0] * leaves[0])
    for x in leaves[1:]:
        total = total + _sum(x * x)
    return sqrt_zero_subgradient(total)


def clip_by_global_norm(tree, max_norm: float):
    """Scale all leaves by min(1, max_norm / global_norm(tree))."""
    norm = global_norm(tree)
    scale = minimum(1.0, max_norm / maximum(norm, 1e-12))
    return tree_util.map(lambda x: x * scale.astype(x.dtype), tree)


__all__ = ["Optimizer", "SgdState", "AdamState", "sgd", "adam", "adamw", "apply_updates",
           "constant", "constant_schedule", "exponential_decay", "cosine_decay",
           "cosine_decay_schedule", "warmup", "warmup_cosine_decay_schedule", "global_norm",
           "clip_by_global_norm"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
