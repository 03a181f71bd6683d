"""Reverse-mode differentiation as a graph transformation.

`vjp` traces `f` into a graph, then walks it backwards calling each
primitive's VJP rule *inside the same trace*: the rules are written in
funconv ops, so the backward pass is itself a graph (interned with the
forward nodes), differentiable again and compilable. The result is evaluated
through the current interpreter, so it inlines under an outer trace (that is
how `grad(grad(f))` and `jit(grad(f))` work). Forward values computed while
tracing are reused by eager evaluation, so eager `grad` runs the forward once.

Imports tracing, ir, tree, ops.
"""

from __future__ import annotations

import numpy as np

from funconv import tree as tree_util
from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ir import Apply, Graph, Node, toposort
from funconv.ops._core import asarray, describe
from funconv.primitive import Primitive
from funconv.tracing import Trace, eval_graph
from funconv.types import ArrayType, is_inexact

# --- stop_gradient ------------------------------------------------------------------

stop_gradient_p = Primitive("stop_gradient", lambda x: x, lambda x: x, lambda ct, out, x: (None,))


def stop_gradient(x):
    """The identity, with a zero derivative (leafwise over a pytree)."""
    return tree_util.map(lambda a: stop_gradient_p(asarray(a)), x)


# --- the backward pass ------------------------------------------------------------------


def backward_pass(trace: Trace, outputs: list[Node], cts: list[Array | None],
                  wrt: list[Node]) -> list[Array | None]:
    """Cotangents of `wrt` given cotangents `cts` of `outputs`, built in `trace`.

    Only nodes that depend on `wrt` are differentiated; integer and bool
    values carry no cotangent. Returns None for a `wrt` node with zero cotangent.
    """
    order = toposort(outputs)
    wrt_ids = {id(n) for n in wrt}
    live: set[int] = set()
    for node in order:
        if id(node) in wrt_ids or (isinstance(node, Apply) and node.prim.differentiable
                                   and any(id(a) in live for a in node.args)):
            if is_inexact(node.dtype):
                live.add(id(node))
    ct_map: dict[int, Array] = {}

    def accumulate(node: Node, ct: Array):
        prev = ct_map.get(id(node))
        ct_map[id(node)] = ct if prev is None else prev + ct

    for o, c in zip(outputs, cts):
        if c is not None and id(o) in live:
            accumulate(o, c)
    for node in reversed(order):
        if not isinstance(node, Apply):
            continue
        ct = ct_map.pop(id(node), None) if id(node) not in wrt_ids else ct_map.get(id(node))
        if ct is None:
            continue
        prim = node.prim
        if prim.vjp is None:
            raise NotImplementedError(f"differentiation of {prim.name} is not implemented")
        in_cts = prim.vjp(ct, trace.wrap(node), *[trace.wrap(a) for a in node.args], **node.params)
        for a, c in zip(node.args, in_cts):
            if c is None or id(a) not in live:
                continue
            if c.shape != a.shape or c.dtype != a.dtype:
                raise AssertionError(f"VJP rule of {prim.name} returned {c.aval.short()} for an "
                                     f"operand of type {a.type.short()}")
            accumulate(a, c)
    return [ct_map.get(id(n)) for n in wrt]


# --- vjp ------------------------------------------------------------------------------------


def _diff_leaf(x, where: str) -> Array:
    if isinstance(x, (np.ndarray, np.generic, Array, float, int, complex, list)) and not isinstance(x, str):
        try:
            a = asarray(x)
        except ArgumentError:
            a = None
        if a is not None:
            if not is_inexact(a.dtype):
                raise DTypeError(f"{where} has dtype {a.aval.short()}: only float (or complex) "
                                 "values can be differentiated; convert it with "
                                 ".astype(fc.float32), or move it out of argnums")
            return a
    raise ArgumentError(f"{where} is {describe(x)}, which cannot be differentiated; "
                        "pass arrays (or pytrees of arrays), or move it out of argnums")


class _VJP:
    """Holds a traced forward pass; builds the backward graph on first use."""

    def __init__(self, trace, primals, in_tree, out_nodes, out_tree):
        self.trace = trace
        self.primals = primals
        self.in_tree = in_tree
        self.out_nodes = out_nodes
        self.out_tree = out_tree
        self.graph: Graph | None = None

    def args(self):
        return list(self.primals) + [outer for outer, _ in self.trace.captured]

    def backward_graph(self) -> Graph:
        if self.graph is None:
            t = self.trace
            explicit = list(t.inputs)
            with t.activate():
                ct_in = [t.new_input(n.type, name=f"ct{i}") for i, n in enumerate(self.out_nodes)]
                cts = backward_pass(t, list(self.out_nodes), ct_in, explicit)
                zeros = []
                for n, c in zip(explicit, cts):
                    zeros.append(t.to_node(c) if c is not None else
                                 t.to_node(_zeros(n.type)))
            inputs = tuple(explicit) + tuple(n for _, n in t.captured) + tuple(c._node for c in ct_in)
            self.graph = Graph(inputs, tuple(zeros))
        return self.graph

    def __call__(self, ct):
        ct_leaves, ct_tree = tree_util.flatten(ct)
        if ct_tree != self.out_tree:
            raise ShapeError(f"vjp: the cotangent's structure {ct_tree} differs from the output's "
                             f"{self.out_tree}")
        cts = []
        for i, (c, n) in enumerate(zip(ct_leaves, self.out_nodes)):
            c = asarray(c)
            if c.shape != n.type.shape:
                raise ShapeError(f"vjp: cotangent {i} has type {c.aval.short()}, the output is "
                                 f"{n.type.short()}; pass a cotangent of the output's shape")
            if c.dtype != n.type.dtype:
                c = c.astype(n.type.dtype)
            cts.append(c)
        g = self.backward_graph()
        # the captured list may have grown while the rules ran (they capture nothing new, but
        # be exact: pass what the graph's inputs need)
        res = eval_graph(g, self.args() + cts, self.trace.values)
        flat = tree_util.unflatten(self.in_tree, res)
        return tuple(flat)


def _zeros(t: ArrayType) -> Array:
    from funconv.ops.creation import zeros

    return zeros(t.shape, t.dtype)


def vjp(f, *primals, has_aux: bool = False):
    """`(out, f_vjp)` with `f_vjp(ct)` returning one cotangent per primal (as JAX).

    With `has_aux=True`, `f` returns `(out, aux)` and vjp returns `(out, f_vjp, aux)`.
    """
    leaves, in_tree = tree_util.flatten(primals)
    arrays = [_diff_leaf(x, f"argument {i} of vjp") for i, x in enumerate(leaves)]
    trace = Trace()
    with trace.activate():
        ins = [trace.input_like(a, f"x{i}") for i, a in enumerate(arrays)]
        res = f(*tree_util.unflatten(in_tree, ins))
        if has_aux:
            if not (isinstance(res, tuple) and len(res) == 2):
                raise ArgumentError("has_aux=True: the function must return a pair (output, aux)")
            res, aux = res
        out_leaves, out_tree = tree_util.flatten(res)
        out_arrays = [asarray(o) for o in out_leaves]
        aux_leaves, aux_tree = tree_util.flatten(aux) if has_aux else ([], None)
        aux_arrays = [asarray(a) for a in aux_leaves]
    fwd = trace.graph(out_arrays + aux_arrays)
    out_nodes = fwd.outputs[:len(out_arrays)]
    vals = eval_graph(fwd, arrays + [outer for outer, _ in trace.captured], trace.values)
    out = tree_util.unflatten(out_tree, vals[:len(out_arrays)])
    f_vjp = _VJP(trace, arrays, in_tree, out_nodes, out_tree)
    if has_aux:
        return out, f_vjp, tree_util.unflatten(aux_tree, vals[len(out_arrays):])
    return out, f_vjp


# --- grad --------------------------------------------------------------------------------------


def _argnums_tuple(argnums, nargs: int, fname: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise ArgumentError(f"{fname}: argnums={argnums} but the function was called with "
                                f"{nargs} positional argument(s)")
    return tuple(a % nargs for a in nums)


def value_and_grad(f, argnums=0, has_aux: bool = False):
    """`(value, grad)` of a scalar-output `f`; with aux: `((value, aux), grad)` (as JAX)."""

    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "grad")

        def f_partial(*dargs):
            full = list(args)
            for i, d in zip(nums, dargs):
                full[i] = d
            return f(*full, **kwargs)

        for i in nums:
            for leaf in tree_util.leaves(args[i]):
                _diff_leaf(leaf, f"grad: argument {i}")
        res = vjp(f_partial, *[args[i] for i in nums], has_aux=has_aux)
        out, f_vjp = res[0], res[1]
        if not isinstance(out, Array) or out.shape != () or not is_inexact(out.dtype) \
                or out.dtype.kind == "c":
            what = out.aval.short() if isinstance(out, Array) else describe(out)
            raise ShapeError(f"grad: the function must return a real scalar, got {what}; "
                             "reduce it (e.g. .sum()), or use fc.vjp / fc.jacrev for "
                             "non-scalar outputs")
        cts = f_vjp(_ones_scalar(out.dtype))
        g = cts[0] if isinstance(argnums, int) else cts
        return ((out, res[2]), g) if has_aux else (out, g)

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def grad(f, argnums=0, has_aux: bool = False):
    """The gradient of a scalar-output `f` with respect to argument(s) `argnums`.

    Returns a function with `f`'s signature giving a pytree like the argument
    (a tuple of them for a tuple `argnums`); with `has_aux`, `(grad, aux)`.
    """
    vg = value_and_grad(f, argnums, has_aux)

    def grad_f(*args, **kwargs):
        (v, g) = vg(*args, **kwargs)
        return (g, v[1]) if has_aux else g

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return grad_f


def _ones_scalar(dtype) -> Array:
    from funconv.ops.creation import ones

    return ones((), dtype)  # a literal under a trace, so passes can fold it


# --- to be written (issue 3) ------------------------------------------------------------


def jvp(f, primals, tangents):
    raise NotImplementedError("fc.jvp is being written (issue 3)")


def hessian(f, argnums=0):
    raise NotImplementedError("fc.hessian is being written (issue 3)")


def jacrev(f, argnums=0):
    raise NotImplementedError("fc.jacrev is being written (issue 3)")


def jacfwd(f, argnums=0):
    raise NotImplementedError("fc.jacfwd is being written (issue 3)")


def custom_vjp(fun):
    raise NotImplementedError("fc.custom_vjp is being written (issue 3)")
