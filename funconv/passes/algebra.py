"""Algebraic simplification: rewrites that are exact in IEEE arithmetic.

- `x + 0`, `0 + x`, `x - 0`, `x * 1`, `1 * x`, `x / 1` -> `x`; `0 - x` -> `-x`
- `x * 0` -> 0 for integer and bool x only: for floats `inf * 0` is nan
- zeros flowing out of unused cotangents: a linear primitive (neg, reshape,
  transpose, broadcast_to, sum, ...) of all-zero operands is zero, and
  `select(c, 0, 0)` is zero; the `x + 0` rule then drops them from sums
- `--x` -> `x`; `x + -y` -> `x - y`; `x - -y` -> `x + y`
- transpose of transpose -> one transpose (or none); reshape of reshape ->
  one reshape (or none); broadcast of broadcast -> one broadcast
- reshape/transpose/broadcast of a (broadcast) one-element constant -> a broadcast of the
  scalar (so it stays a scalar the backend passes to NumPy broadcasting)
- identity shape ops, same-dtype conversions, empty-axes sums and
  `stop_gradient` (which only matters while differentiating) disappear
- `select(c, x, x)` -> `x`

A "scalar" is a Literal or a one-element Const, or a broadcast of one. Rules build replacements
through the Builder, so results are interned (CSE) like everything else.
"""

from __future__ import annotations

from funconv.ir import Apply, Const, Graph, Literal, Node
from funconv.passes.core import Builder, rewrite

_MISSING = object()


def scalar_value(node: Node):
    """The value of a Literal or a one-element Const, or of a broadcast of one; else a sentinel."""
    from funconv.ops.shape import broadcast_to_p

    if isinstance(node, Apply) and node.prim is broadcast_to_p:
        node = node.args[0]
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Const) and node.type.size == 1:
        return node.value.reshape(()).item()
    return _MISSING


def _is(node: Node, value) -> bool:
    v = scalar_value(node)
    return v is not _MISSING and v == value


def splat(b: Builder, value, type_) -> Node:
    """The scalar `value` of `type_`'s dtype, broadcast to `type_`'s shape."""
    from funconv.ops.shape import broadcast_to_p

    lit = b.literal(value, type_.dtype)
    if type_.shape == ():
        return lit
    return b.apply(broadcast_to_p, [lit], {"shape": type_.shape})


def _rules():
    # Built on first use: passes may not import ops at module import time (layering).
    from funconv.ops import elementwise as ew
    from funconv.ops.reduce import reduce_sum_p
    from funconv.ops.shape import broadcast_to_p, reshape_p, transpose_p
    from funconv.ops.special import stop_gradient_p

    def add(b, n, x, y):
        if _is(y, 0):
            return x
        if _is(x, 0):
            return y
        if isinstance(y, Apply) and y.prim is ew.neg_p:
            return b.apply(ew.sub_p, [x, y.args[0]], {}, n.source)
        if isinstance(x, Apply) and x.prim is ew.neg_p:
            return b.apply(ew.sub_p, [y, x.args[0]], {}, n.source)
        return None

    def sub(b, n, x, y):
        if _is(y, 0):
            return x
        if _is(x, 0):
            return b.apply(ew.neg_p, [y], {}, n.source)
        if isinstance(y, Apply) and y.prim is ew.neg_p:
            return b.apply(ew.add_p, [x, y.args[0]], {}, n.source)
        return None

    def mul(b, n, x, y):
        if _is(y, 1):
            return x
        if _is(x, 1):
            return y
        if n.dtype.kind in "biu" and (_is(x, 0) or _is(y, 0)):
            return splat(b, 0, n.type)
        return None

    def div(b, n, x, y):
        return x if _is(y, 1) else None

    def neg(b, n, x):
        if isinstance(x, Apply) and x.prim is ew.neg_p:
            return x.args[0]
        return None

    def select(b, n, c, x, y):
        if x is y:
            return x
        if _is(x, 0) and _is(y, 0):
            return splat(b, 0, n.type)
        return None

    def transpose(b, n, x):
        perm = n.params["perm"]
        if perm == tuple(range(len(perm))):
            return x
        if isinstance(x, Apply) and x.prim is transpose_p:
            inner = x.params["perm"]
            composed = tuple(inner[p] for p in perm)
            if composed == tuple(range(len(composed))):
                return x.args[0]
            return b.apply(transpose_p, [x.args[0]], {"perm": composed}, n.source)
        return _scalar_shape_op(b, n, x)

    def reshape(b, n, x):
        if x.shape == n.shape:
            return x
        if isinstance(x, Apply) and x.prim is reshape_p:
            src = x.args[0]
            if src.shape == n.shape:
                return src
            return b.apply(reshape_p, [src], {"shape": n.shape}, n.source)
        return _scalar_shape_op(b, n, x)

    def broadcast(b, n, x):
        if x.shape == n.shape:
            return x
        if isinstance(x, Apply) and x.prim is broadcast_to_p:
            return b.apply(broadcast_to_p, [x.args[0]], {"shape": n.shape}, n.source)
        if isinstance(x, Const):
            return _scalar_shape_op(b, n, x)
        return None

    def _scalar_shape_op(b, n, x):
        v = scalar_value(x)
        if v is _MISSING:
            return None
        return splat(b, v, n.type)

    def reduce_sum(b, n, x):
        return x if not n.params["axes"] else None

    def convert(b, n, x):
        return x if x.dtype == n.dtype else None

    def identity(b, n, x):
        return x

    return {
        ew.add_p: add, ew.sub_p: sub, ew.mul_p: mul, ew.div_p: div, ew.neg_p: neg,
        ew.select_p: select, transpose_p: transpose, reshape_p: reshape,
        broadcast_to_p: broadcast, reduce_sum_p: reduce_sum,
        ew.convert_element_type_p: convert, stop_gradient_p: identity,
    }


_RULES: dict | None = None


def _simplify_rule(b: Builder, node: Apply, args):
    global _RULES
    if _RULES is None:
        _RULES = _rules()
    # zeros flowing through linear ops (exact: a linear map sends 0 to 0, with no inf*0)
    if node.prim.linear and args and all(_is(a, 0) for a in args) and node.dtype.kind != "b" \
            and not (len(args) == 1 and isinstance(args[0], Literal)):  # already a splat
        return splat(b, 0, node.type)
    r = _RULES.get(node.prim)
    return r(b, node, *args) if r is not None else None


def simplify(graph: Graph, stats: dict | None = None) -> Graph:
    """Apply the algebraic rules above once over the graph (see `optimize` for the fixpoint)."""
    return rewrite(graph, _simplify_rule, "simplify", stats)
