"""Winograd minimal filtering for 3x3 convolutions: F(2x2,3x3) and F(4x4,3x3) as graph rewrites.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). An output
tile Y of m x m outputs of a 3x3 correlation reads an input tile d of a x a samples
(a = m + 2), and

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A

with g the 3x3 kernel, (.) the elementwise product and B (a x a), G (a x 3), A (a x m)
constant matrices (`MATRICES`). Over channels the elementwise product becomes a sum, so a
convolution is:

1. input transform: V[xi, nu] = (B^T d B)[xi, nu] for every a x a tile (tiles overlap by 2,
   stepping by m) of every input channel: per axis, a strided slices (the tile's rows)
   combined by B's coefficients (adds and subtracts of whole arrays, `_combine`);
2. kernel transform: U = G g G^T per (output, input) channel pair (folded at compile time
   when the kernel is a constant);
3. one batched GEMM over the a*a tile elements (and the groups): M[xi, nu] = V[xi, nu] @ U[xi, nu],
   contracting the input channels of the group: a^2 = 16 (F(2x2)) or 36 (F(4x4)) GEMMs of
   (tiles x C/G) @ (C/G x O/G) in one dot_general;
4. output transform: Y = A^T M A (adds and subtracts again), then the tiles laid out as the
   image, cropped to the output.

Multiplications per output in the GEMM: a^2/m^2 per (input, output) channel pair instead of
9: 16/4 = 4 (2.25x fewer) for F(2x2,3x3), 36/16 = 2.25 (4x fewer) for F(4x4,3x3).

Accuracy. F(2x2,3x3)'s matrices hold 0, +-1 and 1/2 (exact in binary), so its float32 error
is that of direct summation. F(4x4,3x3)'s hold 1/6, 1/12, 1/24 and entries up to 8 (products
up to ~100): the transforms amplify rounding, and its float32 error was measured 7-9x
im2col's (../shared/notes/fft-conv.md section 6, and tests/unit/test_conv_accuracy.py, which
holds it to `WINOGRAD4_FLOAT32_TOL`). So F(4x4) is only used when forced
(`algorithm="winograd4"`).

Applicability (`why_not`): 2-d, a 3x3 kernel, stride 1, no kernel or input dilation; any
padding (negative too), groups, channels and batch; real or complex floats.

Speed on the NumPy backend: slower than im2col (conv3x3: 40 ms against 14.4, `NUMPY_SLOWDOWN`;
see also the module docstring of backends/numpy/kernels/conv.py): the 16 GEMMs are faster
than im2col's one, but the transforms are separate memory-bound passes over arrays 4x the
input. "auto"
therefore costs it at `NUMPY_SLOWDOWN` times im2col (passes/conv.py), so the cost model never
picks it and a measured plan (`conv_planning="measure"`) may. A backend that fuses the
transforms (OpenCL) is where it pays. Imports ir, ops; no backend.
"""

from __future__ import annotations

import math

import numpy as np

from funconv.ir import Apply, Node
from funconv.ops.elementwise import add_p, mul_p, neg_p, sub_p
from funconv.ops.linalg import dot_general_p
from funconv.ops.shape import broadcast_to_p, concatenate_p, pad_p, reshape_p, slice_p, transpose_p

# (B^T, G, A^T) per output tile size m, from Lavin and Gray (2016), section 4.1 (F(2x2,3x3))
# and 4.2 (F(4x4,3x3)); as exact rationals in float64, rounded to the node's dtype on use.
MATRICES = {
    2: (np.array([[1, 0, -1, 0],
                  [0, 1, 1, 0],
                  [0, -1, 1, 0],
                  [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0],
                  [1 / 2, 1 / 2, 1 / 2],
                  [1 / 2, -1 / 2, 1 / 2],
                  [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0],
                  [0, 1, -1, -1]], np.float64)),
    4: (np.array([[4, 0, -5, 0, 1, 0],
                  [0, -4, -4, 1, 1, 0],
                  [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0],
                  [0, 2, -1, -2, 1, 0],
                  [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0],
                  [-1 / 6, -1 / 6, -1 / 6],
                  [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6],
                  [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0],
                  [0, 1, -1, 2, -2, 0],
                  [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], np.float64)),
}

# Measured on the NumPy backend, conv3x3's forward (f32[16,64,32,32] * 64x64x3x3, 2 shared
# cores, best of 7): this rewrite 40 ms where im2col took 14.4 ms (F(4x4,3x3): 25.6 ms); a
# hand-tuned NumPy F(2x2,3x3) of the kernel's author, 13.6 ms against 10 (kernels/conv.py).
# The GEMMs are cheaper, but the transforms are ~20 memory-bound array passes and the
# GEMM's operand needs a relayout. "auto" costs Winograd at this multiple of im2col's
# estimate, so the model never prefers it; only a measured plan can.
NUMPY_SLOWDOWN = 2.8

# F(4x4,3x3)'s float32 error relative to max|ref| in the accuracy suite: 7-9x im2col's
# (measured: ../shared/notes/fft-conv.md section 6), so 10x the suite's float32 tolerance
WINOGRAD4_FLOAT32_FACTOR = 10


def why_not(node: Apply) -> str | None:
    """None when Winograd F(m x m, 3x3) computes this conv_general node, else why not."""
    p = node.params
    w = node.args[1]
    nd = w.type.ndim - 2
    if nd != 2:
        return f"it is {nd}-d (Winograd is implemented for 2-d convolutions)"
    if w.type.shape[2:] != (3, 3):
        return f"its kernel is {w.type.shape[2]}x{w.type.shape[3]}, not 3x3"
    if p["window_strides"] != (1, 1):
        return f"it is strided ({p['window_strides']}; Winograd needs stride 1)"
    if p["rhs_dilation"] != (1, 1) or p["lhs_dilation"] != (1, 1):
        return "it is dilated (Winograd needs an undilated kernel and input)"
    if node.type.dtype.kind not in "fc":
        return f"its dtype is {node.type.dtype}, not a float"
    return None


def _matmul_axis(b, x: Node, mat: np.ndarray, axis: int, emit, source) -> Node:
    """x with `axis` (length k) contracted against the constant (k, j) matrix `mat`: the
    result has that axis removed and a new last axis of length j."""
    m = b.const(mat.astype(x.type.dtype))
    return emit(b, dot_general_p, [x, m], {"dimension_numbers": (((axis,), (0,)), ((), ()))}, source)


def _strided(b, x: Node, axis: int, start: int, step: int, count: int, source) -> Node:
    """x[..., start : start + (count-1)*step + 1 : step, ...] along `axis`."""
    r = x.type.ndim
    lo, hi, st = [0] * r, list(x.type.shape), [1] * r
    lo[axis], hi[axis], st[axis] = start, start + (count - 1) * step + 1, step
    return b.apply(slice_p, [x], {"start_indices": tuple(lo), "limit_indices": tuple(hi),
                                  "strides": tuple(st)}, source)


def _combine(b, parts: list, mat: np.ndarray, source) -> Node:
    """sum_u mat[u, j] * parts[u] for every column j, stacked on a new last axis: the constant
    matrix applied as adds and subtracts of whole arrays (and a multiply where a coefficient
    is not +-1). In NumPy this is several times faster than a matmul with 4 or 6 columns
    (1M x 4 @ 4 x 4: ~190 ms against ~15 ms of ufunc passes, conv3x3's input transform)."""
    t = parts[0].type
    cols = []
    for j in range(mat.shape[1]):
        acc = None
        for u, c in enumerate(mat[:, j]):
            if c == 0:
                continue
            term = parts[u]
            if abs(c) != 1:
                lit = b.apply(broadcast_to_p, [b.literal(abs(c), t.dtype)], {"shape": t.shape}, source)
                term = b.apply(mul_p, [term, lit], {}, source)
            if acc is None:
                acc = term if c > 0 else b.apply(neg_p, [term], {}, source)
            else:
                acc = b.apply(add_p if c > 0 else sub_p, [acc, term], {}, source)
        cols.append(b.apply(reshape_p, [acc], {"shape": t.shape + (1,)}, source))
    return b.apply(concatenate_p, cols, {"axis": t.ndim}, source)


def _transform(b, x: Node, axis: int, mat: np.ndarray, m: int, count: int, source) -> Node:
    """`mat` (k, j) applied along `axis`: with count > 0, to each window of k samples stepping
    by m (`count` windows: the axis becomes count long); with count == 0, to the axis itself
    (of length k: it is removed). The j results make a new last axis."""
    k = mat.shape[0]
    if count:
        parts = [_strided(b, x, axis, u, m, count, source) for u in range(k)]
    else:
        shape = x.type.shape[:axis] + x.type.shape[axis + 1:]
        parts = [b.apply(reshape_p, [_strided(b, x, axis, u, 1, 1, source)], {"shape": shape}, source)
                 for u in range(k)]
    return _combine(b, parts, mat, source)


def lower(b, node: Apply, args: list, m: int, emit) -> Node:
    """conv_general (N, C, H, W) x (O, C/G, 3, 3) -> (N, O, Ho, Wo) by Winograd F(m x m, 3x3)
    (see the module docstring). `emit(b, prim, args, params, source)` builds a node, folding
    it when its operands are constants (the kernel transform of a constant kernel)."""
    BT, Gm, AT = MATRICES[m]
    a = m + 2
    x, w = args
    src = node.source
    N, C, H, W = x.type.shape
    O, Cg = w.type.shape[:2]
    G = node.params["feature_group_count"]
    Og = O // G
    Ho, Wo = node.type.shape[2:]
    th, tw = -(-Ho // m), -(-Wo // m)  # tiles per axis (the last may stick out: cropped)
    (pt, _), (pl, _) = node.params["padding"]
    # pad (or crop) to exactly the th*m + 2 rows and tw*m + 2 columns the tiles read
    cfg = ((0, 0, 0), (0, 0, 0), (pt, th * m + 2 - H - pt, 0), (pl, tw * m + 2 - W - pl, 0))
    xp = b.apply(pad_p, [x, b.literal(0, x.type.dtype)], {"config": cfg}, src)
    # 1. input transform, rows then columns (per tile: B^T d B): (N, C, th, Wp, xi), then
    #    (N, C, th, tw, xi, nu)
    t = _transform(b, xp, 2, BT.T, m, th, src)
    t = _transform(b, t, 3, BT.T, m, tw, src)
    v = b.apply(reshape_p, [t], {"shape": (N, G, Cg, th * tw, a * a)}, src)
    # 2. kernel transform G g G^T: (O, Cg, 3, 3) -> (O, Cg, 3, nu) -> (O, Cg, nu, xi)
    u = _matmul_axis(b, w, Gm.T, 3, emit, src)
    u = _matmul_axis(b, u, Gm.T, 2, emit, src)
    u = emit(b, transpose_p, [u], {"perm": (0, 1, 3, 2)}, src)
    u = emit(b, reshape_p, [u], {"shape": (G, Og, Cg, a * a)}, src)
    # 3. the GEMMs: batch (group, tile element), contract Cg -> (G, a*a, N, tiles, Og)
    dims = (((2,), (2,)), ((1, 4), (0, 3)))
    mm = b.apply(dot_general_p, [v, u], {"dimension_numbers": dims}, src)
    # 4. output transform A^T M A: (G, xi, nu, N, T, Og) -> (G, nu, N, T, Og, i) -> (G, N, T, Og, i, j)
    mm = b.apply(reshape_p, [mm], {"shape": (G, a, a, N, th * tw, Og)}, src)
    y = _transform(b, mm, 1, AT.T, m, 0, src)
    y = _transform(b, y, 1, AT.T, m, 0, src)
    # the tiles laid out as the image: (G, N, th, tw, Og, i, j) -> (N, G, Og, th, i, tw, j)
    y = b.apply(reshape_p, [y], {"shape": (G, N, th, tw, Og, m, m)}, src)
    y = b.apply(transpose_p, [y], {"perm": (1, 0, 4, 2, 5, 3, 6)}, src)
    y = b.apply(reshape_p, [y], {"shape": (N, O, th * m, tw * m)}, src)
    if (th * m, tw * m) != (Ho, Wo):
        y = b.apply(slice_p, [y], {"start_indices": (0, 0, 0, 0), "limit_indices": (N, O, Ho, Wo),
                                   "strides": (1, 1, 1, 1)}, src)
    return y


def gemm_flops(node: Apply, m: int) -> float:
    """The batched GEMM's flops: 2 (m+2)^2 N O (C/G) tiles."""
    N = node.args[0].type.shape[0]
    O, Cg = node.args[1].type.shape[:2]
    Ho, Wo = node.type.shape[2:]
    return 2 * (m + 2) ** 2 * N * O * Cg * math.ceil(Ho / m) * math.ceil(Wo / m)
