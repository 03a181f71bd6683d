"""The IR: typed nodes (Input, Literal, Const, Apply) and the Graph over them.

Nodes compare by identity (`eq=False`): structural `__eq__` on a DAG is
exponential. `Apply` nodes are interned per trace (see tracing.py), which gives
common-subexpression elimination for free. Use `structurally_equal` in tests.
Imports types only (primitives are referenced, not imported); `Graph.__call__`
evaluates through tracing, imported lazily.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from funconv.types import ArrayType


@attrs.frozen(eq=False)
class Node:
    type: ArrayType

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype


@attrs.frozen(eq=False)
class Input(Node):
    """A graph parameter; `name` is for printing only."""

    name: str = ""


@attrs.frozen(eq=False)
class Literal(Node):
    """A Python scalar of a fixed dtype (shape ())."""

    value: Any = 0


@attrs.frozen(eq=False)
class Const(Node):
    """A concrete array captured from outside the trace (read-only)."""

    value: np.ndarray = attrs.field(default=None, repr=False)


@attrs.frozen(eq=False)
class Apply(Node):
    """`prim(*args, **params)`; `source` is the user's `file:line` that built it."""

    prim: Any = None
    args: tuple[Node, ...] = ()
    params: dict = attrs.field(factory=dict)
    source: str | None = None


def params_key(params: dict) -> tuple:
    """A hashable key for a params dict (values must be hashable)."""
    return tuple(sorted(params.items()))


class Interner:
    """Creates the nodes of one graph, one node per distinct expression.

    The single interner of traces (tracing.Trace) and passes (passes.core.Builder):
    `Apply` nodes are keyed by `(primitive, argument identities, params)`, which is
    common-subexpression elimination for free; literals by dtype and bit pattern, so
    `0.0` and `-0.0`, `1` as int32 and as float32, and NaN (equal to itself here) stay
    distinct or merge exactly as IEEE values do; constants by the identity of their array.
    """

    def __init__(self):
        self._applies: dict = {}
        self._literals: dict = {}
        self._consts: dict[int, Const] = {}
        self._held: list = []  # the constants' arrays, kept alive so their ids stay unique

    def apply(self, prim, args, params: dict, source=None) -> Apply:
        """The node `prim(*args, **params)`, typed by its shape rule. `source` is the user's
        line, or a function returning it (called only when the node is new)."""
        key = (prim, tuple(map(id, args)), params_key(params))
        node = self._applies.get(key)
        if node is None:
            out_type = prim.shape_rule(*[a.type for a in args], **params)
            node = Apply(out_type, prim, tuple(args), dict(params),
                         source() if callable(source) else source)
            self._applies[key] = node
        return node

    def literal(self, value, dtype) -> Literal:
        """The scalar literal `value` converted to `dtype`."""
        v = np.asarray(value, dtype)
        key = (v.dtype, v.tobytes())
        node = self._literals.get(key)
        if node is None:
            node = self._literals[key] = Literal(ArrayType((), v.dtype), v[()].item())
        return node

    def const(self, value: np.ndarray, node: Const | None = None) -> Const:
        """The constant holding array `value` (`node`, when given, is an existing Const of it)."""
        hit = self._consts.get(id(value))
        if hit is None:
            hit = node if node is not None else Const(ArrayType(value.shape, value.dtype), value)
            self._consts[id(value)] = hit
            self._held.append(value)
        return hit


def toposort(outputs) -> list[Node]:
    """All nodes reachable from `outputs`, each after its arguments (iterative DFS)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            if isinstance(node, Apply):
                for a in reversed(node.args):
                    if id(a) not in seen:
                        stack.append((a, False))
    return order


@attrs.define(eq=False)
class Graph:
    """A function as a DAG: `inputs` (Input nodes) and `outputs` (any nodes).

    `in_tree`/`out_tree` (pytree structures) are set by the transformation that
    traced it, so the graph can be called with and return pytrees.
    """

    inputs: tuple[Input, ...]
    outputs: tuple[Node, ...]
    in_tree: Any = None
    out_tree: Any = None
    _nodes: list | None = attrs.field(default=None, repr=False)

    def nodes(self) -> list[Node]:
        """Every node reachable from the outputs, in evaluation order (cached)."""
        if self._nodes is None:
            self._nodes = toposort(self.outputs)
        return self._nodes

    def applies(self) -> list[Apply]:
        return [n for n in self.nodes() if isinstance(n, Apply)]

    def __call__(self, *args):
        """Evaluate through the current interpreter (inlines under an outer trace)."""
        from funconv.tracing import eval_graph

        return eval_graph(self, args)

    def names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for i, n in enumerate(self.inputs):
            names[id(n)] = n.name or f"in{i}"
        k = 0
        for n in self.nodes():
            if id(n) not in names and not isinstance(n, Literal):
                names[id(n)] = _letters(k)
                k += 1
        return names

    def __str__(self) -> str:
        names = self.names()

        def ref(n: Node) -> str:
            if isinstance(n, Literal):
                return f"{n.value!r}:{n.type.short()}"
            return names[id(n)]

        sig = ", ".join(f"{names[id(i)]}: {i.type.short()}" for i in self.inputs)
        outs = ", ".join(o.type.short() for o in self.outputs)
        lines = [f"graph({sig}) -> ({outs}) {{"]
        for n in self.nodes():
            if isinstance(n, Const):
                lines.append(f"  {names[id(n)]}: {n.type.short()} = const")
            elif isinstance(n, Apply):
                params = " ".join(f"{k}={_fmt(v)}" for k, v in n.params.items())
                call = f"{n.prim.name}({', '.join(ref(a) for a in n.args)})"
                text = f"  {names[id(n)]}: {n.type.short()} = {call}" + (f" {params}" if params else "")
                if n.source:
                    text = f"{text:<60}  # {n.source}"
                lines.append(text)
        lines.append(f"  return {', '.join(ref(o) for o in self.outputs)}")
        lines.append("}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Graphviz DOT text of the graph."""
        names = self.names()
        out = ["digraph funconv {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
        ids = {}
        for k, n in enumerate(self.nodes()):
            ids[id(n)] = f"n{k}"
            if isinstance(n, Input):
                label, shape = f"{names[id(n)]}: {n.type.short()}", "ellipse"
            elif isinstance(n, Literal):
                label, shape = f"{n.value!r}: {n.type.short()}", "plaintext"
            elif isinstance(n, Const):
                label, shape = f"const {n.type.short()}", "note"
            else:
                label, shape = f"{names[id(n)]} = {n.prim.name}\\n{n.type.short()}", "box"
            label = label.replace('"', '\\"')
            out.append(f'  n{k} [label="{label}", shape={shape}];')
        for n in self.nodes():
            if isinstance(n, Apply):
                for a in n.args:
                    out.append(f"  {ids[id(a)]} -> {ids[id(n)]};")
        for j, o in enumerate(self.outputs):
            out.append(f'  out{j} [label="out{j}", shape=ellipse];')
            out.append(f"  {ids[id(o)]} -> out{j};")
        out.append("}")
        return "\n".join(out)


def _letters(k: int) -> str:
    s = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        s = chr(97 + r) + s
    return s


def _fmt(v) -> str:
    if isinstance(v, np.dtype):
        return str(v)
    return repr(v)


def structurally_equal(a: Node, b: Node, _memo: dict | None = None) -> bool:
    """Do two nodes compute the same expression? Memoised, linear in DAG size."""
    memo = {} if _memo is None else _memo
    key = (id(a), id(b))
    if key in memo:
        return memo[key]
    if a is b:
        r = True
    elif type(a) is not type(b) or a.type != b.type:
        r = False
    elif isinstance(a, Input):
        r = False  # distinct inputs are distinct variables
    elif isinstance(a, Literal):
        r = a.value == b.value
    elif isinstance(a, Const):
        r = np.array_equal(a.value, b.value)
    else:
        r = (a.prim is b.prim and params_key(a.params) == params_key(b.params)
             and len(a.args) == len(b.args)
             and all(structurally_equal(x, y, memo) for x, y in zip(a.args, b.args)))
    memo[key] = r
    return r
