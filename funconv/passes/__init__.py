"""Graph -> graph rewrites run by `fc.jit` between tracing and code generation.

- `fold_constants` (fold.py): Literal/Const-only subgraphs evaluated at compile time
- `simplify` (algebra.py): exact algebraic identities, zero propagation, shape-op chains
- `lower_convolutions` (conv.py): the algorithm of every conv_general node, recorded
  on the node or rewritten (run once, after the fixpoint of the two above)
- `cse`, `dce` (core.py): every rewrite interns nodes and keeps only what the outputs
  reach, so these hold after any pass; they are also available on their own

`optimize` runs the pipeline to a fixpoint. Each pass keeps the graph typed;
with `fc.config.update("debug_passes", True)` types are re-checked after every
pass. Imports ir, types, config, and ops (for the primitives the rules name).
"""

from __future__ import annotations

from funconv.ir import Graph
from funconv.passes.algebra import simplify
from funconv.passes.conv import backend_lacks, lower_convolutions
from funconv.passes.core import Builder, check_types, count_applies, cse, dce, rewrite
from funconv.passes.fold import fold_constants

PIPELINE = (fold_constants, simplify)

# Passes that choose how to compute a node rather than simplify: run once, on the
# simplified graph (a choice made on a graph that later shrinks could be stale).
LOWERINGS = (lower_convolutions,)

# Each round can only remove nodes or merge them; a few rounds reach the fixpoint on
# the chains seen in practice (a rule's output is simplified again in the next round).
MAX_ROUNDS = 6


def optimize(graph: Graph, lacks=frozenset()) -> Graph:
    """The default pipeline (fold, simplify; with CSE and DCE in every step) to a fixpoint,
    then the lowerings (`LOWERINGS`), once each. `lacks`: names of primitives the target
    backend cannot run (its `LACKS`), which the lowerings then do not emit."""
    for _ in range(MAX_ROUNDS):
        stats: dict = {}
        n_before = len(graph.nodes())
        for p in PIPELINE:
            graph = p(graph, stats)
        # no rule fired and interning merged nothing: the next round would change nothing
        if not stats.get("fired") and len(graph.nodes()) == n_before:
            break
    token = backend_lacks.set(frozenset(lacks))
    try:
        for lower in LOWERINGS:
            graph = lower(graph)
    finally:
        backend_lacks.reset(token)
    return graph


__all__ = [
    "LOWERINGS",
    "PIPELINE",
    "Builder",
    "check_types",
    "count_applies",
    "cse",
    "dce",
    "fold_constants",
    "lower_convolutions",
    "optimize",
    "rewrite",
    "simplify",
]
