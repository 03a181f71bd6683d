"""The reference interpreter: walks a graph calling each primitive's impl on
NumPy arrays. It is the oracle every other backend is tested against; keep it
simple and obviously right.
"""

from __future__ import annotations

import numpy as np

from funconv.ir import Apply, Const, Graph, Input, Literal


def evaluate(graph: Graph, args) -> list[np.ndarray]:
    """Values of `graph.outputs` for NumPy (or Array) `args` bound to `graph.inputs`."""
    env: dict[int, np.ndarray] = {}
    for node, a in zip(graph.inputs, args):
        env[id(node)] = np.asarray(a)
    for node in graph.nodes():
        if id(node) in env:
            continue
        if isinstance(node, Apply):
            out = np.asarray(node.prim.impl(*[env[id(a)] for a in node.args], **node.params))
            if out.shape != node.type.shape or out.dtype != node.type.dtype:
                raise AssertionError(f"{node.prim.name}: impl returned {out.dtype}{list(out.shape)}, "
                                     f"the shape rule says {node.type.short()}")
            env[id(node)] = out
        elif isinstance(node, Literal):
            env[id(node)] = np.asarray(node.value, node.dtype)
        elif isinstance(node, Const):
            env[id(node)] = node.value
        elif isinstance(node, Input):
            raise ValueError(f"no value for graph input {node.name or '?'}: {node.type.short()}")
    return [env[id(o)] for o in graph.outputs]
