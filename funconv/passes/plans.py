"""Convolution plans: what `choose` (passes/conv.py) considered and chose for each node, and
measured plans (`fc.config.update("conv_planning", "measure")`).

Every conv_general node that `lower_convolutions` lowers leaves a `ConvPlan` record: the
candidates (each with its predicted seconds from the cost model, passes/conv_cost.py, and its
measured seconds when the plan was measured), the choice, and how it was made ("forced",
"rule": an uncosted rewrite that never loses, "model", "measured", or "cached": a measured
plan read back from disk). `jitted.lower(*args).conv_plans` lists them (funconv/jit.py reads
`records(graph)`); nodes that a rewrite creates (a separable kernel's two passes, the helix's
1-d convolution) are listed too, after the node that made them.

Measured planning ("measure"; the default "model" uses the cost model alone). For an "auto"
node, the `TOP` candidates the model ranks first (finite estimates only) are each compiled
into a tiny graph holding just that convolution, lowered that way, with the NumPy backend
(the timer it registers: `set_timer`; passes may not import backends), and timed on random
data of the node's shapes and dtype (the best of a few runs: the machine's speed, not its
load). The fastest wins. The winner is cached per (shapes, dtypes, params, whether and which
constant kernel, candidates, backend "numpy", device "cpu") in memory and on disk, in
`conv_plans.json` next to the cost model's calibration (conv_cost.cache_dir(); the
`FUNCONV_CACHE_DIR` environment variable overrides the directory), with this machine's
description (conv_cost.machine()): a file of another machine or version, or an unreadable one,
is replaced with a warning, never an error; writes are atomic (a temporary file in the same
directory, then os.replace). Nodes inside a measurement are planned by the model (no nested
measuring). Planning costs the compile time of a few tiny graphs and `TOP` x a few runs of
each convolution, once per machine; the test suite leaves it off unless a test asks.
Imports ir, config, errors, passes.core and passes.conv_cost (passes.conv lazily); no backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import warnings
import weakref
from collections.abc import Callable

import attrs
import numpy as np

from funconv import config
from funconv.errors import ArgumentError
from funconv.ir import Apply, Const, Graph, Input
from funconv.passes import conv_cost

FORMAT = 1  # bump when the cached file's layout changes
TOP = 3  # candidates measured per node (the model's best first)
MODES = ("model", "measure")


@attrs.frozen
class Candidate:
    """One algorithm considered for a node: `predicted` seconds (None: uncosted or forced),
    `measured` seconds (None: not measured)."""

    name: str
    predicted: float | None = None
    measured: float | None = None


@attrs.frozen
class ConvPlan:
    """The choice made for one conv_general node.

    Attributes:
        where: the node, e.g. "conv_general(f32[16,64,32,32], f32[64,64,3,3]) at model.py:12".
        candidates: the algorithms considered (for "auto": every applicable costed one, in
            the model's order), as `Candidate`s.
        choice: the algorithm chosen.
        how: "forced", "rule" (an uncosted rewrite), "model", "measured" or "cached".
    """

    where: str
    candidates: tuple
    choice: str
    how: str

    def __str__(self) -> str:
        def ms(v):
            # (an infinite cost: ruled out by a rule, e.g. FFT for windows of 5 or less)
            return "-" if v is None else ("ruled out" if math.isinf(v) else f"{v * 1e3:.3g} ms")

        rows = [f"{self.where}: {self.choice} ({self.how})"]
        for c in self.candidates:
            mark = "*" if c.name == self.choice else " "
            rows.append(f"  {mark} {c.name:<16} predicted {ms(c.predicted):>10}   measured "
                        f"{ms(c.measured):>10}")
        return "\n".join(rows)


def where(node: Apply) -> str:
    x, w = node.args
    at = f" at {node.source}" if node.source else ""
    return f"conv_general({x.type.short()}, {w.type.short()}){at}"


# --- the records of one lowering ---------------------------------------------------------------

_notes: list | None = None  # the records of the lower_convolutions pass running now
_measuring = False  # True while a candidate is compiled for timing: plan by the model, note nothing
_RECORDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Graph -> its records


@contextlib.contextmanager
def recording():
    """Collect the records of the nodes lowered inside (yields the list)."""
    global _notes
    outer, _notes = _notes, []
    try:
        yield _notes
    finally:
        _notes = outer


def note(node: Apply, candidates, choice: str, how: str) -> None:
    if _notes is not None and not _measuring:
        _notes.append(ConvPlan(where(node), tuple(candidates), choice, how))


def attach(graph: Graph, notes: list) -> None:
    _RECORDS[graph] = tuple(notes)


def records(graph: Graph) -> tuple:
    """The `ConvPlan`s of the convolutions lowered into `graph` (empty if none)."""
    return _RECORDS.get(graph, ())


def table(plans) -> str:
    return "\n".join(str(p) for p in plans)


# --- choosing among the costed candidates --------------------------------------------------------


def pick(node: Apply, costed: list):
    """The algorithm for an "auto" node among `costed` (applicable Algorithm records, in AUTO
    order): the cheapest by the model (ties: the earlier), or with conv_planning="measure"
    the fastest of the model's TOP by measurement (cached). Notes the plan."""
    mode = config.conv_planning
    if mode not in MODES:
        raise ArgumentError(f"fc.config conv_planning={mode!r}: use one of {MODES}")
    predicted = {a.name: a.cost(node) for a in costed}
    ranked = sorted(costed, key=lambda a: predicted[a.name])  # stable: ties keep AUTO order
    best, how, measured = ranked[0], "model", {}
    finite = [a for a in ranked if math.isfinite(predicted[a.name])][:TOP]
    if mode == "measure" and not _measuring and len(finite) > 1:
        measured, how = _measured(node, [a.name for a in finite])
        if measured:
            best = min(finite, key=lambda a: measured.get(a.name, math.inf))
        else:
            how = "model"  # no timer registered: the model decides
    note(node, [Candidate(a.name, predicted[a.name], measured.get(a.name)) for a in ranked],
         best.name, how)
    return best


# --- the cache ---------------------------------------------------------------------------------------


def cache_path() -> str:
    return os.path.join(conv_cost.cache_dir(), "conv_plans.json")


_PLANS: dict | None = None  # key -> {"choice": name, "measured": {name: seconds}}, once loaded


def _load(path: str) -> dict:
    """The cached plans, or {} (with a warning when the file exists but is not usable)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or data.get("format") != FORMAT \
                or data.get("machine") != conv_cost.machine():
            warnings.warn(f"funconv: {path} holds convolution plans of another machine or version; "
                          "measuring again", RuntimeWarning, stacklevel=4)
            return {}
        plans = data["plans"]
        if not isinstance(plans, dict):
            raise ValueError("'plans' is not an object")
        return plans
    except (OSError, ValueError, KeyError, TypeError) as e:
        warnings.warn(f"funconv: the convolution plans {path} are unreadable ({e}); measuring again",
                      RuntimeWarning, stacklevel=4)
        return {}


def _store(path: str, plans: dict) -> None:
    conv_cost.store_json(path, {"format": FORMAT, "machine": conv_cost.machine(), "plans": plans},
                         "plans")


def _kernel_value(node: Apply) -> np.ndarray | None:
    from funconv.passes.separable import constant_value

    return constant_value(node.args[1])


def key(node: Apply, names) -> str:
    """What a measured plan is valid for (see the module docstring), as a string."""
    x, w = node.args
    params = {k: v for k, v in sorted(node.params.items()) if k != "algorithm"}
    value = _kernel_value(node)
    kernel = None if value is None else hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()
    return json.dumps([x.type.short(), w.type.short(), repr(params), kernel, sorted(names),
                       "numpy", "cpu"])


def _valid(entry, names) -> bool:
    return (isinstance(entry, dict) and entry.get("choice") in names
            and isinstance(entry.get("measured"), dict)
            and all(isinstance(v, (int, float)) and v > 0 for v in entry["measured"].values()))


def _measured(node: Apply, names: list) -> tuple[dict, str]:
    """{name: seconds} for the candidates `names` of `node` and "cached" or "measured"
    ({} when no timer is registered)."""
    global _PLANS
    if _TIMER is None:
        return {}, "model"
    path = cache_path()
    if _PLANS is None:
        _PLANS = _load(path)
    k = key(node, names)
    entry = _PLANS.get(k)
    if _valid(entry, names):
        return {n: float(s) for n, s in entry["measured"].items()}, "cached"
    measured = {n: time_candidate(node, n) for n in names}
    _PLANS[k] = {"choice": min(measured, key=measured.get), "measured": measured}
    # merge with what another process may have written meanwhile, then replace atomically
    on_disk = _load(path) if os.path.exists(path) else {}
    _store(path, {**on_disk, **_PLANS})
    return measured, "measured"


# --- timing one candidate --------------------------------------------------------------------------

# `(graph, arrays) -> seconds`: compiles the graph and times it on the arrays (one per graph
# input); registered by the NumPy backend (backends/numpy/__init__.py)
_TIMER: Callable | None = None


def set_timer(timer: Callable | None) -> None:
    global _TIMER
    _TIMER = timer


def _random(t, rng) -> np.ndarray:
    v = rng.standard_normal(t.shape)
    if t.dtype.kind == "c":
        v = v + 1j * rng.standard_normal(t.shape)
    return v.astype(t.dtype)


def candidate_graph(node: Apply, name: str) -> tuple[Graph, list]:
    """A graph holding just `node`'s convolution lowered by algorithm `name` (its inputs:
    x, and the kernel unless it is a constant, which stays one), and its graph inputs' types."""
    from funconv.passes.conv import lower_convolutions

    x = Input(node.args[0].type, "x")
    value = _kernel_value(node)
    w = Const(node.args[1].type, value) if value is not None else Input(node.args[1].type, "w")
    conv = Apply(type=node.type, prim=node.prim, args=(x, w),
                 params={**node.params, "algorithm": name}, source=node.source)
    inputs = (x,) if value is not None else (x, w)
    global _measuring
    outer, _measuring = _measuring, True
    force = config.conv_force_algorithm
    config.update("conv_force_algorithm", None)
    try:
        graph = lower_convolutions(Graph(inputs, (conv,)))
    finally:
        _measuring = outer
        config.update("conv_force_algorithm", force)
    return graph, [i.type for i in inputs]


def time_candidate(node: Apply, name: str) -> float:
    """Seconds of `node` computed by algorithm `name` (compiled alone, random data)."""
    graph, types = candidate_graph(node, name)
    rng = np.random.default_rng(0)
    return float(_TIMER(graph, [_random(t, rng) for t in types]))


def best_of(f, budget_s: float = 0.25, runs: int = 5) -> float:
    """The fastest of up to `runs` calls of f (after a warm-up), stopping after `budget_s`."""
    f()
    best, spent = math.inf, 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best
