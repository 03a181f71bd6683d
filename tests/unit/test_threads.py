"""BLAS threads per jitted graph (backends/numpy/threads.py): planned by measurement,
re-planned on drift, fixed by fc.config, restored for eager code."""

from __future__ import annotations

import time

import numpy as np
import pytest

import funconv as fc
from funconv.backends.numpy import threads


@pytest.fixture
def blas():
    lib = threads.blas()
    if lib.default < 2:
        pytest.skip("one BLAS thread here: nothing to choose between")
    return lib


def _workload(lib, slow_threads: int, log: list):
    """A stand-in for a generated function whose speed depends on the BLAS thread count
    in force while it runs (a step beside a busy process: slow with all cores)."""

    def fn(*arrays):
        log.append(lib.current)
        time.sleep(0.02 if lib.current == slow_threads else 0.002)
        return arrays

    return fn


def test_planning_picks_the_faster_count_and_restores_the_default(blas):
    log: list = []
    plan = threads.ThreadPlan(_workload(blas, slow_threads=blas.default, log=log), "step")
    for _ in range(threads.PLANNING_CALLS):
        plan()
        assert blas.current == blas.default  # eager code between calls keeps the default
    assert sorted(set(log)) == [1, blas.default]  # it tried both
    assert plan.threads == 1 and "measured" in plan.why
    plan()
    assert log[-1] == 1 and "BLAS threads: 1" in plan.describe()


def test_drift_makes_it_plan_again(blas, monkeypatch):
    monkeypatch.setattr(threads, "PATIENCE", 2)
    slow = {"n": blas.default}
    log: list = []

    def fn():
        log.append(blas.current)
        time.sleep(0.02 if blas.current == slow["n"] else 0.002)

    plan = threads.ThreadPlan(fn, "step")
    for _ in range(threads.PLANNING_CALLS):
        plan()
    assert plan.threads == 1
    slow["n"] = 1  # the load moved: one thread is now the slow choice
    for _ in range(threads.PATIENCE + threads.PLANNING_CALLS):
        plan()
    assert plan.threads == blas.default


def test_short_calls_keep_the_default_without_a_wrapper_cost(blas):
    plan = threads.ThreadPlan(lambda: None, "tiny")
    for _ in range(threads.PLANNING_CALLS):
        plan()
    assert plan.threads == blas.default and plan.direct


def test_config_fixes_the_count(blas):
    log: list = []
    fc.config.update("threads", 1)
    try:
        plan = threads.ThreadPlan(_workload(blas, slow_threads=1, log=log), "step")
        plan()
        plan()
    finally:
        fc.config.update("threads", "auto")
    assert log == [1, 1] and "fixed" in plan.why
    assert blas.current == blas.default


def test_only_graphs_that_call_blas_are_planned():
    x = np.ones((4, 4), np.float32)
    gemm = fc.jit(lambda x: x @ x)
    ew = fc.jit(lambda x: x * 2 + 1)
    assert gemm.lower(x).executable.plan is not None
    assert ew.lower(x).executable.plan is None
    assert "BLAS threads" in str(gemm.profile(x, repeat=2)).splitlines()[0]
