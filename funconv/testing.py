"""Testing helpers for users and for funconv's own suite: gradient checks by
the inner-product identity, and hypothesis strategies (issue 3).
"""

from __future__ import annotations

import numpy as np

from funconv import tree as tree_util
from funconv.array import Array
from funconv.autodiff import vjp
from funconv.ops._core import asarray


def _inner(a, b) -> float:
    return float(np.real(np.vdot(np.asarray(b), np.asarray(a))))


def check_vjp(f, args, *, atol=None, rtol=None, eps=None, seed=0) -> None:
    """Check `f`'s VJP at `args` against central differences (float64 advised).

    Draws random directions v (inputs) and u (output) and checks
    `<u, (f(x + eps v) - f(x - eps v)) / (2 eps)>` against `<f_vjp(u), v>`.
    Raises AssertionError with both numbers on a mismatch.
    """
    rng = np.random.default_rng(seed)
    args = tuple(tree_util.map(asarray, a) for a in args)
    leaves, treedef = tree_util.flatten(args)
    dt = np.result_type(*[np.asarray(l).dtype for l in leaves])
    eps = eps if eps is not None else (1e-6 if dt == np.float64 else 1e-3)
    atol = atol if atol is not None else (1e-6 if dt == np.float64 else 1e-2)
    rtol = rtol if rtol is not None else (1e-5 if dt == np.float64 else 1e-2)
    out, f_vjp = vjp(f, *args)
    out_leaves, out_tree = tree_util.flatten(out)
    us = [rng.standard_normal(o.shape).astype(o.dtype) for o in out_leaves]
    vs = [rng.standard_normal(np.shape(l)).astype(np.asarray(l).dtype) for l in leaves]

    def f_at(step):
        moved = [asarray(np.asarray(l) + step * v) for l, v in zip(leaves, vs)]
        return tree_util.leaves(f(*tree_util.unflatten(treedef, moved)))

    plus, minus = f_at(eps), f_at(-eps)
    fd = sum(_inner(u, (np.asarray(p) - np.asarray(m)) / (2 * eps)) for u, p, m in zip(us, plus, minus))
    cts = tree_util.leaves(f_vjp(tree_util.unflatten(out_tree, [asarray(u) for u in us])))
    an = sum(_inner(c, v) for c, v in zip(cts, vs))
    if not abs(fd - an) <= atol + rtol * max(abs(fd), abs(an)):
        raise AssertionError(f"VJP check failed: <u, J v> by central differences = {fd!r}, "
                             f"<J^T u, v> = {an!r} (eps={eps}, atol={atol}, rtol={rtol})")


def check_grads(f, args, order=1, modes=("rev",), atol=None, rtol=None, eps=None) -> None:
    """Check derivatives of `f` at `args` up to `order` (issue 3 extends modes)."""
    check_vjp(f, args, atol=atol, rtol=rtol, eps=eps)
    if order > 1:
        def first(*a):
            out, fv = vjp(f, *a)
            u = tree_util.map(lambda o: np.ones(o.shape, o.dtype), out)
            return fv(u)

        check_grads(first, args, order - 1, modes, atol, rtol, eps)


__all__ = ["check_vjp", "check_grads", "Array"]
