"""The rewriting machinery every graph pass is built on.

A pass maps a Graph to a new Graph. `rewrite` walks the old graph in
evaluation order and rebuilds every node through a `Builder`, which interns
`Apply` nodes by `(primitive, argument identities, params)` and dedupes
literals and constants. So every rebuild is also common-subexpression
elimination (CSE holds across passes, not only within one trace) and
dead-code elimination (only what the outputs reach is rebuilt). A pass is a
*rule* `rule(builder, old_node, new_args) -> Node | None`: it returns a
replacement for the node, or None to keep it.

`check_types` re-runs every shape rule; with `fc.config.update("debug_passes",
True)` it runs after every pass. Imports ir, types, errors, config; no backend.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from funconv import config
from funconv.ir import Apply, Const, Graph, Input, Interner, Literal, Node

Rule = Callable[["Builder", Apply, list], "Node | None"]


class Builder(Interner):
    """Creates nodes of one new graph, interning them (which is what gives CSE)."""

    def const(self, value: np.ndarray) -> Node:
        """A constant array (a Literal when it is 0-d), made read-only."""
        value = np.asarray(value)
        if value.ndim == 0:
            return self.literal(value[()], value.dtype)
        if value.flags.writeable:
            value = value.copy()
            value.flags.writeable = False
        return super().const(value)

    def reuse(self, node: Node) -> Node:
        """Register an existing Literal/Const of the old graph in this builder."""
        if isinstance(node, Literal):
            return self.literal(node.value, node.dtype)
        if isinstance(node, Const):
            return super().const(node.value, node)
        return node


def rewrite(graph: Graph, rule: Rule | None = None, name: str = "rewrite",
            stats: dict | None = None) -> Graph:
    """Rebuild `graph` bottom-up, letting `rule` replace nodes; interns (CSE) and drops
    everything the outputs do not reach (DCE). The inputs (and so the signature) stay.

    `stats`, when given, gets `fired`: how many nodes the rule replaced.
    """
    fired = 0
    b = Builder()
    env: dict[int, Node] = {id(i): i for i in graph.inputs}
    for node in graph.nodes():
        if id(node) in env:
            continue
        if isinstance(node, Apply):
            args = [env[id(a)] for a in node.args]
            new = rule(b, node, args) if rule is not None else None
            if new is None:
                new = b.apply(node.prim, args, node.params, node.source)
            else:
                fired += 1
            if new.type != node.type:
                raise AssertionError(f"pass {name}: replaced {node.prim.name} of type "
                                     f"{node.type.short()} by a node of type {new.type.short()}")
            env[id(node)] = new
        elif isinstance(node, Input):
            raise ValueError(f"pass {name}: the graph uses an input {node.type.short()} that is "
                             "not among its inputs")
        else:
            env[id(node)] = b.reuse(node)
    outs = tuple(env[id(o)] for o in graph.outputs)
    new_graph = Graph(graph.inputs, outs, graph.in_tree, graph.out_tree)
    if stats is not None:
        stats["fired"] = stats.get("fired", 0) + fired
    if config.debug_passes:
        check_types(new_graph, name)
    return new_graph


def check_types(graph: Graph, after: str = "?") -> None:
    """Re-run every node's shape rule; raise AssertionError naming the pass on a mismatch."""
    for node in graph.nodes():
        if isinstance(node, Apply):
            t = node.prim.shape_rule(*[a.type for a in node.args], **node.params)
            if t != node.type:
                raise AssertionError(f"after pass {after}: {node.prim.name} is typed "
                                     f"{node.type.short()} but its rule gives {t.short()}")
        elif isinstance(node, Literal):
            if node.type.shape != ():
                raise AssertionError(f"after pass {after}: a literal of type {node.type.short()}")
        elif isinstance(node, Const):
            if (node.value.shape, node.value.dtype) != (node.type.shape, node.type.dtype):
                raise AssertionError(f"after pass {after}: a constant typed {node.type.short()} "
                                     f"holds {node.value.dtype}{list(node.value.shape)}")


def cse(graph: Graph) -> Graph:
    """Common-subexpression elimination: merge structurally equal nodes (by interning)."""
    return rewrite(graph, None, "cse")


def dce(graph: Graph) -> Graph:
    """Dead-code elimination: keep only nodes the outputs depend on.

    A Graph lists only what its outputs reach, so after a rewrite replaced a
    node, the nodes it alone used vanish here.
    """
    return rewrite(graph, None, "dce")


def count_applies(graph: Graph) -> int:
    """Number of Apply nodes (the work a backend does); passes are judged by it."""
    return sum(1 for n in graph.nodes() if isinstance(n, Apply))
