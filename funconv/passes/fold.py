"""Constant folding: an Apply whose operands are all Literals or Consts (or
broadcasts of them) is
evaluated at compile time, by the function eager mode calls (`tracing.kernel`: the
NumPy backend's fast kernel, else the primitive's impl), so a folded value is
the value eager mode computes.

Folding must not make the program bigger: `broadcast_to` is never folded (a
broadcast literal stays a scalar the backend can feed to NumPy broadcasting
for free), and no folded constant may exceed `MAX_NEW_ELEMENTS` unless an
operand was already that large (exp of a constant is fine; `zeros(10**8)` as
a baked array is not). A folded result whose elements are all equal becomes a
broadcast literal rather than a stored array.
"""

from __future__ import annotations

import numpy as np

from funconv.ir import Apply, Const, Graph, Literal
from funconv.passes.core import Builder, rewrite
from funconv.tracing import kernel

# A constant of up to 1024 elements (4 KiB in float32) costs nothing to keep in
# generated code; beyond that, only fold when no operand grows.
MAX_NEW_ELEMENTS = 1024


def _value(node) -> np.ndarray:
    if isinstance(node, Literal):
        return np.asarray(node.value, node.dtype)
    if isinstance(node, Apply):  # a broadcast constant: a view, no copy
        return np.broadcast_to(_value(node.args[0]), node.shape)
    return node.value


def _constant(node) -> bool:
    """A Literal, a Const, or a broadcast of one."""
    from funconv.ops.shape import broadcast_to_p

    while isinstance(node, Apply) and node.prim is broadcast_to_p:
        node = node.args[0]
    return isinstance(node, (Literal, Const))


def _stored_size(node) -> int:
    """Elements actually stored for a constant operand (a broadcast stores its source)."""
    while isinstance(node, Apply):
        node = node.args[0]
    return node.type.size


def _fold_rule(b: Builder, node: Apply, args):
    from funconv.ops.shape import broadcast_to_p

    if node.prim is broadcast_to_p or not all(_constant(a) for a in args):
        return None
    largest = max((_stored_size(a) for a in args), default=0)
    if node.type.size > max(MAX_NEW_ELEMENTS, largest):
        return None
    with np.errstate(all="ignore"):
        try:
            value = np.asarray(kernel(node.prim)(*[_value(a) for a in args], **node.params))
        except Exception:  # noqa: BLE001 - an impl that fails here fails at run time, with context
            return None
    if value.shape != node.type.shape or value.dtype != node.type.dtype:
        return None  # never fold to a differently typed value; the backend will compute it
    if value.size > 1:
        first = np.full(value.shape, value.flat[0], value.dtype)
        if first.tobytes() == np.ascontiguousarray(value).tobytes():  # bitwise uniform
            from funconv.passes.algebra import splat

            return splat(b, value.flat[0], node.type)  # a scalar, broadcast: no stored array
    return b.const(value)


def fold_constants(graph: Graph, stats: dict | None = None) -> Graph:
    """Evaluate Literal/Const-only subgraphs at compile time (broadcasts stay symbolic)."""
    return rewrite(graph, _fold_rule, "fold_constants", stats)
