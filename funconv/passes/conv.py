"""Convolution lowering: the algorithm of every `conv_general` node, chosen once per graph.

`lower_convolutions` visits every conv_general node (a training step has three: the
forward and the two VJP convolutions, which are conv_general again) and either
records the chosen algorithm on the node (its `algorithm` param: "auto" becomes e.g.
"im2col", so the printed graph and the generated code show it) or rewrites the node
as other primitives, when the rewrite is as fast on every backend.

Each algorithm is one `Algorithm` record: its name, `why_not(node)` (None when it can
compute this convolution, else the reason) and `lower(builder, node, args)` (the
replacement node). Two tables:
- `ALGORITHMS`, the names a user may force with `fc.conv(..., algorithm=name)`: a
  forced choice is honoured, or raises an ArgumentError saying why it cannot be;
- `AUTO`, the candidates for "auto" in order of preference: the first that applies
  wins. (This order is the cost model for now; FFT, helix, separable and Winograd
  will add a candidate each, with a cost estimate when there is more than one
  plausible winner.)

The rewrites here are backend-neutral: a 1x1 convolution (stride 1, no padding, no
input dilation, one group) is one GEMM, so it becomes `dot_general` (+ reshapes and a
broadcast view). The choice among equivalent GEMM layouts (batch first or last,
scatter, polyphase for input dilation) is the NumPy kernel's own (a backend choice,
backends/numpy/kernels/conv.py): a graph-level polyphase split would not be faster
than the kernel's. Imports ir, errors, passes.core and ops (the primitives the
rules build); no backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

from funconv.errors import ArgumentError
from funconv.ir import Apply, Graph, Node
from funconv.ops.conv import conv_general_p
from funconv.ops.linalg import dot_general_p
from funconv.ops.shape import broadcast_to_p, reshape_p
from funconv.passes import separable
from funconv.passes.core import Builder, rewrite


@attrs.frozen
class Algorithm:
    """One way to compute a convolution.

    Attributes:
        name: as printed in the graph (the node's `algorithm` param).
        why_not: `(node) -> str | None`: None if it can compute this conv_general node,
            else why not (shown when a user forced it).
        lower: `(builder, node, new_args) -> Node`: the node's replacement, of its type.
    """

    name: str
    why_not: Callable[[Apply], str | None]
    lower: Callable[[Builder, Apply, list], Node]


def _always(node: Apply) -> None:
    return None


def _record(name: str):
    """A lowering that keeps the node and records `name` as its algorithm (the backend's
    kernel reads it)."""

    def lower(b: Builder, node: Apply, args: list) -> Node:
        return b.apply(conv_general_p, args, {**node.params, "algorithm": name}, node.source)

    return lower


# --- the 1x1 convolution as one GEMM -----------------------------------------------------------


def _pointwise_why_not(node: Apply) -> str | None:
    p = node.params
    ksp = node.args[1].shape[2:]
    nd = len(ksp)
    if any(k != 1 for k in ksp):
        return "the kernel is not 1x1"
    if p["window_strides"] != (1,) * nd or p["lhs_dilation"] != (1,) * nd:
        return "it is strided or input-dilated"
    if any(pair != (0, 0) for pair in p["padding"]):
        return "it is padded"
    # (grouped: the broadcast kernel would be copied to fold groups into the batch; the
    # NumPy kernel's own pointwise path does that case in one batched matmul)
    if p["feature_group_count"] != 1:
        return "it is grouped"
    return None


def _pointwise_as_dot(b: Builder, node: Apply, args: list) -> Node:
    """out[n, o, s] = sum_c w[o, c] x[n, c, s]: a batched GEMM (O, C) @ (C, S) per image.

    The kernel is broadcast over the batch (a view, no copy), so the GEMM writes the
    (N, O, S) result in place, exactly as the NumPy kernel's pointwise path does.
    """
    x, w = args
    N, C = x.type.shape[:2]
    O = w.type.shape[0]
    P = math.prod(x.type.shape[2:])
    src = node.source
    x3 = b.apply(reshape_p, [x], {"shape": (N, C, P)}, src)
    w2 = b.apply(reshape_p, [w], {"shape": (O, C)}, src)
    wb = b.apply(broadcast_to_p, [w2], {"shape": (N, O, C)}, src)
    y = b.apply(dot_general_p, [wb, x3], {"dimension_numbers": (((2,), (1,)), ((0,), (0,)))}, src)
    return b.apply(reshape_p, [y], {"shape": node.type.shape}, src)


# --- the tables -----------------------------------------------------------------------------------

def _lower_new(b: Builder, params: dict, args: list, source) -> Node:
    """A conv_general node that a rewrite emits (the passes of a separable kernel), lowered
    in turn by the same choice as every other."""
    node = b.apply(conv_general_p, args, params, source)
    return choose(node).lower(b, node, list(node.args))


DIRECT = Algorithm("direct", _always, _record("direct"))
IM2COL = Algorithm("im2col", _always, _record("im2col"))
POINTWISE_AS_DOT = Algorithm("pointwise_as_dot", _pointwise_why_not, _pointwise_as_dot)
SEPARABLE = Algorithm("separable", separable.why_not,
                      lambda b, node, args: separable.lower(b, node, args, _lower_new))
# "auto" factors a constant kernel only where the two passes cost fewer multiplications
SEPARABLE_IF_CHEAPER = attrs.evolve(SEPARABLE, why_not=separable.why_not_cheaper)

# what a user may force: every name ops/conv.py's ALGORITHMS accepts, "auto" aside (tested)
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (DIRECT, IM2COL, SEPARABLE)}

# what "auto" may choose, best first; IM2COL computes every convolution, so it ends the list.
# SEPARABLE applies only where it saves multiplications (a constant kernel of low rank).
AUTO: tuple[Algorithm, ...] = (POINTWISE_AS_DOT, SEPARABLE_IF_CHEAPER, IM2COL)


def _where(node: Apply) -> str:
    x, w = node.args
    at = f" (built at {node.source})" if node.source else ""
    return f"conv_general({x.type.short()}, {w.type.short()}){at}"


def choose(node: Apply) -> Algorithm:
    """The algorithm for one conv_general node: the forced one, or the first of AUTO that
    applies. Raises ArgumentError when the forced one cannot compute it."""
    name = node.params.get("algorithm", "auto")
    if name == "auto":
        return next(a for a in AUTO if a.why_not(node) is None)
    algo = ALGORITHMS.get(name)
    if algo is None:
        raise ArgumentError(f"{_where(node)}: algorithm={name!r} has no lowering in "
                            f"funconv/passes/conv.py; use one of {tuple(ALGORITHMS)} or 'auto'")
    reason = algo.why_not(node)
    if reason is not None:
        raise ArgumentError(f"{_where(node)}: algorithm={name!r} cannot compute this "
                            f"convolution: {reason}; use algorithm='auto'")
    return algo


def _rule(b: Builder, node: Apply, args: list) -> Node | None:
    if node.prim is not conv_general_p:
        return None
    return choose(node).lower(b, node, args)


def lower_convolutions(graph: Graph, stats: dict | None = None) -> Graph:
    """Choose (and record, or rewrite to) the algorithm of every conv_general node.

    Run once, after simplification: it never undoes its own choices (a chosen node
    keeps its algorithm when lowered again), and its rewrites need no more folding.
    """
    return rewrite(graph, _rule, "lower_convolutions", stats)

