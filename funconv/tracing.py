"""Interpreters: eager evaluation and graph-building traces, chosen by a ContextVar.

`bind(prim, args, params)` sends every primitive application to the current
interpreter. Eager: call the kernel for `prim` now (`kernel(prim)`: a backend's fast
kernel, else `prim.impl`). Trace: build (and intern) an `Apply`
node, and compute its value too when every operand's value is known (outside
`jit`, so Python control flow on values works under `grad`).

`eval_graph` evaluates a graph through the current interpreter, so evaluating
a graph inside another trace inlines it: that is how `jit(grad(f))`,
`grad(jit(f))` and `grad(grad(f))` compose.

An Array from an enclosing (still active) trace used inside an inner trace is
*captured* as an extra Input of the inner graph; an Array from a finished trace
is a leaked tracer and an error. staging.py traces a whole function into a Graph.
Imports types, ir, errors, array: nothing outside the core.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import numpy as np

from funconv.array import Array, _readonly
from funconv.errors import TracerLeakError, user_line
from funconv.ir import Apply, Const, Graph, Input, Interner, Literal, Node
from funconv.types import ArrayType

# Fast kernels for concrete evaluation, keyed by primitive, each with its impl's signature
# `(*np.ndarray, **params) -> np.ndarray`. The core never imports a backend: the NumPy
# backend fills this table when `funconv` is imported (dependency inversion, as JAX's
# `register_lowering`). A primitive without an entry runs its reference `impl`.
EAGER_KERNELS: dict = {}

# The user line that new nodes are attributed to while a transformation replays or
# differentiates nodes it already has (jit inlining a graph, grad running VJP rules): the
# line of the node being replayed, not the line that called the transformation.
_source: ContextVar = ContextVar("funconv_source", default=None)


@contextlib.contextmanager
def source_of(line: str | None):
    """Attribute the nodes built inside to `line` (when given)."""
    token = _source.set(line or _source.get())
    try:
        yield
    finally:
        _source.reset(token)


def _node_source() -> str | None:
    return _source.get() or user_line()


def labelled(label: str):
    """Attribute the nodes built inside to the current line with " (label)" appended: a VJP
    rule names the derivative it builds ("input gradient"), which the printed graph, the
    profile and the convolution plans then show."""
    line = _node_source()
    return source_of(f"{line} ({label})" if line else None)


def kernel(prim):
    """The function that evaluates `prim` on concrete values (fast kernel, else its impl)."""
    return EAGER_KERNELS.get(prim, prim.impl)


class Eager:
    """Evaluate primitives immediately on concrete values."""

    depth = 0

    def apply(self, prim, args, params):
        vals = []
        for a in args:
            if a._value is None:
                raise TracerLeakError(
                    f"{prim.name}: an abstract traced value ({a.aval.short()}) was used outside "
                    "the transformation that created it; return it from the function instead "
                    "of storing it in a global or a closure")
            vals.append(a._value)
        prim.shape_rule(*[a.aval for a in args], **params)
        return Array._from_value(kernel(prim)(*vals, **params))

    def literal(self, value, dtype) -> Array:
        return Array._from_value(np.asarray(value, dtype))

    def ancestors(self):
        return ()


EAGER = Eager()
_current: ContextVar = ContextVar("funconv_interpreter", default=EAGER)


def current():
    return _current.get()


def bind(prim, args, params):
    return _current.get().apply(prim, args, params)


class Trace:
    """Builds a graph. Values are carried along while they are known."""

    def __init__(self, parent=None):
        self.parent = parent if parent is not None else _current.get()
        self.depth = self.parent.depth + 1
        self.interner = Interner()
        self.values: dict[Node, np.ndarray] = {}
        self.inputs: list[Input] = []
        self.captured: list[tuple[Array, Input]] = []  # (outer array, inner input)
        self._captured_ids: dict[int, Input] = {}
        self.active = False

    # -- entering and leaving --------------------------------------------------
    @contextlib.contextmanager
    def activate(self):
        token = _current.set(self)
        self.active = True
        try:
            yield self
        finally:
            _current.reset(token)
            self.active = False

    def ancestors(self):
        p = self.parent
        while isinstance(p, Trace):
            yield p
            p = p.parent

    # -- nodes -------------------------------------------------------------------
    def new_input(self, aval: ArrayType, value: np.ndarray | None = None, name: str = "") -> Array:
        node = Input(aval, name)
        self.inputs.append(node)
        if value is not None:
            self.values[node] = value
        return Array._traced(node, self)

    def input_like(self, x: Array, name: str = "") -> Array:
        """A new input with x's type, carrying x's value when it is known."""
        return self.new_input(x.aval, x._concrete_value(), name)

    def wrap(self, node: Node) -> Array:
        return Array._traced(node, self)

    def to_node(self, x: Array) -> Node:
        t = x._trace
        if t is self:
            return x._node
        if t is None:
            node = self.interner.const(x._value)
            self.values[node] = x._value
            return node
        if t.active and t in set(self.ancestors()):
            node = self._captured_ids.get(id(x))
            if node is None:
                node = Input(x.aval, "")
                self._captured_ids[id(x)] = node
                self.captured.append((x, node))
                v = x._concrete_value()
                if v is not None:
                    self.values[node] = v
            return node
        raise TracerLeakError(
            f"a traced value {x.aval.short()} from a finished transformation was used here; "
            "it leaked out of the function that was traced (a global, an attribute or a "
            "closure kept it). Pass it as an argument or return it instead")

    def literal(self, value, dtype) -> Array:
        node = self.interner.literal(value, dtype)
        if node not in self.values:
            self.values[node] = np.asarray(node.value, node.dtype)
        return Array._traced(node, self)

    def apply(self, prim, args, params):
        nodes = [self.to_node(a) for a in args]
        node = self.interner.apply(prim, nodes, params, _node_source)
        if node not in self.values:
            vals = [self.values.get(n) for n in nodes]
            if all(v is not None for v in vals):
                self.values[node] = _readonly(np.asarray(kernel(prim)(*vals, **params)))
        return Array._traced(node, self)

    def graph(self, outputs: list[Array], in_tree=None, out_tree=None) -> Graph:
        """The graph from this trace's explicit + captured inputs to `outputs`."""
        out_nodes = tuple(self.to_node(o) for o in outputs)
        inputs = tuple(self.inputs) + tuple(n for _, n in self.captured)
        return Graph(inputs, out_nodes, in_tree, out_tree)


def eval_graph(graph: Graph, args, known: dict | None = None) -> list[Array]:
    """Evaluate `graph` on Arrays `args` through the current interpreter.

    `args` cover `graph.inputs` in order. `known` maps nodes to values computed
    while tracing with these same arguments; eager evaluation reuses them and
    computes only the nodes the outputs still need.
    """
    interp = _current.get()
    if interp is not EAGER:
        known = None
    env: dict[int, Array] = {}
    for inp, a in zip(graph.inputs, args):
        env[id(inp)] = a
    for node in (graph.nodes() if known is None else _needed(graph.outputs, env, known)):
        if id(node) in env:
            continue
        if known is not None and node in known:
            env[id(node)] = Array._from_value(known[node])
        elif isinstance(node, Apply):
            ins = [env[id(a)] for a in node.args]
            if interp is EAGER and all(a._value is not None for a in ins):
                # the graph was type-checked when it was built: call the impl directly
                env[id(node)] = Array._from_value(kernel(node.prim)(*[a._value for a in ins], **node.params))
            else:
                token = _source.set(node.source or _source.get())  # (inlined: keep its line)
                try:
                    env[id(node)] = interp.apply(node.prim, ins, node.params)
                finally:
                    _source.reset(token)
        elif isinstance(node, Literal):
            env[id(node)] = interp.literal(node.value, node.dtype)
        elif isinstance(node, Const):
            env[id(node)] = Array._from_value(node.value)
        else:
            raise TypeError(f"graph input {node} was not given a value")
    return [env[id(o)] for o in graph.outputs]


def _needed(outputs, env: dict, known: dict) -> list[Node]:
    """The nodes `outputs` depend on, in evaluation order, not looking past nodes
    whose values are already at hand (in `env` or `known`)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                if id(node) in env or node in known or not isinstance(node, Apply):
                    order.append(node)
                else:
                    stack.append((node, True))
                    stack.extend((a, False) for a in reversed(node.args) if id(a) not in seen)
    return order
