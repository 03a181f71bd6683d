"""Algebraic simplification: rewrites that are exact in IEEE arithmetic.

Exact means bit for bit, for every x including -0.0, +-inf and NaN (a jitted
function must return what the eager one does). The sign of zero is where most
textbook identities fail: `-0.0 + 0.0` is +0.0, so `x + 0.0 -> x` is wrong, while
`x + (-0.0)` is x for every x; likewise `0.0 - x` is not `-x` at x = 0.0, but
`-0.0 - x` is. Integers have one zero, so there any zero will do.

- `x + (-0.0)`, `(-0.0) + x`, `x - 0.0`, `x * 1`, `1 * x`, `x / 1` -> `x` (any zero for
  integers; `* 1` and `/ 1` not for complex x: `(a+bj) * (1+0j)` computes `b * 0`, NaN
  for b = inf); `(-0.0) - x` -> `-x`
- `x * 0` -> 0 for integer and bool x only: for floats `inf * 0` is nan
- zeros flowing out of unused cotangents: a linear primitive (reshape, transpose,
  broadcast_to, sum, add, ...) of all-(+0.0) operands is +0.0 (not neg or conj, which
  flip a sign: -(+0.0) is -0.0), and `select(c, z, z)` of one zero is that zero
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

import numpy as np

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


def _is_zero(node: Node, negative: bool) -> bool:
    """A scalar zero of the given sign (-0.0 if `negative`, else +0.0); any zero of an integer or
    bool node, which has only one. A complex zero needs the sign on both parts."""
    v = scalar_value(node)
    if v is _MISSING or v != 0:
        return False
    if node.dtype.kind not in "fc":
        return True
    parts = (v.real, v.imag) if node.dtype.kind == "c" else (v,)
    return all(bool(np.signbit(p)) == negative for p in parts)


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
        # x + (-0.0) is x for every x; x + (+0.0) is not (-0.0 + 0.0 is +0.0)
        if _is_zero(y, negative=True):
            return x
        if _is_zero(x, negative=True):
            return y
        if isinstance(y, Apply) and y.prim is ew.neg_p:
            return b.apply(ew.sub_p, [x, y.args[0]], {}, n.source)
        if isinstance(x, Apply) and x.prim is ew.neg_p:
            return b.apply(ew.sub_p, [y, x.args[0]], {}, n.source)
        return None

    def sub(b, n, x, y):
        # x - (+0.0) is x + (-0.0); (-0.0) - y is -y, while (+0.0) - (+0.0) is +0.0, not -0.0
        if _is_zero(y, negative=False):
            return x
        if _is_zero(x, negative=True):
            return b.apply(ew.neg_p, [y], {}, n.source)
        if isinstance(y, Apply) and y.prim is ew.neg_p:
            return b.apply(ew.add_p, [x, y.args[0]], {}, n.source)
        return None

    def mul(b, n, x, y):
        # complex products compute cross terms: (a+bj) * (1+0j) has b * 0, NaN at b = inf
        if n.dtype.kind != "c" and _is(y, 1):
            return x
        if n.dtype.kind != "c" and _is(x, 1):
            return y
        if n.dtype.kind in "biu" and (_is(x, 0) or _is(y, 0)):
            return splat(b, 0, n.type)
        return None

    def div(b, n, x, y):
        return x if n.dtype.kind != "c" and _is(y, 1) else None

    def neg(b, n, x):
        if isinstance(x, Apply) and x.prim is ew.neg_p:
            return x.args[0]
        return None

    def select(b, n, c, x, y):
        if x is y:
            return x
        # both branches the same zero (a zero of either sign: select picks, it does not add)
        for neg in (False, True):
            if _is_zero(x, neg) and _is_zero(y, neg):
                return splat(b, scalar_value(x), n.type)
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
    # zeros flowing through linear ops (exact: a linear map sends +0.0 to +0.0, with no inf*0;
    # but not -0.0, as -0.0 + -0.0 is -0.0, and neg and conj flip the sign of a zero)
    if node.prim.linear and args and all(_is_zero(a, negative=False) for a in args) \
            and node.dtype.kind != "b" and node.prim.name not in ("neg", "conj") \
            and not (len(args) == 1 and isinstance(args[0], Literal)):  # already a splat
        return splat(b, 0, node.type)
    r = _RULES.get(node.prim)
    return r(b, node, *args) if r is not None else None


def simplify(graph: Graph, stats: dict | None = None) -> Graph:
    """Apply the algebraic rules above once over the graph (see `optimize` for the fixpoint)."""
    return rewrite(graph, _simplify_rule, "simplify", stats)
