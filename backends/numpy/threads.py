"""BLAS threads per compiled graph: measured, not assumed (`fc.config` option "threads").

A jitted training step makes many BLAS calls (GEMMs of every convolution and dense
layer). With several threads, each call waits for all of its threads; when another
busy process holds a core, that thread runs a scheduler time slice late, and a step
of many small GEMMs takes 2-50x longer (issue 15: a LeNet step, 23 ms quiet, took
55-1200 ms beside one busy process with OpenBLAS's default of all cores, and 20-28 ms
with one thread). Large GEMMs still want every core on a quiet machine. So each
compiled graph that calls BLAS measures itself:

1. planning: its first calls run at one thread, then at the library's default (all usable
   cores), `TRIALS` timed calls each after one untimed call; the faster median wins. In
   blocks, not alternating: after a multithreaded call OpenBLAS's idle threads spin for a
   while, and a one-thread call right after it measured the spinning too (with scipy's FFT
   workers wanting that core, a blur3d forward took 32.9 ms "at one thread" alternating,
   18.7 ms at one thread alone, 32.3 ms at two);
2. watching: every call is timed; when the running time drifts far from the planned
   one (`DRIFT`, for `PATIENCE` calls in a row: the load changed) or `REPLAN_S`
   seconds have passed, it plans again.

The thread count is set (threadpoolctl, on the BLAS libraries NumPy loaded) just for
the call and restored afterwards, so eager code keeps the library's default. Graphs
whose calls take under `TOO_SHORT_S` are not planned: their GEMMs are small enough that
BLAS runs them on one thread anyway, and the wrapper would only add overhead.
`fc.config.update("threads", n)` fixes the count for every compiled graph; "auto" (the
default) plans. The choice, and why, is logged (logger "funconv.threads", INFO) and
shown by `jitted.profile(...)`. Threads are set process-wide: jitted functions called
concurrently from several Python threads share one setting.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from funconv import config

logger = logging.getLogger("funconv.threads")

TRIALS = 3  # timed calls per candidate while planning (their median decides)
# the calls that plan: per candidate (1, then all cores), one untimed call and TRIALS timed
PLANNING_CALLS = 2 * (TRIALS + 1)
DRIFT = 1.5  # a call this many times slower (or faster) than planned counts as drift
PATIENCE = 5  # consecutive drifting calls before planning again
REPLAN_S = 30.0  # plan again after this long anyway (a load that left shows no drift)
# Below this a step's GEMMs are small: OpenBLAS runs them single-threaded whatever the
# setting, and the measurement would be noise (the wrapper costs ~1 us per call).
TOO_SHORT_S = 200e-6


class _Blas:
    """The BLAS libraries loaded in this process (via threadpoolctl), their default thread
    count, and the count currently set."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.libs = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        self.default = max([c.num_threads for c in self.libs], default=1)
        self.current = self.default

    def set(self, n: int) -> None:
        if n != self.current:
            for c in self.libs:
                c.set_num_threads(n)
            self.current = n


_blas: _Blas | None = None


def blas() -> _Blas:
    global _blas
    if _blas is None:
        _blas = _Blas()
    return _blas


class ThreadPlan:
    """`plan(*arrays)` runs the generated function `fn` with this graph's BLAS thread count
    (see the module docstring); `threads` is the count in use (None while planning) and
    `why` says how it was chosen."""

    def __init__(self, fn, name: str, owner=None, lanes: bool = False):
        self.fn = fn
        self.name = name
        self.owner = owner  # the Executable whose `call` this plan is
        self.lanes = lanes  # the graph runs on two lanes (lanes.py): one BLAS thread each
        self._start_planning()

    # -- the call path ---------------------------------------------------------------------
    def __call__(self, *arrays):
        if self.direct:
            return self.fn(*arrays)
        lib = blas()
        n = self.threads if self.threads is not None else self._trial_threads()
        lib.set(n)
        t0 = time.perf_counter()
        try:
            return self.fn(*arrays)
        finally:
            dt = time.perf_counter() - t0
            lib.set(lib.default)  # eager code keeps the library's default
            if self.threads is None:
                self._plan(n, dt)
            elif self.watching:
                self._watch(dt)

    # -- planning and watching ---------------------------------------------------------------
    def _start_planning(self) -> None:
        lib = blas()
        setting = config.threads
        self.threads, self.watching, self.direct = None, False, False
        if setting != "auto":
            self.threads, self.why = int(setting), f"fixed by fc.config threads={setting}"
            self.direct = self.threads == lib.default
        elif self.lanes:
            self.threads, self.why = 1, "one per thread: parts of the graph run on two threads (lanes.py)"
            self.direct = lib.default == 1
        elif lib.default <= 1 or not lib.libs:
            self.threads, self.why, self.direct = lib.default, "one usable core (or no BLAS)", True
        else:
            self.why = "planning"
            self.candidates = (1, lib.default)
            self.samples: dict[int, list[float]] = {n: [] for n in self.candidates}
            self.calls = 0

    def _trial_threads(self) -> int:
        return self.candidates[min(self.calls // (TRIALS + 1), len(self.candidates) - 1)]

    def _plan(self, n: int, dt: float) -> None:
        # each candidate's first call is not counted: it warms up (page faults, caches) and
        # lets the previous count's idle threads stop spinning
        if self.calls % (TRIALS + 1):
            self.samples[n].append(dt)
        self.calls += 1
        if min(len(s) for s in self.samples.values()) < TRIALS:
            return
        med = {k: float(np.median(v)) for k, v in self.samples.items()}
        if max(med.values()) < TOO_SHORT_S:
            self.threads, self.direct = self.candidates[-1], True
            if self.owner is not None:  # no planning left to do: the call path skips the plan
                self.owner.call = self.fn
            self.why = (f"the library default: calls take under {1e6 * TOO_SHORT_S:.0f} us, "
                        "too short for the thread count to matter")
        else:
            self.threads = min(med, key=med.get)
            self.why = "measured " + ", ".join(
                f"{k} thread{'s' if k > 1 else ''} {1e3 * t:.2f} ms" for k, t in sorted(med.items()))
            self.watching, self.planned_s = True, med[self.threads]
            self.planned_at, self.drifts = time.monotonic(), 0
        logger.info("jit(%s): BLAS threads %d (%s)", self.name, self.threads, self.why)

    def _watch(self, dt: float) -> None:
        drifting = not self.planned_s / DRIFT <= dt <= self.planned_s * DRIFT
        self.drifts = self.drifts + 1 if drifting else 0
        if self.drifts >= PATIENCE or time.monotonic() - self.planned_at > REPLAN_S:
            logger.info("jit(%s): planning BLAS threads again (%s)", self.name,
                        f"calls take {1e3 * dt:.2f} ms, planned {1e3 * self.planned_s:.2f} ms"
                        if self.drifts >= PATIENCE else f"{REPLAN_S:.0f} s since the last plan")
            self._start_planning()

    def describe(self) -> str:
        if self.threads is None:
            return "BLAS threads: planning (the first calls run at 1 thread, then at all cores)"
        return f"BLAS threads: {self.threads} ({self.why})"


def uses_blas(graph) -> bool:
    """Does the graph call BLAS (a GEMM or a convolution)? Only those get a ThreadPlan."""
    return any(n.prim.name in ("dot_general", "conv_general") for n in graph.applies())
