"""The helix transform: a 2-d or 3-d convolution as a 1-d convolution of the flattened signal.

Claerbout, "Multidimensional recursive filters via a helix" (Geophysics 63(5), 1998); see
../shared/notes/fft-conv.md section 4. Flatten a row-major R_1 x ... x R_d (padded) signal to
one line of length T = R_1 * ... * R_d: sample (i_1, ..., i_d) sits at

    t = i_1 * M_1 + i_2 * M_2 + ... + i_d,        M_k = R_{k+1} * ... * R_d

and the kernel tap (a_1, ..., a_d) becomes the 1-d tap at lag a_1 M_1 + ... + a_d (in 2-d:
a*W + b). The 1-d kernel, of length (K_1 - 1) M_1 + ... + K_d, is the kernel padded with zeros
to the signal's row lengths and flattened (a sparse 1-d kernel). Then the 1-d valid
correlation at t equals the d-dimensional one at (i_1, ..., i_d) wherever the window does
not straddle a row end (i_k <= R_k - K_k for k >= 2); those straddling outputs are computed
and discarded: the 1-d result is reshaped to (R_1 - K_1 + 1, R_2, ..., R_d) and sliced.

Geometry, in the node's terms: the input is dilated and padded (pad_p: lhs_dilation as
interior padding) and cropped to the R_k = (L_k - 1) s_k + K_k samples the outputs read
(K_k: the dilated kernel's extent, L_k: the output size, s_k: the stride); the last axis is
padded with zeros up to a multiple of its stride s_d, so that the 1-d convolution's stride
s_d lands on the same column of every row; strides of the other axes are a strided slice of
the result (the rows in between are computed and thrown away). The kernel is dilated
(interior padding) before it is flattened. Groups, channels and batch pass through: the 1-d
node is a `conv_general` with the same feature_group_count, lowered in turn by `choose`
(typically its 1-d FFT path: one long transform per map instead of a d-dimensional one).

Exact: the same products summed (in another order, by whatever algorithm the 1-d node gets).
Where it wins: where the 1-d engine is the fast one (a backend with only a 1-d FFT), or where
R_1 ... R_d factors into a 2,3,5,7-smooth length when the per-axis sizes do not. On the
NumPy backend the per-axis FFT path already pads each axis to a smooth size for free, and
the helix adds a copy of the padded signal and computes the straddling outputs; it measured
1x to 6x slower than the FFT path (`NUMPY_PENALTY`), so its estimated cost (passes/conv.py)
is above the FFT path's for every convolution we tried: "auto" practically never picks it
there (a measured plan may); `algorithm="helix"` forces it. Imports ir, ops,
types; no backend.
"""

from __future__ import annotations

import math

import numpy as np

from funconv.ir import Apply, Const, Input, Node
from funconv.ops._window import dilate
from funconv.ops.conv import conv_general_p
from funconv.ops.shape import pad_p, reshape_p, slice_p
from funconv.types import ArrayType


def why_not(node: Apply) -> str | None:
    """None when the helix rewrite applies (any convolution of 2 or more spatial dims)."""
    nd = node.type.ndim - 2
    if nd < 2:
        return "it is one-dimensional already (the helix flattens 2-d and 3-d convolutions)"
    return None


def geometry(node: Apply) -> dict:
    """The numbers of the rewrite (see the module docstring): R (samples read per axis,
    the last rounded up to its stride), K (dilated kernel extents), L (outputs), s
    (strides), T (the flat signal's length), lags (M_k per axis), taps (the 1-d kernel's
    length), rows (R_1 - K_1 + 1), Q (1-d outputs kept before reshaping), e (the 1-d
    convolution's high padding)."""
    p = node.params
    x, w = node.args
    nd = node.type.ndim - 2
    s = p["window_strides"]
    K = [dilate(w.type.shape[2 + i], p["rhs_dilation"][i]) for i in range(nd)]
    L = list(node.type.shape[2:])
    R = [(L[i] - 1) * s[i] + K[i] for i in range(nd)]
    R[-1] = -(-R[-1] // s[-1]) * s[-1]  # a multiple of the last stride
    lags = [math.prod(R[i + 1:]) for i in range(nd)]
    taps = sum((K[i] - 1) * lags[i] for i in range(nd)) + 1
    rows = R[0] - K[0] + 1
    T = math.prod(R)
    Q = rows * lags[0] // s[-1]
    # 1-d outputs q = 0..Q-1 read t = q*s_d .. q*s_d + taps - 1 < T + e
    e = (Q - 1) * s[-1] + taps - T
    return {"R": R, "K": K, "L": L, "s": s, "T": T, "lags": lags, "taps": taps, "rows": rows,
            "Q": Q, "e": e}


def _params_1d(node: Apply, g: dict) -> dict:
    return {"window_strides": (g["s"][-1],), "padding": ((0, g["e"]),), "lhs_dilation": (1,),
            "rhs_dilation": (1,), "feature_group_count": node.params["feature_group_count"],
            "algorithm": "auto"}


def hypothetical(node: Apply) -> Apply:
    """The 1-d conv_general node `lower` would build (typed, in no graph; its kernel a Const
    when the node's kernel is constant, so that it is costed as one): for costing."""
    from funconv.passes.fold import _constant

    g = geometry(node)
    x, w = node.args
    N, C = x.type.shape[:2]
    O, Cg = w.type.shape[:2]
    xt = ArrayType((N, C, g["T"]), x.type.dtype)
    wt = ArrayType((O, Cg, g["taps"]), w.type.dtype)
    wn = (Const(wt, np.broadcast_to(np.zeros((), wt.dtype), wt.shape)) if _constant(w)
          else Input(wt))
    params = _params_1d(node, g)
    t = conv_general_p.shape_rule(xt, wt, **params)
    return Apply(type=t, prim=conv_general_p, args=(Input(xt), wn), params=params, source=node.source)


# Measured on the NumPy backend (2 shared cores, forced helix against forced fft): 1.5x the
# FFT path's time for f32[2,4,64,64,64] * 9^3 (124 ms against 82), 6x for f32[1,1,128^3] *
# 15^3 (255 ms against 40), equal for a 97x101 image * 31x31. The flop model cannot see that
# one long 1-d transform (millions of points) runs out of cache where the per-axis transforms
# do not, nor the straddling outputs' share of the work, so passes/conv.py multiplies the 1-d
# convolution's estimate by this (the smallest slowdown measured).
NUMPY_PENALTY = 1.5


def copy_bytes(node: Apply) -> int:
    """Bytes the rewrite copies besides the 1-d convolution: the padded signal (written,
    then read) and the kept outputs (sliced out of the 1-d result)."""
    g = geometry(node)
    N, C = node.args[0].type.shape[:2]
    item = node.type.dtype.itemsize
    return item * (2 * N * C * g["T"] + 2 * node.type.size)


def lower(b, node: Apply, args: list, lower_conv, emit) -> Node:
    """The helix rewrite of a conv_general node (see the module docstring): x (N, C, S...),
    w (O, C/G, K...) of 2 or more spatial dims -> the node's (N, O, L...). `lower_conv(b,
    params, args, source)` builds and lowers the 1-d node; `emit` builds a node, folding it
    when its operands are constants (the kernel's padding of a constant kernel)."""
    p, src = node.params, node.source
    x, w = args
    nd = node.type.ndim - 2
    g = geometry(node)
    R, K, L, s = g["R"], g["K"], g["L"], g["s"]
    N, C = x.type.shape[:2]
    O, Cg = w.type.shape[:2]
    zero = b.literal(0, x.type.dtype)
    # the signal: dilated, padded, cropped to what is read (R_k), flattened
    cfg = [(0, 0, 0), (0, 0, 0)]
    for i in range(nd):
        lo = p["padding"][i][0]
        Hd = dilate(x.type.shape[2 + i], p["lhs_dilation"][i])
        cfg.append((lo, R[i] - lo - Hd, p["lhs_dilation"][i] - 1))
    xp = b.apply(pad_p, [x, zero], {"config": tuple(cfg)}, src)
    x1 = b.apply(reshape_p, [xp], {"shape": (N, C, g["T"])}, src)
    # the kernel: dilated, padded to the signal's row lengths (axes 2..d), flattened, cut after
    # its last tap
    kcfg = [(0, 0, 0), (0, 0, 0)]
    for i in range(nd):
        hi = 0 if i == 0 else R[i] - K[i]
        kcfg.append((0, hi, p["rhs_dilation"][i] - 1))
    wp = emit(b, pad_p, [w, zero], {"config": tuple(kcfg)}, src)
    flat = K[0] * g["lags"][0]
    w1 = emit(b, reshape_p, [wp], {"shape": (O, Cg, flat)}, src)
    if g["taps"] != flat:
        w1 = emit(b, slice_p, [w1], {"start_indices": (0, 0, 0), "limit_indices": (O, Cg, g["taps"]),
                                     "strides": (1, 1, 1)}, src)
    y1 = lower_conv(b, _params_1d(node, g), [x1, w1], src)
    # back to d dims: (rows, R_2, ..., R_d / s_d), then the kept outputs
    y = b.apply(reshape_p, [y1], {"shape": (N, O, g["rows"]) + tuple(R[1:-1]) + (R[-1] // s[-1],)}, src)
    lim = (N, O) + tuple((L[i] - 1) * s[i] + 1 for i in range(nd - 1)) + (L[-1],)
    strides = (1, 1) + tuple(s[:-1]) + (1,)
    if lim != y.type.shape or any(v != 1 for v in strides):
        y = b.apply(slice_p, [y], {"start_indices": (0,) * (nd + 2), "limit_indices": lim,
                                   "strides": strides}, src)
    return y
