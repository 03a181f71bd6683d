"""Primitives that belong to no array family: autodiff's markers and nn's relu.

- `stop_gradient`: the identity, with a zero VJP (`fc.stop_gradient`).
- `custom_vjp_call`: the identity on its first operand, whose VJP calls the
  user's `bwd` (the node `fc.custom_vjp` puts on each output; see autodiff.py).
- `relu`: max(x, 0), a primitive for speed (`fc.nn.relu` is its wrapper).

They live here, not next to their users, so that every primitive is defined in
`funconv/ops/` (ops/reduce.py and passes/ use them without importing autodiff).
Imports tree, errors, primitive, types and ops.
"""

from __future__ import annotations

import numpy as np

from funconv import tree as tree_util
from funconv.errors import ArgumentError, ShapeError
from funconv.ops._core import asarray, describe
from funconv.ops.creation import zeros
from funconv.primitive import Primitive, elementwise
from funconv.types import ArrayType

# --- stop_gradient ------------------------------------------------------------------

stop_gradient_p = Primitive("stop_gradient", lambda x: x, lambda x: x, lambda ct, out, x: (None,))


def stop_gradient(x):
    """The identity, with a zero derivative (leafwise over a pytree)."""
    return tree_util.map(lambda a: stop_gradient_p(asarray(a)), x)


# --- custom_vjp_call --------------------------------------------------------------------------
#
# Under a trace, a custom_vjp function runs its `fwd` (so the graph holds ordinary
# nodes for the forward computation and its residuals) and wraps each output in a
# `custom_vjp_call` node: the identity on its first operand, whose other operands are
# the function's arguments and residuals. Its VJP rule sends the cotangent to the
# arguments through the user's `bwd` and nothing through the forward computation.
# Any graph consumer (interpreter, jit backends, passes) sees a plain identity; once
# no more differentiation follows, a pass may replace it by its first operand.


class _CustomRule:
    """Static data of one custom_vjp call: hashable by identity, so it can be a param."""

    def __init__(self, cvjp, nondiff, in_tree, n_args, out_tree, out_avals, res_tree, res_static):
        self.cvjp = cvjp
        self.nondiff = nondiff          # the nondiff_argnums values, passed first to bwd
        self.in_tree = in_tree          # structure of the differentiable arguments (a tuple)
        self.n_args = n_args            # their number of leaves
        self.out_tree = out_tree
        self.out_avals = out_avals
        self.res_tree = res_tree
        self.res_static = res_static    # residual leaves that are not arrays, by position

    def __repr__(self) -> str:
        return f"<custom_vjp {self.cvjp.__name__}>"

    def residuals(self, res_arrays):
        it = iter(res_arrays)
        leaves = [self.res_static[k] if k in self.res_static else next(it)
                  for k in range(self.res_tree.num_leaves)]
        return tree_util.unflatten(self.res_tree, leaves)


def _custom_vjp_call_rule(value: ArrayType, *operands: ArrayType, rule, index) -> ArrayType:
    return value


def _custom_vjp_call_impl(value, *operands, rule, index):
    return value


def _custom_vjp_call_vjp(ct, out, value, *operands, rule, index):
    """Call the user's bwd with this output's cotangent (zeros for the other outputs).

    With several outputs, bwd runs once per output that receives a cotangent and
    the results add up: correct because bwd is linear in its cotangent.
    """
    args, res = operands[:rule.n_args], operands[rule.n_args:]
    cts = [ct if j == index else zeros(a.shape, a.dtype) for j, a in enumerate(rule.out_avals)]
    name = rule.cvjp.__name__
    in_cts = rule.cvjp.bwd(*rule.nondiff, rule.residuals(res), tree_util.unflatten(rule.out_tree, cts))
    diff_args = tree_util.unflatten(rule.in_tree, args)
    if not isinstance(in_cts, (tuple, list)) or len(in_cts) != len(diff_args):
        raise ArgumentError(f"custom_vjp {name}: bwd must return a tuple with one cotangent per "
                            f"differentiable argument ({len(diff_args)}), got {describe(in_cts)}")
    flat = []
    for i, (c, a) in enumerate(zip(in_cts, diff_args)):
        a_leaves, a_tree = tree_util.flatten(a)
        if c is None:
            flat.extend([None] * len(a_leaves))
            continue
        c_leaves, c_tree = tree_util.flatten(c, is_leaf=lambda x: x is None)
        if c_tree != a_tree:
            raise ArgumentError(f"custom_vjp {name}: bwd's cotangent {i} has structure {c_tree}, "
                                f"the argument {a_tree}")
        for cl, al in zip(c_leaves, a_leaves):
            if cl is None:
                flat.append(None)
                continue
            cl = asarray(cl)
            if cl.shape != al.shape:
                raise ShapeError(f"custom_vjp {name}: bwd returned a cotangent of type "
                                 f"{cl.aval.short()} for argument {i} of type {al.aval.short()}")
            flat.append(cl if cl.dtype == al.dtype else cl.astype(al.dtype))
    return (None, *flat, *[None] * len(res))


custom_vjp_call_p = Primitive("custom_vjp_call", _custom_vjp_call_rule, _custom_vjp_call_impl,
                              _custom_vjp_call_vjp)


# --- relu ------------------------------------------------------------------------------------


def _relu_vjp(ct, out, x):
    # the mask from the output (out > 0 exactly where x > 0): derivative 0 at x = 0, as JAX.
    # A multiply by the 0/1 mask, not a where: np.where is ~10x slower than np.maximum/multiply
    # on large float32 arrays with unpredictable masks, and relu sits in every CNN's hot path.
    return (ct * (out > 0).astype(ct.dtype),)


# relu is a primitive (not where(x > 0, x, 0)) for speed, forward and backward. Its NumPy
# meaning is np.maximum(x, 0): -inf gives 0 and nan stays nan (OpenCL's fmax would give 0).
relu_p = elementwise("relu", lambda x: np.maximum(x, x.dtype.type(0)), _relu_vjp,
                     c_expr="(({0}>0||FC_ISNAN({0}))?{0}:({dtype})0)", kinds="f")
