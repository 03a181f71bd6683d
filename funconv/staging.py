"""Staging: trace a Python function into a Graph (`trace_to_graph`, `fc.make_graph`).

`jit` and `make_graph` build their graphs here. Tracing itself (the `Trace`
interpreter) is in tracing.py; this module flattens the arguments, runs the
function under a fresh `Trace` and collects the outputs. It sits above ops
because it converts arguments and results with `asarray`.

Imports tracing, tree and ops (asarray).
"""

from __future__ import annotations

from funconv import tree as tree_util
from funconv.ops._core import asarray
from funconv.tracing import Trace


def trace_to_graph(f, args, kwargs=None, static_argnums=(), concrete=False, name_inputs=True):
    """Trace `f(*args)` into a Graph with abstract inputs for the non-static args.

    Returns `(graph, captured)` where `captured` are the outer Arrays bound to
    the graph's trailing captured inputs.
    """
    kwargs = kwargs or {}
    static = set(static_argnums)
    dyn = [a for i, a in enumerate(args) if i not in static]
    leaves, in_tree = tree_util.flatten(dyn)
    arrays = [asarray(x) for x in leaves]
    trace = Trace()
    with trace.activate():
        ins = [trace.new_input(a.aval, a._concrete_value() if concrete else None,
                               f"x{i}" if name_inputs else "")
               for i, a in enumerate(arrays)]
        it = iter(tree_util.unflatten(in_tree, ins))
        full = [a if i in static else next(it) for i, a in enumerate(args)]
        out = f(*full, **kwargs)
        out_leaves, out_tree = tree_util.flatten(out)
        outs = [asarray(o) for o in out_leaves]
    graph = trace.graph(outs, in_tree, out_tree)
    return graph, [outer for outer, _ in trace.captured]


def make_graph(f, static_argnums=()):
    """`make_graph(f)(*args)` -> the traced Graph of `f` (as `jax.make_jaxpr`).

    `str(graph)` prints it SSA-style with types and source lines;
    `graph.to_dot()` gives Graphviz text.
    """
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)

    def traced(*args, **kwargs):
        graph, _ = trace_to_graph(f, args, kwargs, static_argnums)
        return graph

    return traced
