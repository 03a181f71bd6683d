"""Constant folding: an Apply whose operands are all Literals or Consts is
evaluated at compile time, with the primitive's own impl (the same function
the backends call, so folding cannot change a result).

Folding must not make the program bigger: `broadcast_to` is never folded (a
broadcast literal stays a scalar the backend can feed to NumPy broadcasting
for free), and no folded constant may exceed `MAX_NEW_ELEMENTS` unless an
operand was already that large (exp of a constant is fine; `zeros(10**8)` as
a baked array is not).
"""

from __future__ import annotations

import numpy as np

from funconv.ir import Apply, Const, Graph, Literal
from funconv.passes.core import Builder, rewrite

# A constant of up to 1024 elements (4 KiB in float32) costs nothing to keep in
# generated code; beyond that, only fold when no operand grows.
MAX_NEW_ELEMENTS = 1024


def _value(node) -> np.ndarray:
    if isinstance(node, Literal):
        return np.asarray(node.value, node.dtype)
    return node.value


def _fold_rule(b: Builder, node: Apply, args):
    from funconv.ops.shape import broadcast_to_p

    if not all(isinstance(a, (Literal, Const)) for a in args) or node.prim is broadcast_to_p:
        return None
    largest = max((a.type.size for a in args), default=0)
    if node.type.size > max(MAX_NEW_ELEMENTS, largest):
        return None
    with np.errstate(all="ignore"):
        try:
            value = np.asarray(node.prim.impl(*[_value(a) for a in args], **node.params))
        except Exception:  # noqa: BLE001 - an impl that fails here fails at run time, with context
            return None
    if value.shape != node.type.shape or value.dtype != node.type.dtype:
        return None  # never fold to a differently typed value; the backend will compute it
    return b.const(value)


def fold_constants(graph: Graph, stats: dict | None = None) -> Graph:
    """Evaluate Literal/Const-only subgraphs at compile time (broadcasts stay symbolic)."""
    return rewrite(graph, _fold_rule, "fold_constants", stats)
