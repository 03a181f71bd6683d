"""fc.optim: each optimizer against updates computed by hand in NumPy (float64),
schedules against their formulas, and the state as a pytree of Arrays."""

import math

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError

P0 = {"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.1, -0.3])}
GRADS = [{"w": np.array([[0.2, -0.1], [0.4, 1.0]]), "b": np.array([1.0, -2.0])},
         {"w": np.array([[-0.3, 0.2], [0.1, 0.5]]), "b": np.array([0.5, 0.25])},
         {"w": np.array([[0.05, 0.0], [-0.2, 0.3]]), "b": np.array([-1.0, 0.75])}]


def _fc(tree):
    return fc.tree.map(lambda a: fc.asarray(a), tree)


def _run(opt, steps=3):
    """Apply `opt` for `steps` steps of GRADS from P0 in float64; return the params."""
    params = _fc(P0)
    state = opt.init(params)
    for g in GRADS[:steps]:
        updates, state = opt.update(_fc(g), state, params)
        params = fc.optim.apply_updates(params, updates)
    return params, state


def _close(params, expected):
    for k in expected:
        np.testing.assert_allclose(np.asarray(params[k]), expected[k], rtol=1e-12, atol=1e-12)


def test_sgd_plain():
    params, state = _run(fc.optim.sgd(0.1))
    expected = {k: P0[k] - 0.1 * sum(g[k] for g in GRADS) for k in P0}
    _close(params, expected)
    assert int(state.count) == 3 and state.momentum is None


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_weight_decay(nesterov):
    lr, mu, wd = 0.1, 0.9, 0.01
    params, _ = _run(fc.optim.sgd(lr, momentum=mu, nesterov=nesterov, weight_decay=wd))
    p = {k: v.copy() for k, v in P0.items()}
    buf = {k: np.zeros_like(v) for k, v in P0.items()}
    for g in GRADS:
        for k in p:
            d = g[k] + wd * p[k]
            buf[k] = mu * buf[k] + d
            step = d + mu * buf[k] if nesterov else buf[k]
            p[k] = p[k] - lr * step
    _close(params, p)


def _adam_reference(lr, b1, b2, eps, wd, decoupled):
    p = {k: v.copy() for k, v in P0.items()}
    m = {k: np.zeros_like(v) for k, v in P0.items()}
    v = {k: np.zeros_like(x) for k, x in P0.items()}
    for t, g in enumerate(GRADS, start=1):
        for k in p:
            gk = g[k] + (0 if decoupled else wd * p[k])
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk ** 2
            mhat = m[k] / (1 - b1 ** t)
            vhat = v[k] / (1 - b2 ** t)
            u = mhat / (np.sqrt(vhat) + eps)
            if decoupled:
                u = u + wd * p[k]
            p[k] = p[k] - lr * u
    return p


def test_adam():
    params, state = _run(fc.optim.adam(0.01, b1=0.8, b2=0.95, eps=1e-6))
    ref = _adam_reference(0.01, 0.8, 0.95, 1e-6, 0.0, decoupled=False)
    for k in ref:
        np.testing.assert_allclose(np.asarray(params[k]), ref[k], rtol=1e-10)
    assert int(state.count) == 3
    assert np.asarray(state.mu["w"]).dtype == np.float64


def test_adam_first_step_is_lr_sign():
    """After one step, Adam moves every coordinate by about lr (bias-corrected)."""
    params, _ = _run(fc.optim.adam(0.5, eps=0.0), steps=1)
    for k in P0:
        np.testing.assert_allclose(np.asarray(params[k]), P0[k] - 0.5 * np.sign(GRADS[0][k]), rtol=1e-12)


def test_adam_l2_and_adamw():
    params, _ = _run(fc.optim.adam(0.01, weight_decay=0.1))
    ref = _adam_reference(0.01, 0.9, 0.999, 1e-8, 0.1, decoupled=False)
    for k in ref:
        np.testing.assert_allclose(np.asarray(params[k]), ref[k], rtol=1e-10)
    params, _ = _run(fc.optim.adamw(0.01, weight_decay=0.1))
    ref = _adam_reference(0.01, 0.9, 0.999, 1e-8, 0.1, decoupled=True)
    for k in ref:
        np.testing.assert_allclose(np.asarray(params[k]), ref[k], rtol=1e-10)


def test_weight_decay_needs_params():
    opt = fc.optim.adamw(0.1)
    state = opt.init(_fc(P0))
    with pytest.raises(ArgumentError, match="params"):
        opt.update(_fc(GRADS[0]), state)
    with pytest.raises(ArgumentError, match="nesterov"):
        fc.optim.sgd(0.1, nesterov=True)


def test_float32_params_stay_float32():
    params = {"w": fc.ones((2, 2))}
    opt = fc.optim.adam(1e-3)
    state = opt.init(params)
    updates, state = opt.update({"w": fc.ones((2, 2))}, state, params)
    new = fc.optim.apply_updates(params, updates)
    assert new["w"].dtype == np.float32 and updates["w"].dtype == np.float32


def test_state_is_a_pytree_of_arrays():
    opt = fc.optim.sgd(0.1, momentum=0.9)
    state = opt.init(_fc(P0))
    leaves = fc.tree.leaves(state)
    assert all(isinstance(x, fc.Array) for x in leaves)
    assert len(leaves) == 1 + len(P0)


def test_update_traces():
    """A whole step traces into one graph (what jit compiles), and the graph agrees."""
    from funconv.backends.interpreter import evaluate

    opt = fc.optim.adam(fc.optim.cosine_decay(0.1, 10))
    params = _fc(P0)
    state = opt.init(params)

    def step(params, state, g):
        updates, state = opt.update(g, state, params)
        return fc.optim.apply_updates(params, updates), state

    graph = fc.make_graph(step)(params, state, _fc(GRADS[0]))
    leaves = [np.asarray(x) for x in fc.tree.leaves((params, state, _fc(GRADS[0])))]
    got = evaluate(graph, leaves)
    want = [np.asarray(x) for x in fc.tree.leaves(step(params, state, _fc(GRADS[0])))]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# --- schedules -----------------------------------------------------------------------


def _at(schedule, step):
    return float(np.asarray(schedule(step)))


def test_constant_and_exponential_decay():
    assert _at(fc.optim.constant(0.3), 7) == pytest.approx(0.3)
    s = fc.optim.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
    assert _at(s, 0) == pytest.approx(1.0)
    assert _at(s, 10) == pytest.approx(0.5, rel=1e-6)
    assert _at(s, 15) == pytest.approx(0.5 ** 1.5, rel=1e-6)
    st = fc.optim.exponential_decay(1.0, 10, 0.5, staircase=True, transition_begin=5, end_value=0.3)
    assert _at(st, 3) == pytest.approx(1.0)
    assert _at(st, 14) == pytest.approx(1.0)
    assert _at(st, 15) == pytest.approx(0.5, rel=1e-6)
    assert _at(st, 100) == pytest.approx(0.3, rel=1e-6)


def test_cosine_decay():
    s = fc.optim.cosine_decay(0.2, decay_steps=100, alpha=0.1)
    for step in (0, 25, 50, 100, 150):
        t = min(step, 100) / 100
        want = 0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * t)) + 0.1)
        assert _at(s, step) == pytest.approx(want, rel=1e-6)


def test_warmup():
    s = fc.optim.warmup(fc.optim.cosine_decay(1.0, 10), warmup_steps=4)
    assert [round(_at(s, i), 6) for i in range(4)] == [0.0, 0.25, 0.5, 0.75]
    assert _at(s, 4) == pytest.approx(1.0)
    assert _at(s, 9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)), rel=1e-6)
    w = fc.optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=12, end_value=0.1)
    assert _at(w, 1) == pytest.approx(0.5)
    assert _at(w, 12) == pytest.approx(0.1, rel=1e-5)


def test_schedule_drives_sgd():
    """The schedule is evaluated at the step count before the update (0 first)."""
    sched = fc.optim.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    params, _ = _run(fc.optim.sgd(sched))
    expected = {k: P0[k] - sum(0.1 * 0.5 ** i * g[k] for i, g in enumerate(GRADS)) for k in P0}
    for k in expected:
        # the schedule is float32: 0.1 is rounded to 7 digits
        np.testing.assert_allclose(np.asarray(params[k]), expected[k], rtol=1e-6, atol=1e-7)


def test_bad_learning_rate():
    opt = fc.optim.sgd("fast")
    with pytest.raises(ArgumentError, match="learning rate"):
        opt.update(_fc(GRADS[0]), opt.init(_fc(P0)), _fc(P0))


def test_clip_by_global_norm():
    tree = {"a": fc.array([3.0, 0.0]), "b": fc.array([4.0])}
    assert float(fc.optim.global_norm(tree)) == pytest.approx(5.0)
    clipped = fc.optim.clip_by_global_norm(tree, 1.0)
    assert float(fc.optim.global_norm(clipped)) == pytest.approx(1.0, rel=1e-6)
    same = fc.optim.clip_by_global_norm(tree, 10.0)
    np.testing.assert_allclose(np.asarray(same["a"]), [3.0, 0.0])


@pytest.mark.parametrize("make", [lambda: fc.optim.sgd(0.1, momentum=0.9, nesterov=True),
                                  lambda: fc.optim.adamw(fc.optim.warmup(0.01, 2), weight_decay=0.1)])
def test_jitted_training_step_matches_eager(make):
    opt = make()

    def loss(p, x):
        return ((x @ p["w"] + p["b"]) ** 2).mean()

    def step(p, s, x):
        v, g = fc.value_and_grad(loss)(p, x)
        u, s = opt.update(g, s, p)
        return fc.optim.apply_updates(p, u), s, v

    x = fc.asarray(np.random.default_rng(1).standard_normal((5, 2)))
    jstep = fc.jit(step)
    p_e = p_j = _fc(P0)
    s_e = s_j = opt.init(p_e)
    for _ in range(4):
        p_e, s_e, v_e = step(p_e, s_e, x)
        p_j, s_j, v_j = jstep(p_j, s_j, x)
        np.testing.assert_allclose(float(v_j), float(v_e), rtol=1e-12)
    for a, b in zip(fc.tree.leaves((p_e, s_e)), fc.tree.leaves((p_j, s_j))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
    assert int(s_j.count) == 4
