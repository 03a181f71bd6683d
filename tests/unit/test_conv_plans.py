"""Convolution plans (funconv/passes/plans.py): the records `jitted.lower(...).conv_plans`
shows, measured planning (`conv_planning="measure"`), its disk cache (atomic, rebuilt when
corrupt or foreign, `FUNCONV_CACHE_DIR`), and what "auto" picks among the new algorithms."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError
from funconv.ops.conv import conv_general_p
from funconv.passes import conv as conv_pass
from funconv.passes import conv_cost, plans

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
W = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)


def _convs(graph):
    return [n for n in graph.applies() if n.prim is conv_general_p]


def test_model_plans_are_recorded_with_predictions_and_no_measurements():
    lowered = fc.jit(lambda x, w: fc.conv(x, w, padding=1)).lower(X, W)
    (plan,) = lowered.conv_plans
    assert plan.choice == "im2col" and plan.how == "model"
    assert "conv_general(f32[2,8,12,12], f32[8,8,3,3]) at test_conv_plans.py" in plan.where
    names = [c.name for c in plan.candidates]
    assert names[0] == "im2col" and "winograd" in names  # ranked by the model
    assert all(c.measured is None for c in plan.candidates)
    assert "im2col (model)" in plans.table(lowered.conv_plans)


def test_forced_rule_and_inner_nodes_are_recorded():
    f = fc.jit(lambda x, w: fc.conv(x, w, padding=1, algorithm="winograd"))
    assert [(p.choice, p.how) for p in f.lower(X, W).conv_plans] == [("winograd", "forced")]
    one = fc.jit(lambda x, w: fc.conv(x, w)).lower(X, W[:, :, :1, :1])
    assert [(p.choice, p.how) for p in one.conv_plans] == [("pointwise_as_dot", "rule")]
    # the helix's 1-d convolution is listed after the node that made it
    h = fc.jit(lambda x, w: fc.conv(x, w, padding=1, algorithm="helix")).lower(X, W)
    assert [p.how for p in h.conv_plans] == ["forced", "model"]
    assert "f32[2,8,196]" in h.conv_plans[1].where


def test_the_model_never_picks_winograd_or_helix_on_the_bench_shapes():
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    for xs, ws, pad in [((16, 64, 32, 32), (64, 64, 3, 3), 1), ((1, 3, 224, 224), (64, 3, 3, 3), 1),
                        ((4, 8, 128, 128), (8, 8, 11, 11), 5), ((1, 1, 97, 101), (1, 1, 31, 31), 15),
                        ((1, 1, 40, 40, 40), (1, 1, 7, 7, 7), 3), ((2, 4, 64, 64, 64), (4, 4, 9, 9, 9), 4)]:
        (plan,) = fc.jit(lambda x, w: fc.conv(x, w, padding=pad)).lower(z(*xs), z(*ws)).conv_plans
        assert plan.choice in ("im2col", "fft"), (xs, plan)
    # a constant full-rank 15^3 kernel on blur3d's volume (helix measured 6x slower there)
    k = np.random.default_rng(0).standard_normal((1, 1, 15, 15, 15)).astype(np.float32)
    (plan,) = fc.jit(lambda x: fc.conv(x, k, padding=7)).lower(z(1, 1, 128, 128, 128)).conv_plans
    assert plan.choice == "fft", plan


def test_an_unknown_planning_mode_raises():
    fc.config.update("conv_planning", "guess")
    try:
        with pytest.raises(ArgumentError, match="conv_planning='guess'"):
            fc.jit(lambda x, w: fc.conv(x, w, padding=1)).lower(X, W)
    finally:
        fc.config.update("conv_planning", "model")


# --- measured planning -----------------------------------------------------------------------------


@pytest.fixture
def measuring(tmp_path, monkeypatch):
    """Measured planning into a temporary FUNCONV_CACHE_DIR, with a fake, counted timer that
    makes Winograd the fastest (so a measured plan visibly overrides the model)."""
    monkeypatch.setenv("FUNCONV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(plans, "_PLANS", None)
    calls = []

    def fake(node, name):
        calls.append(name)
        return {"winograd": 1e-3, "im2col": 2e-3}.get(name, 5e-3)

    monkeypatch.setattr(plans, "time_candidate", fake)
    fc.config.update("conv_planning", "measure")
    yield str(tmp_path / "cache" / "conv_plans.json"), calls
    fc.config.update("conv_planning", "model")


def _lower():
    return fc.jit(lambda x, w: fc.conv(x, w, padding=1)).lower(X, W)


def test_a_measured_plan_overrides_the_model_and_is_cached_on_disk(measuring):
    path, calls = measuring
    lowered = _lower()
    (plan,) = lowered.conv_plans
    assert plan.choice == "winograd" and plan.how == "measured"
    assert sorted(calls) == ["im2col", "winograd"]  # fft and helix: infinite estimates, not timed
    assert {c.name: c.measured for c in plan.candidates if c.measured} == \
        {"im2col": 2e-3, "winograd": 1e-3}
    assert not _convs(lowered.graph)  # the rewrite happened
    with open(path) as fh:
        data = json.load(fh)
    assert data["machine"] == conv_cost.machine() and len(data["plans"]) == 1
    assert os.listdir(os.path.dirname(path)) == ["conv_plans.json"]  # no temporary file left
    # a new process: read back, nothing timed
    plans._PLANS = None
    (plan,) = _lower().conv_plans
    assert plan.choice == "winograd" and plan.how == "cached" and len(calls) == 2


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"format": 1, "plans": 3}),
                                     "foreign"])
def test_a_corrupt_or_foreign_plan_file_is_rebuilt_with_a_warning(measuring, content):
    path, calls = measuring
    os.makedirs(os.path.dirname(path))
    if content == "foreign":
        content = json.dumps({"format": plans.FORMAT, "machine": {"cpus": -1}, "plans": {}})
    with open(path, "w") as fh:
        fh.write(content)
    with pytest.warns(RuntimeWarning, match="measuring again"):
        (plan,) = _lower().conv_plans
    assert plan.choice == "winograd" and plan.how == "measured"
    plans._PLANS = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (plan,) = _lower().conv_plans  # the rebuilt file is good
    assert plan.how == "cached"


def test_a_corrupt_entry_for_this_node_is_measured_again(measuring):
    path, calls = measuring
    _lower()
    with open(path) as fh:
        data = json.load(fh)
    (k,) = data["plans"]
    data["plans"][k] = {"choice": "winograd", "measured": {"winograd": "fast"}}
    with open(path, "w") as fh:
        json.dump(data, fh)
    plans._PLANS = None
    (plan,) = _lower().conv_plans
    assert plan.how == "measured" and len(calls) == 4


def test_funconv_cache_dir_moves_the_calibration_too(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNCONV_CACHE_DIR", str(tmp_path))
    assert conv_cost.cache_path() == str(tmp_path / "conv_rates.json")
    assert plans.cache_path() == str(tmp_path / "conv_plans.json")
    monkeypatch.delenv("FUNCONV_CACHE_DIR")
    assert conv_cost.cache_path() != str(tmp_path / "conv_rates.json")


def test_measurement_times_real_candidates_with_the_numpy_backend(tmp_path, monkeypatch):
    """The real timer, on a small conv: each candidate compiled alone and timed; a separable
    constant kernel is measured with its kernel kept constant."""
    monkeypatch.setenv("FUNCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(plans, "_PLANS", None)
    g = np.exp(-0.5 * (np.arange(9) - 4) ** 2 / 4)
    k = np.outer(g, g).astype(np.float32)[None, None]
    x = rng.standard_normal((1, 1, 64, 64)).astype(np.float32)
    fc.config.update("conv_planning", "measure")
    try:
        f = fc.jit(lambda x: fc.conv(x, k, padding=4))
        lowered = f.lower(x)
    finally:
        fc.config.update("conv_planning", "model")
    top = lowered.conv_plans[0]
    timed = [c for c in top.candidates if c.measured is not None]
    assert top.how == "measured" and 2 <= len(timed) <= plans.TOP
    assert all(0 < c.measured < 1 for c in timed)
    assert top.choice == min(timed, key=lambda c: c.measured).name
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(fc.conv(x, k, padding=4, algorithm="direct")),
                               atol=1e-5)


def test_planning_is_off_by_default(monkeypatch):
    monkeypatch.setattr(plans, "time_candidate", lambda node, name: pytest.fail("measured"))
    assert fc.config.conv_planning == "model"
    assert _lower().conv_plans[0].how == "model"


def test_candidate_graph_holds_just_that_lowering():
    node = _convs(fc.make_graph(lambda x, w: fc.conv(x, w, padding=1))(X, W))[0]
    graph, types = plans.candidate_graph(node, "winograd")
    assert [t.shape for t in types] == [X.shape, W.shape] and not _convs(graph)
    graph, _ = plans.candidate_graph(node, "im2col")
    assert [c.params["algorithm"] for c in _convs(graph)] == ["im2col"]
    assert conv_pass.choose(node).name == "im2col"
