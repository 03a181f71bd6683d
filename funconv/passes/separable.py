"""Separable (low-rank) convolution: a constant kernel of low numerical rank as two passes.

A kernel W of shape (O, C/G, k_1, ..., k_d) whose values are known at compile time (an
array the jitted function closes over, not one of its arguments) is factored along its
last spatial axis by an SVD of its (O*C/G*k_1*...*k_{d-1}) x k_d reshaping:

    W[o, c, a, b] = sum_{i<r} A[o, c, a, i] * V[i, b]       (a: the leading taps, b: the last)

with r the numerical rank (singular values above `s_max * max(m, n) * eps(dtype)`, the
tolerance of `numpy.linalg.matrix_rank`, so the factors reproduce W to float rounding:
never an approximation). The convolution is then exactly

1. a *row pass* along the last axis: every input channel c against the r shared filters
   V[i] (a grouped convolution, C groups of r output channels, kernel 1 x ... x k_d),
   with the last axis's stride, padding and dilation;
2. a *column pass* over the other axes: the (C*r)-channel result against A, kernel
   (O, C/G*r, k_1, ..., k_{d-1}, 1), with their strides, padding and dilation.

Per output position that is C*r*k_d + O*(C/G)*r*k_1...k_{d-1} multiplications instead of
O*(C/G)*k_1...k_d: Gaussian, box and Sobel kernels are rank 1, so a k x k blur costs 2k
instead of k^2. Both passes are ordinary `conv_general` nodes, lowered in turn (im2col,
FFT, ...). Learned kernels (graph inputs) are never factored: their rank is unknown at
compile time, and a truncated SVD would be an approximation (Jaderberg et al., "Speeding
up convolutional neural networks with low rank expansions", BMVC 2014, do it on purpose).
See ../shared/notes/fft-conv.md section 5. Imports ir, ops; no backend.
"""

from __future__ import annotations

import math

import numpy as np

from funconv.ir import Apply, Const, Literal, Node
from funconv.ops.shape import broadcast_to_p
from funconv.types import ArrayType


def constant_value(node: Node) -> np.ndarray | None:
    """The compile-time value of a kernel node: a constant array, or a broadcast scalar
    (what constant folding makes of an all-equal array); None when it is not constant."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Apply) and node.prim is broadcast_to_p and isinstance(node.args[0], Literal):
        lit = node.args[0]
        return np.full(node.shape, lit.value, lit.dtype)
    return None


def factor(w: np.ndarray):
    """`(A, V)` with `W == A @ V` along the last axis to float rounding (see the module
    docstring): A of shape w.shape[:-1] + (r,), V of shape (r, k_d), in w's dtype."""
    k = w.shape[-1]
    m = np.asarray(w, np.float64).reshape(-1, k)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    # numpy.linalg.matrix_rank's tolerance, in the kernel's own precision
    tol = (s[0] if s.size else 0.0) * max(m.shape) * np.finfo(w.dtype).eps
    r = int(np.count_nonzero(s > tol))
    a = (u[:, :r] * s[:r]).reshape(w.shape[:-1] + (r,))
    return a.astype(w.dtype), vt[:r].astype(w.dtype)


def why_not(node: Apply) -> str | None:
    """None when this conv_general node's kernel is a compile-time constant of low rank
    along its last axis (rank below that axis's length), so the rewrite is possible and
    exact; else the reason (shown when a user forced "separable")."""
    x, w = node.args
    value = constant_value(w)
    if value is None:
        return ("its kernel is not a compile-time constant (it is an argument of the "
                "function, e.g. a learned weight); close over the array to make it one")
    if w.dtype.kind != "f":
        return f"its kernel is {w.type.short()}, not a real float array"
    if any(d != 1 for d in node.params["lhs_dilation"]):
        return "it is input-dilated (a transposed convolution)"
    ksp = w.shape[2:]
    if len(ksp) < 2 or ksp[-1] == 1 or math.prod(ksp[:-1]) == 1:
        return "its kernel is one-dimensional already"
    r = factor(value)[1].shape[0]
    if r == 0 or r >= ksp[-1]:
        return f"its kernel has full rank ({r}) along its last axis, of length {ksp[-1]}"
    return None


def why_not_cheaper(node: Apply) -> str | None:
    """`why_not`, and also None only where the two passes cost fewer multiplications per
    output than the direct form (what "auto" asks)."""
    reason = why_not(node)
    if reason is not None:
        return reason
    x, w = node.args
    O, Cg, *ksp = w.shape
    r = factor(constant_value(w))[1].shape[0]
    direct = O * Cg * math.prod(ksp)
    passes = x.shape[1] * r * ksp[-1] + O * Cg * r * math.prod(ksp[:-1])
    if passes >= direct:
        return f"rank {r} saves nothing ({passes} multiplications per output instead of {direct})"
    return None


def passes(node: Apply):
    """The row pass and the column pass of `node` (see the module docstring): two
    `(params, kernel)` pairs, the kernels as NumPy arrays."""
    p = node.params
    a, v = factor(constant_value(node.args[1]))
    O, Cg, *ksp = node.args[1].shape
    C, r, nd = node.args[0].shape[1], v.shape[0], len(ksp)
    G = p["feature_group_count"]
    one = (1,) * (nd - 1)
    # row pass: channel c's r output channels c*r + i hold x[c] against V[i]
    k_row = np.broadcast_to(v.reshape((1, r, 1) + one + (ksp[-1],)),
                            (C, r, 1) + one + (ksp[-1],)).reshape((C * r, 1) + one + (ksp[-1],))
    row = ({
        "window_strides": one + p["window_strides"][-1:],
        "padding": ((0, 0),) * (nd - 1) + p["padding"][-1:],
        "lhs_dilation": (1,) * nd,
        "rhs_dilation": one + p["rhs_dilation"][-1:],
        "feature_group_count": C,
        "algorithm": "auto",
    }, np.ascontiguousarray(k_row))
    # column pass: K2[o, c*r + i, taps..., 0] = A[o, c, taps..., i]
    k_col = np.moveaxis(a, -1, 2).reshape((O, Cg * r) + tuple(ksp[:-1]) + (1,))
    col = ({
        "window_strides": p["window_strides"][:-1] + (1,),
        "padding": p["padding"][:-1] + ((0, 0),),
        "lhs_dilation": (1,) * nd,
        "rhs_dilation": p["rhs_dilation"][:-1] + (1,),
        "feature_group_count": G,
        "algorithm": "auto",
    }, np.ascontiguousarray(k_col))
    return row, col


def hypothetical(node: Apply) -> tuple[Apply, Apply]:
    """The two conv_general nodes `lower` would build (typed, not in any graph; their
    kernels are Consts): for costing the rewrite before doing it."""
    (p_row, k_row), (p_col, k_col) = passes(node)
    prim = node.prim
    row_w = Const(ArrayType(k_row.shape, k_row.dtype), k_row)
    row_t = prim.shape_rule(node.args[0].type, row_w.type, **p_row)
    row = Apply(type=row_t, prim=prim, args=(node.args[0], row_w), params=p_row, source=node.source)
    col_w = Const(ArrayType(k_col.shape, k_col.dtype), k_col)
    col = Apply(type=node.type, prim=prim, args=(row, col_w), params=p_col, source=node.source)
    return row, col


def lower(b, node: Apply, args: list, lower_conv) -> Node:
    """The row pass and the column pass (see the module docstring); `lower_conv(b, params,
    args, source)` builds and lowers each new conv_general node."""
    (p_row, k_row), (p_col, k_col) = passes(node)
    row = lower_conv(b, p_row, [args[0], b.const(k_row)], node.source)
    return lower_conv(b, p_col, [row, b.const(k_col)], node.source)
