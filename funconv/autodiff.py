"""Differentiation as a graph transformation: vjp, grad, jvp, Jacobians, custom rules.

`vjp` traces `f` into a graph, then walks it backwards calling each
primitive's VJP rule *inside the same trace*: the rules are written in
funconv ops, so the backward pass is itself a graph (interned with the
forward nodes), differentiable again and compilable. The result is evaluated
through the current interpreter, so it inlines under an outer trace (that is
how `grad(grad(f))` and `jit(grad(f))` work). Forward values computed while
tracing are reused by eager evaluation, so eager `grad` runs the forward once.

Forward mode needs no rules of its own: the backward graph u -> J^T u is
linear in `u`, so its own backward pass, seeded with a tangent v, gives J v
(the double-VJP trick, run in the same trace so forward values are reused;
`_VJP.jvp_graph`). `jvp`, `jacfwd` and `hessian` (forward over reverse) are
built on it; `jacrev` applies one VJP per output element.

`custom_vjp` runs the user's `fwd` under a trace and marks each output with a
`custom_vjp_call` node: the identity on its first operand, whose VJP rule
calls the user's `bwd`. That primitive and `stop_gradient` are defined in
ops/special.py, as every primitive is in ops/.

Imports tracing, ir, tree, ops.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from funconv import tree as tree_util
from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ir import Apply, Graph, Node, toposort
from funconv.ops._core import asarray, describe
from funconv.ops.special import _CustomRule, custom_vjp_call_p, stop_gradient  # noqa: F401 (public)
from funconv.tracing import Trace, current, eval_graph, source_of
from funconv.types import ArrayType, is_inexact

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
        with source_of(node.source):  # the backward nodes carry their forward node's line
            in_cts = prim.vjp(ct, trace.wrap(node), *[trace.wrap(a) for a in node.args],
                              **node.params)
            for a, c in zip(node.args, in_cts):
                if c is None or id(a) not in live:
                    continue
                if c.shape != a.shape or c.dtype != a.dtype:
                    raise AssertionError(f"VJP rule of {prim.name} returned {c.aval.short()} for "
                                         f"an operand of type {a.type.short()}")
                accumulate(a, c)
    return [ct_map.get(id(n)) for n in wrt]


# --- vjp ------------------------------------------------------------------------------------


def _diff_leaf(x, where: str) -> Array:
    """`x` as an Array that can be differentiated, or an error naming `where`."""
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


def _leaf_paths(x, path: str = ""):
    """`(path, leaf)` pairs of a pytree in flatten order; paths like `['w'][0]`."""
    kind, _ = tree_util._node_kind(x)
    if kind is None:
        yield path, x
    elif kind is not type(None):
        _, _, children, labels = tree_util._keyed_children(x)
        for label, child in zip(labels, children):
            yield from _leaf_paths(child, path + label)


def _diff_leaves(primals, names, fname: str) -> list[Array]:
    """All leaves of `primals` as differentiable Arrays; errors name the argument and path."""
    arrays = []
    for p, name in zip(primals, names):
        for path, leaf in _leaf_paths(p):
            arrays.append(_diff_leaf(leaf, f"{fname}: argument {name}{path}"))
    return arrays


class _VJP:
    """Holds a traced forward pass; builds the backward graph on first use.

    The graph (primals, captured, cotangents) -> input cotangents is built once
    with abstract cotangents and evaluated per call; eagerly, the evaluation
    reuses the forward values computed while tracing. `jvp_graph` transposes
    it, in the same trace, for forward mode.
    """

    def __init__(self, trace, primals, in_tree, out_nodes, out_tree):
        self.trace = trace
        self.primals = primals
        self.in_tree = in_tree
        self.out_nodes = out_nodes
        self.out_tree = out_tree
        self.n_inputs = len(trace.inputs)  # the primals' inputs (cotangent inputs come later)
        self.graph: Graph | None = None
        self._jvp_graph: Graph | None = None

    def _eval(self, graph: Graph, extra: list[Array]) -> list[Array]:
        """Evaluate one of the derived graphs: (primals, captured, extra) -> outputs."""
        n_captured = len(graph.inputs) - self.n_inputs - len(extra)
        captured = [outer for outer, _ in self.trace.captured[:n_captured]]
        return eval_graph(graph, list(self.primals) + captured + list(extra), self.trace.values)

    def _derive(self, seeds: list[Node], seed_types, wrt: list[Node], name: str) -> Graph:
        """In the trace: new inputs for the seeds' cotangents, then the backward pass from
        `seeds` to `wrt`, as a graph (primals, captured, new inputs) -> cotangents of `wrt`."""
        t = self.trace
        with t.activate():
            ct_in = [t.new_input(ty, name=f"{name}{i}") for i, ty in enumerate(seed_types)]
            cts = backward_pass(t, seeds, ct_in, wrt)
            outs = [t.to_node(c if c is not None else _zeros(n.type)) for n, c in zip(wrt, cts)]
        inputs = (tuple(t.inputs[:self.n_inputs]) + tuple(n for _, n in t.captured)
                  + tuple(c._node for c in ct_in))
        return Graph(inputs, tuple(outs))

    def backward_graph(self) -> Graph:
        """The backward pass: (primals, captured, cotangents) -> input cotangents (J^T u)."""
        if self.graph is None:
            self.graph = self._derive(list(self.out_nodes), [n.type for n in self.out_nodes],
                                      self.trace.inputs[:self.n_inputs], "ct")
        return self.graph

    def jvp_graph(self) -> Graph:
        """Forward mode: (primals, captured, tangents) -> output tangents (J v).

        The backward graph is linear in its cotangent inputs, so its own backward
        pass, seeded with the tangents, gives J v: the double-VJP trick, done in
        this trace, so the forward values are reused rather than traced again.
        """
        if self._jvp_graph is None:
            bw = self.backward_graph()
            ct_nodes = list(bw.inputs[len(bw.inputs) - len(self.out_nodes):])
            self._jvp_graph = self._derive(list(bw.outputs), [n.type for n in bw.outputs],
                                           ct_nodes, "t")
        return self._jvp_graph

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
        res = self._eval(self.backward_graph(), cts)
        return tuple(tree_util.unflatten(self.in_tree, res))


def _zeros(t: ArrayType) -> Array:
    from funconv.ops.creation import zeros

    return zeros(t.shape, t.dtype)


def vjp(f, *primals, has_aux: bool = False):
    """Reverse mode: `(out, f_vjp)` with `f_vjp(ct)` giving one cotangent per primal (as JAX).

    Args:
        f: a function of arrays (or pytrees of arrays) returning a pytree of arrays.
        *primals: the point to differentiate at; float (or complex) leaves only.
        has_aux: `f` returns `(out, aux)`; aux is returned, not differentiated.

    Returns:
        `(out, f_vjp)`, or `(out, f_vjp, aux)` with `has_aux`. `f_vjp(ct)` takes a
        cotangent shaped like `out` and returns a tuple with one cotangent per
        primal, each with that primal's pytree structure.
    """
    return _vjp(f, primals, has_aux, "vjp")


def _vjp(f, primals, has_aux: bool, fname: str, names=None):
    """`vjp` with the caller's name (and argument names) in error messages."""
    primals = tuple(primals)
    in_tree = tree_util.structure(primals)
    arrays = _diff_leaves(primals, names if names is not None else range(len(primals)), fname)
    trace = Trace()
    with trace.activate():
        ins = [trace.input_like(a, f"x{i}") for i, a in enumerate(arrays)]
        res = f(*tree_util.unflatten(in_tree, ins))
        if has_aux:
            if not (isinstance(res, tuple) and len(res) == 2):
                raise ArgumentError(f"{fname}: has_aux=True, so the function must return a pair "
                                    f"(output, aux), but it returned {describe(res)}")
            res, aux = res
        out_leaves, out_tree = tree_util.flatten(res)
        out_arrays = [_out_leaf(o, fname, has_aux) for o in out_leaves]
        aux_leaves, aux_tree = tree_util.flatten(aux) if has_aux else ([], None)
        # traced aux leaves leave through the graph; anything else (labels, numbers) as is
        aux_arrays = [a for a in aux_leaves if isinstance(a, Array)]
    fwd = trace.graph(out_arrays + aux_arrays)
    out_nodes = fwd.outputs[:len(out_arrays)]
    vals = eval_graph(fwd, arrays + [outer for outer, _ in trace.captured], trace.values)
    out = tree_util.unflatten(out_tree, vals[:len(out_arrays)])
    f_vjp = _VJP(trace, arrays, in_tree, out_nodes, out_tree)
    if has_aux:
        it = iter(vals[len(out_arrays):])
        aux = [next(it) if isinstance(a, Array) else a for a in aux_leaves]
        return out, f_vjp, tree_util.unflatten(aux_tree, aux)
    return out, f_vjp


def _out_leaf(o, fname: str, has_aux: bool) -> Array:
    """An output leaf as an Array, with a has_aux hint for the common mistake."""
    try:
        return asarray(o)
    except ArgumentError:
        hint = ("" if has_aux else "; if the function returns (output, aux), pass has_aux=True")
        raise ArgumentError(f"{fname}: the function returned {describe(o)} among its outputs, "
                            f"which is not an array{hint}") from None


# --- grad --------------------------------------------------------------------------------------


def _argnums_tuple(argnums, nargs: int, fname: str) -> tuple[int, ...]:
    """`argnums` (an int or a sequence of ints) as a tuple of non-negative ints."""
    nums = (argnums,) if isinstance(argnums, (int, np.integer)) else argnums
    if not isinstance(nums, (tuple, list)) or not nums or \
            not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in nums):
        raise ArgumentError(f"{fname}: argnums must be an int or a non-empty tuple of ints, "
                            f"got {argnums!r}")
    for a in nums:
        if not -nargs <= a < nargs:
            raise ArgumentError(f"{fname}: argnums={argnums} but the function was called with "
                                f"{nargs} positional argument(s); argnums counts positional "
                                "arguments from 0")
    return tuple(int(a) % nargs for a in nums)


def _partial(f, args, kwargs, nums):
    """`f` as a function of the arguments at positions `nums` only (the others fixed)."""

    def f_partial(*dargs):
        full = list(args)
        for i, d in zip(nums, dargs):
            full[i] = d
        return f(*full, **kwargs)

    return f_partial


def value_and_grad(f, argnums=0, has_aux: bool = False):
    """`(value, grad)` of a scalar-output `f`; with aux: `((value, aux), grad)` (as JAX).

    Args:
        f: a function returning a real scalar (or `(scalar, aux)` with `has_aux`).
        argnums: the positional argument(s) to differentiate: an int or a tuple.
        has_aux: `f` returns a pair `(scalar, aux)`; aux is passed through.

    Returns:
        A function with `f`'s signature. The gradient has the pytree structure
        of the argument (a tuple of them for a tuple `argnums`).
    """

    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "grad")
        res = _vjp(_partial(f, args, kwargs, nums), [args[i] for i in nums], has_aux, "grad", nums)
        out, f_vjp = res[0], res[1]
        if not isinstance(out, Array) or out.shape != () or not is_inexact(out.dtype) \
                or out.dtype.kind == "c":
            what = out.aval.short() if isinstance(out, Array) else describe(out)
            hint = ("reduce it (e.g. .sum()), or use fc.vjp / fc.jacrev for non-scalar outputs")
            if isinstance(out, tuple) and len(out) == 2 and not has_aux:
                hint = "if the function returns (loss, aux), pass has_aux=True"
            if isinstance(out, Array) and out.dtype.kind == "c":
                hint = "take a real part of it (fc.real, fc.abs, or abs(z)**2) first"
                raise DTypeError(f"grad: the function must return a real scalar, got {what}; {hint}")
            raise ShapeError(f"grad: the function must return a real scalar, got {what}; {hint}")
        cts = f_vjp(_ones_scalar(out.dtype))
        g = cts[0] if isinstance(argnums, (int, np.integer)) else cts
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


# --- jvp: the transpose of the (linear) VJP ---------------------------------------------------


def _linearize(f, primals, has_aux: bool, fname: str, names=None):
    """`(out, f_jvp[, aux])` where `f_jvp(tangents)` is J @ tangents (a tuple like `primals`).

    No forward-mode rules exist: the backward graph u -> J^T u is linear, and
    its transpose is J (`_VJP.jvp_graph`). Every pass is a graph, so this
    composes with every other transformation, and `f_jvp` can be called many
    times (jacfwd) while the graphs are built once.
    """
    res = _vjp(f, primals, has_aux, fname, names)
    f_vjp = res[1]

    def f_jvp(tangents):
        t_leaves = [asarray(t) for t in tree_util.leaves(tangents)]
        return tree_util.unflatten(f_vjp.out_tree, f_vjp._eval(f_vjp.jvp_graph(), t_leaves))

    return (res[0], f_jvp, res[2]) if has_aux else (res[0], f_jvp)


def _check_tangents(primals, tangents, fname: str) -> tuple:
    """Tangents as a tuple matching `primals` leaf for leaf (cast to the primal dtypes)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise ArgumentError(f"{fname}: primals and tangents must be tuples (or lists) with one "
                            f"entry per argument, as in fc.jvp(f, (x,), (v,)); got "
                            f"{describe(primals)} and {describe(tangents)}")
    if len(primals) != len(tangents):
        raise ArgumentError(f"{fname}: {len(primals)} primal(s) but {len(tangents)} tangent(s); "
                            "pass one tangent per primal")
    out = []
    for i, (p, t) in enumerate(zip(primals, tangents)):
        p_leaves, p_tree = tree_util.flatten(p)
        t_leaves, t_tree = tree_util.flatten(t)
        if p_tree != t_tree:
            raise ArgumentError(f"{fname}: tangent {i} has structure {t_tree}, its primal "
                                f"{p_tree}; give each tangent its primal's structure")
        cast = []
        for pl, tl in zip(p_leaves, t_leaves):
            pa, ta = asarray(pl), asarray(tl)
            if pa.shape != ta.shape:
                raise ShapeError(f"{fname}: tangent {i} has type {ta.aval.short()} where its "
                                 f"primal is {pa.aval.short()}; tangents need the primal's shape")
            cast.append(ta if ta.dtype == pa.dtype else ta.astype(pa.dtype))
        out.append(tree_util.unflatten(t_tree, cast))
    return tuple(out)


def jvp(f, primals, tangents, has_aux: bool = False):
    """Forward mode: `(f(*primals), J @ tangents)`, as `jax.jvp`.

    Args:
        f: a function of arrays (or pytrees of arrays).
        primals: a tuple (or list) of arguments: the point.
        tangents: a tuple (or list) like `primals`: the direction.
        has_aux: `f` returns `(out, aux)`; then `(out, tangent_out, aux)` is returned.

    Returns:
        `(out, tangent_out)` where `tangent_out` has the structure of `out`.
    """
    tangents = _check_tangents(primals, tangents, "jvp")
    res = _linearize(f, tuple(primals), has_aux, "jvp")
    t_out = res[1](tangents)
    return (res[0], t_out, res[2]) if has_aux else (res[0], t_out)


# --- Jacobians and the Hessian ----------------------------------------------------------------


def _stack(arrays: list[Array], axis: int, shape: tuple[int, ...]) -> Array:
    """Stack equal-shape arrays along a new `axis`, then reshape to `shape`."""
    from funconv.ops import reshape, stack

    return reshape(stack(arrays, axis=axis), shape)


def _basis(aval: ArrayType, k: int) -> Array:
    """The k-th unit vector of the space of `aval` (a constant)."""
    e = np.zeros(aval.size, aval.dtype)
    e[k] = 1
    return asarray(e.reshape(aval.shape))


def _real_float(leaves, fname: str, what: str):
    for i, x in enumerate(leaves):
        if not (is_inexact(x.dtype) and x.dtype.kind == "f"):
            raise DTypeError(f"{fname}: {what} {i} has type {x.aval.short()}; Jacobians are "
                             "defined here for real float values only")


def _jacobian(out_tree, out_leaves, in_struct, in_leaves, block, int_argnums: bool):
    """Assemble `block(j, i)` (out leaf j by input leaf i) as JAX does: the output's
    structure outside, the input's (one entry per argnum) inside."""
    rows = []
    for j in range(len(out_leaves)):
        inner = tree_util.unflatten(in_struct, [block(j, i) for i in range(len(in_leaves))])
        rows.append(inner[0] if int_argnums else inner)
    return tree_util.unflatten(out_tree, rows)


def jacrev(f, argnums=0, has_aux: bool = False):
    """The Jacobian of `f` by reverse mode: one VJP per output element (as `jax.jacrev`).

    Each leaf of the result has shape `out.shape + in.shape`; the result has the
    output's pytree structure, each entry the argument's structure (a tuple of
    them for a tuple `argnums`). With `has_aux`, returns `(jacobian, aux)`.
    """

    def jacfun(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "jacrev")
        primals = tuple(args[i] for i in nums)
        res = _vjp(_partial(f, args, kwargs, nums), primals, has_aux, "jacrev", nums)
        out, f_vjp = res[0], res[1]
        out_leaves, out_tree = tree_util.flatten(out)
        _real_float(out_leaves, "jacrev", "output")
        in_leaves, in_struct = tree_util.flatten(primals)
        in_avals = [asarray(x).aval for x in in_leaves]
        # rows[j][k]: the flat input cotangents for the k-th unit cotangent of output leaf j
        rows = _unit_responses(out_leaves, out_tree, f_vjp)

        def block(j, i):
            shape = out_leaves[j].shape + in_avals[i].shape
            if not rows[j]:  # an empty output
                return _zeros(ArrayType(shape, in_avals[i].dtype))
            return _stack([r[i] for r in rows[j]], 0, shape)

        jac = _jacobian(out_tree, out_leaves, in_struct, in_leaves, block,
                        isinstance(argnums, (int, np.integer)))
        return (jac, res[2]) if has_aux else jac

    jacfun.__name__ = f"jacrev({getattr(f, '__name__', 'f')})"
    return jacfun


def _unit_responses(leaves, struct, linear_map):
    """[j][k]: the flat leaves of `linear_map` applied to the tree (of structure `struct`)
    that is zero but for a one at element k of leaf j: one Jacobian row or column each."""
    zeros = [np.zeros(a.shape, a.dtype) for a in leaves]
    res = []
    for j, a in enumerate(leaves):
        per_k = []
        for k in range(a.size):
            unit = list(zeros)
            unit[j] = _basis(a.aval, k)
            per_k.append(tree_util.leaves(linear_map(tree_util.unflatten(struct, unit))))
        res.append(per_k)
    return res


def jacfwd(f, argnums=0, has_aux: bool = False):
    """The Jacobian of `f` by forward mode: one JVP per input element (as `jax.jacfwd`).

    Same result layout as `jacrev`: leaves of shape `out.shape + in.shape`.
    The linearisation (graphs) is built once and applied to each unit tangent.
    """

    def jacfun(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "jacfwd")
        primals = tuple(args[i] for i in nums)
        res = _linearize(_partial(f, args, kwargs, nums), primals, has_aux, "jacfwd", nums)
        out, f_jvp = res[0], res[1]
        in_leaves, in_struct = tree_util.flatten(primals)
        in_arrays = [asarray(x) for x in in_leaves]
        _real_float(in_arrays, "jacfwd", "input leaf")
        out_leaves, out_tree = tree_util.flatten(out)
        _real_float(out_leaves, "jacfwd", "output")
        # cols[i][k]: the flat output tangents for the k-th unit tangent of input leaf i
        cols = _unit_responses(in_arrays, in_struct, f_jvp)

        def block(j, i):
            shape = out_leaves[j].shape + in_arrays[i].shape
            if not cols[i]:  # an empty input
                return _zeros(ArrayType(shape, out_leaves[j].dtype))
            return _stack([c[j] for c in cols[i]], -1, shape)

        jac = _jacobian(out_tree, out_leaves, in_struct, in_leaves, block,
                        isinstance(argnums, (int, np.integer)))
        return (jac, res[2]) if has_aux else jac

    jacfun.__name__ = f"jacfwd({getattr(f, '__name__', 'f')})"
    return jacfun


def hessian(f, argnums=0, has_aux: bool = False):
    """The Hessian of a scalar `f`: `jacfwd(jacrev(f))`, shape `in.shape + in.shape`.

    Forward over reverse, as JAX: the inner gradient is one reverse pass, the
    outer Jacobian one linearised pass per input element.
    """
    return jacfwd(jacrev(f, argnums, has_aux), argnums, has_aux)

# --- custom_vjp ----------------------------------------------------------------------------------
#
# The node custom_vjp puts on each output, custom_vjp_call, and its VJP rule (which calls
# the user's bwd) are defined in ops/special.py.


class custom_vjp:  # noqa: N801 - named as JAX's decorator
    """A function with a user-defined VJP, as `jax.custom_vjp`.

    Example::

        @fc.custom_vjp
        def clip_gradient(x):
            return x

        def fwd(x):
            return x, None            # (output, residuals)

        def bwd(res, ct):
            return (fc.clip(ct, -1, 1),)  # one cotangent per argument

        clip_gradient.defvjp(fwd, bwd)

    Outside any transformation the function itself runs. Under `grad`, `vjp`,
    `jit` or `make_graph`, `fwd` runs and the cotangent goes through `bwd`;
    `bwd` is written in funconv ops, so higher derivatives differentiate it.
    Arguments at `nondiff_argnums` are static: they are passed to `bwd` first.
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = None
        self.bwd = None
        self._in_fwd = 0  # > 0 while fwd runs: fwd may call the function itself (as in JAX)

    def defvjp(self, fwd, bwd) -> None:
        """Set the rule: `fwd(*args) -> (out, residuals)`, `bwd(residuals, ct) -> tuple`."""
        self.fwd, self.bwd = fwd, bwd

    def __get__(self, obj, objtype=None):  # as a method: bind like a function
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        name = self.__name__
        if kwargs:
            args = _bind_positional(self.fun, args, kwargs)
        if not isinstance(current(), Trace) or self._in_fwd:
            return self.fun(*args)
        if self.fwd is None:
            raise ArgumentError(f"custom_vjp {name} has no rule: call {name}.defvjp(fwd, bwd) "
                                "before differentiating or tracing it")
        for i in self.nondiff_argnums:
            if not -len(args) <= i < len(args):
                raise ArgumentError(f"custom_vjp {name}: nondiff_argnums={self.nondiff_argnums} "
                                    f"but it was called with {len(args)} argument(s)")
        nondiff_pos = {i % len(args) for i in self.nondiff_argnums}
        diff = tuple(a for i, a in enumerate(args) if i not in nondiff_pos)
        leaves, in_tree = tree_util.flatten(diff)
        arrays = []
        for path, leaf in _leaf_paths(diff):
            try:
                arrays.append(asarray(leaf))
            except ArgumentError:
                raise ArgumentError(f"custom_vjp {name}: argument {path} is {describe(leaf)}, not "
                                    "an array; list non-array arguments in nondiff_argnums") from None
        it = iter(tree_util.unflatten(in_tree, arrays))
        call_args = [a if i in nondiff_pos else next(it) for i, a in enumerate(args)]
        self._in_fwd += 1
        try:
            res = self.fwd(*call_args)
        finally:
            self._in_fwd -= 1
        if not (isinstance(res, tuple) and len(res) == 2):
            raise ArgumentError(f"custom_vjp {name}: fwd must return a pair (output, residuals), "
                                f"got {describe(res)}")
        out, residuals = res
        out_leaves, out_tree = tree_util.flatten(out)
        outs = [_out_leaf(o, f"custom_vjp {name} (fwd)", False) for o in out_leaves]
        res_leaves, res_tree = tree_util.flatten(residuals)
        res_arrays, res_static = [], {}
        for k, r in enumerate(res_leaves):
            if isinstance(r, (Array, np.ndarray)):
                res_arrays.append(asarray(r))
            else:  # Python numbers, strings, dtypes... are carried as static data
                res_static[k] = r
        rule = _CustomRule(self, tuple(args[i] for i in sorted(nondiff_pos)), in_tree, len(arrays),
                           out_tree, [o.aval for o in outs], res_tree, res_static)
        marked = [custom_vjp_call_p(o, *arrays, *res_arrays, rule=rule, index=j)
                  if is_inexact(o.dtype) else o for j, o in enumerate(outs)]
        return tree_util.unflatten(out_tree, marked)


def _bind_positional(fun, args, kwargs) -> tuple:
    """Keyword arguments of `fun` moved to their positions (defaults filled in)."""
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except TypeError as e:
        raise ArgumentError(f"{getattr(fun, '__name__', 'f')}: {e}") from None
    bound.apply_defaults()
    return bound.args + tuple(bound.kwargs.values())
