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
- `AUTO`, the candidates for "auto": an uncosted one (a rewrite that never loses, the
  1x1 GEMM) wins when it applies; the costed ones (FFT, im2col) compete on their
  estimated seconds (passes/conv_cost.py: flops and bytes per stage at calibrated
  machine rates), with windows of at most 5 taps per axis always left to im2col.

Also: "separable" (passes/separable.py: a constant low-rank kernel as a row and a column
pass), "helix" (passes/helix.py: a 2-d/3-d convolution as a 1-d one of the flattened
signal), "winograd" and "winograd4" (passes/winograd.py: F(2x2,3x3), F(4x4,3x3)). Every
node's candidates, estimates and choice are recorded (passes/plans.py; shown by
`jitted.lower(...).conv_plans`), and `fc.config.update("conv_planning", "measure")` times
the model's best few instead of trusting it (cached on disk).

FFT convolution ("fft", `_fft_lower`) is a rewrite into pad, rfft, a batched complex
dot_general per frequency, irfft and a strided crop, with spectra shared among a training
step's three convolutions through interning (the comment above `smooth_size` gives the
formulas and what is and isn't shared); "tiled_fft" (passes/tiled_fft.py) is the same by
overlap-save tiles, with tile-sized kernel spectra. `fc.config.update("conv_force_algorithm", name)`
forces one algorithm on every node, the derivative's included (for testing).

The rewrites here are backend-neutral: a 1x1 convolution (stride 1, no padding, no
input dilation, one group) is one GEMM, so it becomes `dot_general` (+ reshapes and a
broadcast view). The choice among equivalent GEMM layouts (batch first or last,
scatter, polyphase for input dilation) is the NumPy kernel's own (a backend choice,
backends/numpy/kernels/conv.py): a graph-level polyphase split would not be faster
than the kernel's. Imports ir, errors, passes.core and ops (the primitives the
rules build) and passes.conv_cost; no backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar

import attrs
import numpy as np

from funconv import config
from funconv.errors import ArgumentError
from funconv.ir import Apply, Graph, Node
from funconv.ops._window import dilate
from funconv.ops.conv import conv_general_p
from funconv.ops.elementwise import conj_p, mul_p
from funconv.ops.fft import fft_p
from funconv.ops.linalg import dot_general_p
from funconv.ops.reduce import reduce_sum_p
from funconv.ops.shape import broadcast_to_p, flip_p, pad_p, reshape_p, slice_p, transpose_p
from funconv.passes import conv_cost, helix, plans, separable, tiled_fft, winograd
from funconv.passes.core import Builder, rewrite


@attrs.frozen
class Algorithm:
    """One way to compute a convolution.

    Attributes:
        name: as printed in the graph (the node's `algorithm` param).
        why_not: `(node) -> str | None`: None if it can compute this conv_general node,
            else why not (shown when a user forced it).
        lower: `(builder, node, new_args) -> Node`: the node's replacement, of its type.
        cost: `(node) -> seconds` (passes/conv_cost.py), for "auto" to compare; None for a
            rewrite that wins whenever it applies.
        emits: names of the primitives its rewrite emits that not every backend has: on a
            backend that lacks one (`backend_lacks`), the algorithm is not a candidate.
    """

    name: str
    why_not: Callable[[Apply], str | None]
    lower: Callable[[Builder, Apply, list], Node]
    cost: Callable[[Apply], float] | None = None
    emits: tuple[str, ...] = ()


# Names of the primitives the backend being compiled for cannot run (its `LACKS`; set by
# `passes.optimize`): an algorithm that would emit one is not a candidate there.
backend_lacks: ContextVar = ContextVar("funconv_backend_lacks", default=frozenset())


def _unavailable(algo: Algorithm) -> str | None:
    missing = sorted(set(algo.emits) & backend_lacks.get())
    if not missing:
        return None
    return (f"the backend it compiles for has no {', '.join(missing)} primitive "
            "(backend='numpy' has every algorithm)")


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


# --- FFT convolution -------------------------------------------------------------------------------
#
# Mathieu, Henaff and LeCun (ICLR 2014, "Fast training of convolutional networks through
# FFTs"): transform every map once; then each (input channel, output channel) pairing is a
# pointwise product per frequency, so the channel sum is one small complex matrix product
# per frequency. Formulas, costs and accuracy: ../shared/notes/fft-conv.md sections 1, 2, 7.
#
# Geometry, per spatial axis, in the node's own terms: the input x (length H) dilated by
# lhs_dilation (length Hd) and padded by (a, hi) is xp (length P = a + Hd + hi); the kernel
# dilated by rhs_dilation spans Kd; the valid correlation has L = (P - Kd) // s + 1 outputs
# y[j] = sum_m xp[j*s + m] wd[m], which read xp[0 : R] only, R = (L - 1)*s + Kd.
#
# Every operand is "placed" in a period of n samples (pad_p: dilation as interior padding, then
# zeros up to n) and transformed with rfft; circular products of placed operands equal the
# linear ones wherever no data wraps onto what is read (the overlap-discard argument: outputs
# that would see wrapped data are exactly the ones not kept).
#
# - Correlation form (any kernel): xp placed at offset 0 (x at offset a; negative a crops),
#   the kernel at the origin. c = irfft(X * conj(W)) has c[t] = sum_m xp[t + m] wd[m] for
#   t + m < n, so n >= R suffices and y[j] = c[j*s]. (Data beyond R may be cropped: unread.)
# - Convolution form (the kernel is flip(w0) in every spatial axis, as in the input gradient
#   and conv_transpose): correlation with flip(w0) is convolution with w0, so the spectrum of
#   w0 *at the origin*, unconjugated, serves -- the forward's own kernel spectrum. x placed at
#   offset e (0 unless a > Kd - 1), v = irfft(X * W0) has v[t] = sum_q xpl[t - q] w0d[q], and
#   y[j] = v[j*s + Kd - 1 - a + e]. xp index i sits at placed (i - a + e) mod n; the reads
#   i in [0, R) stay clear of wrapped data when n >= R - a + e and n >= Hd + max(a, 0).
#
# Shared spectra (DESIGN.md decision 7). In a training step of y = conv(x, w) (padding
# (p_lo, p_hi) >= 0, stride s) the three nodes are: the forward, correlation of x at offset
# p_lo with w; the weight gradient, correlation of transpose(x) at offset p_lo with
# transpose(ct) dilated by s; the input gradient, correlation of ct dilated by s with
# transpose(flip(w)), done in convolution form with ct and w at the origin. Operands are
# peeled of leading-axis transposes/reshapes (and the kernel of a full flip) before they are
# transformed, and those are replayed on the spectrum, so each of x, w and ct is placed and
# transformed by equal nodes, which interning merges -- provided the three nodes pick the same
# n: the forward and weight gradient read R = (L - 1)*s + Kd; the convolution form rounds up
# from Hd + Kd - 1, which is the same R seen from the input gradient. So a training step
# needs 3 forward transforms and 3 inverses whatever the (non-negative) padding, stride or
# dilation. Not shared: negative padding, or p_hi smaller than the forward's floor remainder
# (P - Kd) % s (the input gradient then needs a larger n); the shapes are still right, only
# some transforms are repeated.


def smooth_size(n: int) -> int:
    """The least 2,3,5,7-smooth integer >= n: padding is free for a convolution, and these
    sizes are pocketfft's fast ones (other sizes cost ~4x and lose accuracy: Bluestein)."""
    m = max(n, 1)
    while True:
        k = m
        for p in (2, 3, 5, 7):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


RADIX_MIN = 128  # fft_size picks by radix from this length up


def fft_size(n: int) -> int:
    """The transform length for a convolution that reads n samples: among the 2,3,5,7-smooth
    lengths up to 15% above n, the one of least n log n by pocketfft's per-radix speed
    (conv_cost.radix_factor): 144 = 2^4 3^2 for conv11's 138 rather than 140 = 2^2 5 7,
    576 rather than 560 for blur31's 542. A function of n alone, so that the three
    convolutions of a training step pick equal lengths and share their spectra. Below
    `RADIX_MIN` the least smooth length (short transforms: the radix matters less than the
    extra mixing a longer one costs)."""
    if n < RADIX_MIN:
        return smooth_size(n)
    best, best_cost, m = None, math.inf, smooth_size(n)
    limit = max(m, int(1.15 * n))
    while m <= limit:
        cost = m * math.log2(max(m, 2)) * conv_cost.radix_factor(m)
        if cost < best_cost:
            best, best_cost = m, cost
        m = smooth_size(m + 1)
    return best


@attrs.frozen
class _Peeled:
    """A conv operand seen through leading-axis-only transposes and reshapes (and, for a
    kernel, a flip of all spatial axes): `src` is transformed, `ops` (outermost first) are
    replayed on its spectrum, `flipped` says a full spatial flip was peeled."""

    src: Node
    ops: tuple
    flipped: bool


def _peel(node: Node, nd: int, allow_flip: bool) -> _Peeled:
    ops, flipped = [], False
    while isinstance(node, Apply):
        src = node.args[0] if node.args else None
        r = node.type.ndim
        if node.prim is transpose_p and node.params["perm"][r - nd:] == tuple(range(r - nd, r)):
            ops.append(("transpose", node.params["perm"]))
        elif node.prim is reshape_p and node.type.shape[r - nd:] == src.type.shape[src.type.ndim - nd:]:
            ops.append(("reshape", node.type.shape[:r - nd]))
        elif (node.prim is flip_p and allow_flip and not flipped
              and sorted(a % r for a in node.params["axes"]) == list(range(r - nd, r))):
            flipped = True
        else:
            break
        node = src
    return _Peeled(node, tuple(ops), flipped)


# Pruned transforms and untransformed axes. Two refinements of the recipe above, both exact:
#
# - Axes where the (dilated) kernel spans one tap are not transformed: along such an axis the
#   correlation is a pointwise product, y[j] = xp[j*s] w, so x is only placed there (dilated,
#   padded or cropped, then subsampled by the stride: a slice) and the kernel's single tap
#   broadcasts in the mixing. A 1 x k row pass is one 1-d FFT per row, not a 2-d FFT. (When
#   every axis is such, i.e. a 1x1 window, all are transformed as before.) The transformed
#   axes are moved last (a transpose, a view in NumPy) because fft_p transforms trailing axes.
# - Pruned transforms: a multidimensional DFT is a product of one-axis DFTs, in any order.
#   Forward: an operand whose placed data occupies only the first e_i < n_i samples along a
#   leading transformed axis i (a small kernel in a large period) is rfft'd along the last
#   axis over those e_i rows only, then zero-padded to n_i (complex) and transformed along i
#   alone. Inverse: where only a few outputs are kept along a leading axis (the weight
#   gradient keeps kh of n), the complex inverse along that axis comes first and is sliced to
#   the kept rows (every stride-th), and the last axis's irfft runs on those rows only.
#   One-axis transforms are fft_p on the axis moved last (transposes: views in NumPy; scipy's
#   pocketfft reads the strided lines), or, where conv_cost.dft_by_gemm says it is cheaper
#   (few data rows or kept outputs: conv11's kernel has 11 rows of 144), one dot_general with
#   the constant DFT matrix: in the frequency-major layout the pruned axis leads, so that is a
#   single GEMM (n x e) @ (e x everything else), not a batch of small ones. `prune` below
#   decides per axis by the flop count of the recipe (conv_cost.staged_fft_flops).
#
# Constant kernels: when an operand of the transform is a compile-time constant (a kernel
# the jitted function closes over, or one of the separable rewrite's passes), its spectrum is
# evaluated here, once, by the eager kernels (`_emit`), up to MAX_FOLDED_BYTES per array.

# a folded spectrum may be larger than its kernel (n^2/k^2 times): computed once, but kept in
# the generated code, so capped
MAX_FOLDED_BYTES = 4 << 20

# a leading axis is pruned only when the recipe's flops drop below this share of the full
# transform's: the separate one-axis pass costs an extra read and write of the array
PRUNE_GAIN = 0.8


def _emit(b: Builder, prim, args: list, params: dict, source) -> Node:
    """b.apply, or (every operand a compile-time constant, the result at most MAX_FOLDED_BYTES,
    not a broadcast) the value computed now by the eager kernel, as a Const. Equal folds in
    one graph return one Const (so that equal spectra stay one node)."""
    from funconv.passes.fold import _constant, _value
    from funconv.tracing import kernel

    node = b.apply(prim, args, params, source)
    if (prim is broadcast_to_p or not args or not all(_constant(a) for a in args)
            or node.type.size * node.type.dtype.itemsize > MAX_FOLDED_BYTES):
        return node
    cache = b.__dict__.setdefault("_conv_folds", {})
    hit = cache.get(id(node))
    if hit is None:
        value = np.asarray(kernel(prim)(*[_value(a) for a in args], **params))
        if value.shape != node.type.shape or value.dtype != node.type.dtype:
            return node
        hit = cache[id(node)] = b.const(value)
    return hit


def _moved_last(r: int, axis: int) -> tuple:
    return tuple(i for i in range(r) if i != axis) + (axis,)


def _at(b: Builder, x: Node, axes: tuple, fft_type: str, lengths: tuple, source) -> Node:
    """fft_p over the array axes `axes` (in order; fft_p transforms trailing axes): moved
    last by a transpose, transformed, moved back. In NumPy both transposes are views and the
    kernel transforms in memory order, so the result keeps x's layout."""
    r = x.type.ndim
    perm = tuple(i for i in range(r) if i not in axes) + tuple(axes)
    if perm == tuple(range(r)):
        return _emit(b, fft_p, [x], {"fft_type": fft_type, "fft_lengths": lengths}, source)
    t = _emit(b, transpose_p, [x], {"perm": perm}, source)
    t = _emit(b, fft_p, [t], {"fft_type": fft_type, "fft_lengths": lengths}, source)
    return _emit(b, transpose_p, [t], {"perm": tuple(perm.index(i) for i in range(r))}, source)


def _along(b: Builder, x: Node, axis: int, fft_type: str, n: int, source) -> Node:
    """The one-axis transform of x along `axis` (a complex fft or ifft of length n)."""
    return _at(b, x, (axis,), fft_type, (n,), source)


def _dft_matrix(rows, cols, n: int, sign: int, dtype) -> np.ndarray:
    """exp(sign 2 pi i r c / n) for r in `rows`, c in `cols` (integer index arrays), the
    phase reduced mod n exactly in integers before the float64 exp, then cast to `dtype`."""
    phase = np.outer(np.asarray(rows, np.int64), np.asarray(cols, np.int64)) % n
    return np.exp(sign * 2j * np.pi * phase / n).astype(dtype)


def _dft_gemm(b: Builder, x: Node, axis: int, matrix: np.ndarray, source) -> Node:
    """x's axis `axis` (length matrix.shape[1]) replaced by matrix @ x along it (length
    matrix.shape[0]): one dot_general with a constant, then the new axis moved back. Equal
    matrices are one Const in a graph, so that equal transforms intern to one node."""
    matrix = matrix.astype(x.type.dtype)
    consts = b.__dict__.setdefault("_dft_matrices", {})
    key = (matrix.shape, matrix.dtype.str, matrix.tobytes())
    m = consts.get(key)
    if m is None:
        m = consts[key] = b.const(matrix)
    y = _emit(b, dot_general_p, [m, x], {"dimension_numbers": (((1,), (axis,)), ((), ()))},
              source)
    if axis == 0:
        return y
    perm = tuple(range(1, axis + 1)) + (0,) + tuple(range(axis + 1, x.type.ndim))
    return _emit(b, transpose_p, [y], {"perm": perm}, source)


@attrs.frozen
class FFTPlan:
    """How `_fft_lower` computes one conv_general node.

    tx: the spatial axes transformed (in order; the others, where the kernel spans one tap,
    are only placed), and per transformed axis: n, the transform size; x_offset, where x
    (dilated) sits in the period; start, the first output of the inverse that is kept (then
    every stride-th). convolution: the kernel was peeled of a flip and is used unconjugated.
    x_prune, w_prune, y_prune: the leading transformed axes (indices into tx) whose forward
    transforms of x and w, or the inverse, are pruned (see the comment above).
    """

    n: tuple
    x_offset: tuple
    start: tuple
    convolution: bool
    tx: tuple = ()
    x_prune: tuple = ()
    w_prune: tuple = ()
    y_prune: tuple = ()


def _extents(node: Apply, plan_n, offs, tx, which: str) -> tuple:
    """Per transformed axis: the placed operand's data extent in its period (x: offset plus
    dilated size; w: the dilated kernel), capped by n; for "y", the span of kept outputs."""
    p = node.params
    x, w = node.args
    out = []
    for j, i in enumerate(tx):
        if which == "x":
            e = offs[j] + dilate(x.type.shape[2 + i], p["lhs_dilation"][i])
        elif which == "w":
            e = dilate(w.type.shape[2 + i], p["rhs_dilation"][i])
        else:
            e = (node.type.shape[2 + i] - 1) * p["window_strides"][i] + 1
        out.append(max(1, min(plan_n[j], e)))
    return tuple(out)


def _choose_pruned(n: tuple, ext: tuple, inverse: bool) -> tuple:
    """The leading axes (indices into n) worth pruning: greedily, the one that lowers the
    staged flop count most while the gain stays above PRUNE_GAIN."""
    chosen: tuple = ()
    best = conv_cost.staged_fft_flops(n, ext, chosen, inverse)
    while True:
        cands = [(conv_cost.staged_fft_flops(n, ext, tuple(sorted(chosen + (j,))), inverse), j)
                 for j in range(len(n) - 1) if j not in chosen and ext[j] < n[j]]
        if not cands:
            return chosen
        flops, j = min(cands)
        if flops > PRUNE_GAIN * best:
            return chosen
        chosen, best = tuple(sorted(chosen + (j,))), flops


def fft_plan(node: Apply, kernel_flipped: bool) -> FFTPlan:
    """The transformed axes, transform sizes, offsets and pruning of `node` (see the
    comments above for the formulas)."""
    p = node.params
    x, w = node.args
    nd = w.type.ndim - 2
    kd = [dilate(w.type.shape[2 + i], p["rhs_dilation"][i]) for i in range(nd)]
    tx = tuple(i for i in range(nd) if kd[i] > 1) or tuple(range(nd))
    n, offs, starts = [], [], []
    for i in tx:
        Hd = dilate(x.type.shape[2 + i], p["lhs_dilation"][i])
        Kd = kd[i]
        a, s, L = p["padding"][i][0], p["window_strides"][i], node.type.shape[2 + i]
        R = (L - 1) * s + Kd  # xp[0:R] is what the outputs read
        if not kernel_flipped:
            n.append(fft_size(R))
            offs.append(a)
            starts.append(0)
        else:
            e = max(0, a - (Kd - 1))
            need = max(R - a + e, Hd + max(a, 0))
            # Hd + Kd - 1: the forward's R, seen from its input gradient (equal n: shared spectra)
            n.append(fft_size(max(need, Hd + Kd - 1)))
            offs.append(e)
            starts.append(Kd - 1 - a + e)
    n, offs = tuple(n), tuple(offs)
    return FFTPlan(n, offs, tuple(starts), kernel_flipped, tx,
                   _choose_pruned(n, _extents(node, n, offs, tx, "x"), False),
                   _choose_pruned(n, _extents(node, n, offs, tx, "w"), False),
                   _choose_pruned(n, _extents(node, n, offs, tx, "y"), True))


def _spectrum(b: Builder, op: _Peeled, plan: FFTPlan, placement: dict, prune: tuple,
              source) -> Node:
    """The spectrum of op.src over the transformed axes plan.tx, frequency-major: each
    spatial axis i placed by `placement[i] = (lo, hi, interior, stride)` (pad_p, then every
    stride-th sample), the spatial axes moved first (untransformed ones, then plan.tx in
    order) and the leading axes last, rfft over the transformed axes (pruned leading axes
    `prune`: over the data rows only, then padded and transformed alone), then op.ops
    replayed on the trailing axes: complex (untransformed..., n_1, ..., n_k // 2 + 1, lead...).

    Frequency-major (one layout for every spectrum): the per-frequency channel mixing reads
    each operand as contiguous (F, rows, cols) matrices and writes its result in the layout
    the inverse reads; NumPy makes the moves views, and its FFT kernel keeps the layout."""
    x = op.src
    r = x.type.ndim
    nd = len(placement)
    lead = r - nd
    keep = tuple(i for i in range(nd) if i not in plan.tx)
    order = keep + plan.tx
    perm = tuple(lead + i for i in order) + tuple(range(lead))
    if perm != tuple(range(r)):
        x = _emit(b, transpose_p, [x], {"perm": perm}, source)
    cfg = tuple(placement[i][:3] for i in order) + ((0, 0, 0),) * lead
    if any(c != (0, 0, 0) for c in cfg):
        x = _emit(b, pad_p, [x, b.literal(0, x.type.dtype)], {"config": cfg}, source)
    strides = tuple(placement[i][3] for i in order) + (1,) * lead
    if any(s != 1 for s in strides):
        x = _emit(b, slice_p, [x], {"start_indices": (0,) * r, "limit_indices": x.type.shape,
                                    "strides": strides}, source)
    k = len(plan.tx)
    first = len(keep)  # the array axis of transformed axis 0
    # the trailing run of unpruned axes is one rfft; the axes before it, one at a time
    g = conv_cost.group_start(k, prune)
    spec = _at(b, x, tuple(range(first + g, first + k)), "rfft", plan.n[g:], source)
    for j in sorted(range(g), key=lambda j: j in prune):  # unpruned first, pruned last
        a, e = first + j, spec.type.shape[first + j]
        if j in prune and conv_cost.dft_by_gemm(plan.n[j], e):
            m = _dft_matrix(range(plan.n[j]), range(e), plan.n[j], -1, np.complex128)
            spec = _dft_gemm(b, spec, a, m, source)
            continue
        if j in prune:
            pc = [(0, 0, 0)] * r
            pc[a] = (0, plan.n[j] - e, 0)
            spec = _emit(b, pad_p, [spec, b.literal(0, spec.type.dtype)], {"config": tuple(pc)},
                         source)
        spec = _along(b, spec, a, "fft", plan.n[j], source)
    for kind, param in reversed(op.ops):
        if kind == "transpose":
            # (param permutes the leading axes and keeps the spatial ones, now in front)
            perm = tuple(range(nd)) + tuple(nd + q for q in param[:len(param) - nd])
            spec = _emit(b, transpose_p, [spec], {"perm": perm}, source)
        else:
            spec = _emit(b, reshape_p, [spec], {"shape": spec.type.shape[:nd] + param}, source)
    return spec


def _mix(b: Builder, X: Node, W: Node, groups: int, source) -> Node:
    """Channel mixing per frequency: Y[f, n, o] = sum_c X[f, n, g(o)*Cg + c] W[f, o, c].

    X (freqs..., N, C), W (freqs..., O, Cg) -> Y (freqs..., N, O); W may have size 1 along
    leading freqs axes (an untransformed axis: the kernel's one tap), broadcast. One batched
    complex GEMM over (frequency, group) with the frequencies leading (groups: block-diagonal
    mixing), which NumPy runs on the spectra in place: (F, N, C) @ (F, C, O) with no copy in
    or out (the strided (N, C, F) layout cost 4.9 ms against 1.1-1.8 ms for conv11's 9940
    frequencies of (4 x 8) @ (8 x 8), measured on 2 loaded cores). A broadcast product when
    Cg == 1 (depthwise, or a weight gradient of batch 1): NumPy's batched matmul of 1-deep
    products was ~10x slower than the product (measured, 2 cores: 13 ms vs 1.5 ms for 300k
    8x1x1).

    Not done (measured, NumPy 2.4, 2 cores): the real GEMM of doubled size on stacked
    real/imaginary parts ([[a, -b], [b, a]] blocks on the interleaved float view) ran 0.6-0.7
    ms against 1.1 ms for the complex one, but building the block operand took 1.2 ms.
    """
    nf = X.type.ndim - 2
    N, C = X.type.shape[nf:]
    O, Cg = W.type.shape[nf:]
    freqs = X.type.shape[:nf]
    if W.type.shape[:nf] != freqs:
        W = _emit(b, broadcast_to_p, [W], {"shape": freqs + (O, Cg)}, source)
    F, G = math.prod(freqs), groups
    Og = O // G
    if Cg == 1:
        # the product with the frequencies innermost (long contiguous loops; views in NumPy)
        full = (N, G, Og, F)
        xr = _emit(b, reshape_p, [X], {"shape": (F, N, G, 1)}, source)
        xr = _emit(b, transpose_p, [xr], {"perm": (1, 2, 3, 0)}, source)
        wr = _emit(b, reshape_p, [W], {"shape": (F, 1, G, Og)}, source)
        wr = _emit(b, transpose_p, [wr], {"perm": (1, 2, 3, 0)}, source)
        if Og != 1:
            xr = b.apply(broadcast_to_p, [xr], {"shape": full}, source)
        if N != 1:
            wr = b.apply(broadcast_to_p, [wr], {"shape": full}, source)
        y = b.apply(mul_p, [xr, wr], {}, source)
        y = b.apply(transpose_p, [y], {"perm": (3, 0, 1, 2)}, source)
    elif N == 1 and Og == 1:
        # per (frequency, group) a dot product of length Cg (a depthwise convolution's weight
        # gradient): a product summed, not (F G) 1 x Cg x 1 GEMMs (measured, dw31 of
        # bench/run.py: 6.9 ms as GEMMs, plus 3.5 ms to copy x's spectrum into their layout)
        xr = _reshaped(b, X, (F, G, Cg), source)
        wr = _reshaped(b, W, (F, G, Cg), source)
        y = b.apply(mul_p, [xr, wr], {}, source)
        y = b.apply(reduce_sum_p, [y], {"axes": (2,)}, source)
    else:
        xr = _emit(b, reshape_p, [X], {"shape": (F, N, G, Cg)}, source)
        wr = _emit(b, reshape_p, [W], {"shape": (F, G, Og, Cg)}, source)
        dims = (((3,), (3,)), ((0, 2), (0, 1)))  # contract Cg; batch (F, G) -> (F, G, N, Og)
        y = b.apply(dot_general_p, [xr, wr], {"dimension_numbers": dims}, source)
        if G != 1:
            y = b.apply(transpose_p, [y], {"perm": (0, 2, 1, 3)}, source)
    return b.apply(reshape_p, [y], {"shape": freqs + (N, O)}, source)


def _reshaped(b: Builder, x: Node, shape: tuple, source) -> Node:
    """x reshaped, a reshape of a reshape collapsed into one and an identity dropped (so
    that NumPy reshapes a transposed view once, or not at all)."""
    if isinstance(x, Apply) and x.prim is reshape_p:
        x = x.args[0]
    if x.type.shape == tuple(shape):
        return x
    return _emit(b, reshape_p, [x], {"shape": tuple(shape)}, source)


def _fft_why_not(node: Apply) -> str | None:
    if node.type.dtype.kind != "f":
        return "its operands are complex (the FFT path uses real transforms)"
    return None


def _placements(node: Apply, plan: FFTPlan) -> tuple[dict, dict]:
    """Per spatial axis, (lo, hi, interior, stride) for x and for the kernel (see _spectrum)."""
    p = node.params
    x, w = node.args
    nd = w.type.ndim - 2
    px, pw = {}, {}
    for i in range(nd):
        Hd = dilate(x.type.shape[2 + i], p["lhs_dilation"][i])
        Kd = dilate(w.type.shape[2 + i], p["rhs_dilation"][i])
        if i in plan.tx:
            j = plan.tx.index(i)
            o, nn = plan.x_offset[j], plan.n[j]
            ex = nn if j not in plan.x_prune else max(1, min(nn, o + Hd))
            ew = nn if j not in plan.w_prune else max(1, min(nn, Kd))
            px[i] = (o, ex - o - Hd, p["lhs_dilation"][i] - 1, 1)
            pw[i] = (0, ew - Kd, p["rhs_dilation"][i] - 1, 1)
        else:  # one tap: y[j] = xp[j*s] w, so xp[0:(L-1)*s+1] every s-th
            a, s, L = p["padding"][i][0], p["window_strides"][i], node.type.shape[2 + i]
            px[i] = (a, (L - 1) * s + 1 - a - Hd, p["lhs_dilation"][i] - 1, s)
            pw[i] = (0, 0, 0, 1)
    return px, pw


def _fft_lower(b: Builder, node: Apply, args: list) -> Node:
    """conv_general as pad, rfft, per-frequency channel mixing, irfft and a (strided) crop.

    x (N, C, spatial...) and w (O, C/G, window...), float32 or float64 (the spectra are
    complex64 or complex128), any number of spatial dims; the result is the node's (N, O,
    out...). Formulas: the comments above; sharing: operands are peeled (`_peel`) so that the
    three convolutions of a training step transform x, w and the cotangent once each.
    """
    p, src = node.params, node.source
    nd = node.type.ndim - 2
    xo = _peel(args[0], nd, allow_flip=False)
    wo = _peel(args[1], nd, allow_flip=True)
    plan = fft_plan(node, wo.flipped)
    px, pw = _placements(node, plan)
    X = _spectrum(b, xo, plan, px, plan.x_prune, src)
    W = _spectrum(b, wo, plan, pw, plan.w_prune, src)
    if not plan.convolution:
        W = _emit(b, conj_p, [W], {}, src)  # correlation: multiply by the conjugate spectrum
    Y = _mix(b, X, W, p["feature_group_count"], src)
    return _inverse(b, Y, plan, node, src)


def _inverse(b: Builder, Y: Node, plan: FFTPlan, node: Apply, src) -> Node:
    """The node's output from the mixed spectrum Y (untransformed..., transformed..., N, O):
    the inverse transforms (pruned leading axes first, each sliced to its kept outputs at
    once), the (strided) crop from plan.start, and the move back to (N, O, spatial...)."""
    p = node.params
    nd = node.type.ndim - 2
    k, r = len(plan.tx), Y.type.ndim
    first = r - 2 - k  # Y is (untransformed..., transformed..., N, O)
    s = p["window_strides"]
    out = node.type.shape
    y = Y
    sliced = set()
    g = conv_cost.group_start(k, plan.y_prune)
    for j in sorted(range(g), key=lambda j: j not in plan.y_prune):  # pruned first
        i = plan.tx[j]
        kept = plan.start[j] + s[i] * np.arange(out[2 + i])
        if j in plan.y_prune and conv_cost.dft_by_gemm(plan.n[j], len(kept)):
            m = _dft_matrix(kept, range(plan.n[j]), plan.n[j], 1, np.complex128) / plan.n[j]
            y = _dft_gemm(b, y, first + j, m, src)  # the kept outputs of the ifft, at once
            sliced.add(j)
            continue
        y = _along(b, y, first + j, "ifft", plan.n[j], src)
        if j in plan.y_prune:
            st, lim, sd = [0] * r, list(y.type.shape), [1] * r
            st[first + j] = plan.start[j]
            lim[first + j] = plan.start[j] + (out[2 + i] - 1) * s[i] + 1
            sd[first + j] = s[i]
            y = b.apply(slice_p, [y], {"start_indices": tuple(st), "limit_indices": tuple(lim),
                                       "strides": tuple(sd)}, src)
            sliced.add(j)
    # the rest: irfft over the trailing group (the lengths of axes already inverted drop out)
    y = _at(b, y, tuple(range(first + g, first + k)), "irfft", plan.n[g:], src)
    st, lim, sd = [0] * r, list(y.type.shape), [1] * r
    for j in range(k):
        if j not in sliced:
            i = plan.tx[j]
            st[first + j] = plan.start[j]
            lim[first + j] = plan.start[j] + (out[2 + i] - 1) * s[i] + 1
            sd[first + j] = s[i]
    if st != [0] * r or tuple(lim) != y.type.shape or any(v != 1 for v in sd):
        y = b.apply(slice_p, [y], {"start_indices": tuple(st), "limit_indices": tuple(lim),
                                   "strides": tuple(sd)}, src)
    # back to the node's axis order: (N, O, spatial...) from (untransformed..., transformed..., N, O)
    keep = tuple(i for i in range(nd) if i not in plan.tx)
    order = keep + plan.tx
    perm = (nd, nd + 1) + tuple(order.index(i) for i in range(nd))
    return b.apply(transpose_p, [y], {"perm": perm}, src)


# --- the tables -----------------------------------------------------------------------------------

def _lower_new(b: Builder, params: dict, args: list, source) -> Node:
    """A conv_general node that a rewrite emits (the passes of a separable kernel), lowered
    in turn by the same choice as every other."""
    node = b.apply(conv_general_p, args, params, source)
    return choose(node).lower(b, node, list(node.args))


DIRECT = Algorithm("direct", _always, _record("direct"))
IM2COL = Algorithm("im2col", _always, _record("im2col"),
                   cost=lambda node: conv_cost.im2col_seconds(node, conv_cost.rates()))
POINTWISE_AS_DOT = Algorithm("pointwise_as_dot", _pointwise_why_not, _pointwise_as_dot)
SEPARABLE = Algorithm("separable", separable.why_not,
                      lambda b, node, args: separable.lower(b, node, args, _lower_new))


def _fft_cost(node: Apply) -> float:
    if conv_cost.small_window(node):
        return math.inf  # conv3x3 / LeNet-sized: im2col (see conv_cost.SMALL_WINDOW)
    nd = node.type.ndim - 2
    wo = _peel(node.args[1], nd, allow_flip=True)
    plan = fft_plan(node, wo.flipped)
    N, C = node.args[0].type.shape[:2]
    O, Cg = node.args[1].type.shape[:2]
    keep = math.prod(node.type.shape[2 + i] for i in range(nd) if i not in plan.tx)
    F = keep * math.prod(plan.n[:-1]) * (plan.n[-1] // 2 + 1)
    per = {which: conv_cost.staged_fft_flops(plan.n, _extents(node, plan.n, plan.x_offset, plan.tx,
                                                              which), prune, which == "y")
           for which, prune in (("x", plan.x_prune), ("w", plan.w_prune), ("y", plan.y_prune))}
    const_w = _is_constant(wo.src)  # a constant kernel's spectrum is folded at compile time
    flops = (per["x"] * N * C + per["y"] * N * O) * keep + (0 if const_w else per["w"] * O * Cg)
    spectra = (N * C + N * O) * F + (0 if const_w else O * Cg * F // keep)
    return conv_cost.fft_seconds(node, flops, F, spectra, conv_cost.rates())


def _is_constant(node: Node) -> bool:
    from funconv.passes.fold import _constant

    return _constant(node)


FFT = Algorithm("fft", _fft_why_not, _fft_lower, cost=_fft_cost, emits=("fft",))

# overlap-save tiles (passes/tiled_fft.py): tile-sized kernel spectra, tiles batched into the
# per-frequency GEMMs; the input gradient falls back to the whole-image FFT
TILED_FFT = Algorithm("tiled_fft", tiled_fft.why_not, tiled_fft.lower, cost=tiled_fft.cost,
                      emits=("fft",))


# Winograd (passes/winograd.py): F(2x2,3x3) is costed at its measured NumPy slowdown over
# im2col, so "auto" keeps im2col unless a measured plan finds otherwise; F(4x4,3x3) (7-9x
# im2col's float32 error) only when forced.
WINOGRAD = Algorithm("winograd", winograd.why_not,
                     lambda b, node, args: winograd.lower(b, node, args, 2, _emit),
                     cost=lambda node: winograd.NUMPY_SLOWDOWN
                     * conv_cost.im2col_seconds(node, conv_cost.rates()))
WINOGRAD4 = Algorithm("winograd4", winograd.why_not,
                      lambda b, node, args: winograd.lower(b, node, args, 4, _emit))


def _helix_cost(node: Apply) -> float:
    """The 1-d convolution at its cheapest lowering plus the copies (passes/helix.py).
    Small windows stay with im2col, as for the FFT (the helix is an FFT path in disguise)."""
    if conv_cost.small_window(node):
        return math.inf
    return (helix.NUMPY_PENALTY * _auto_seconds(helix.hypothetical(node))
            + helix.copy_bytes(node) / conv_cost.rates().bandwidth)


HELIX = Algorithm("helix", helix.why_not,
                  lambda b, node, args: helix.lower(b, node, args, _lower_new, _emit),
                  cost=_helix_cost)


def _auto_seconds(node: Apply) -> float:
    """The estimated seconds of the cheapest "auto" lowering of `node` but the separable one
    (an uncosted rewrite that applies counts as free: it never loses)."""
    costs = [0.0 if a.cost is None else a.cost(node) for a in AUTO
             if a is not SEPARABLE_IF_CHEAPER and _unavailable(a) is None
             and a.why_not(node) is None]
    return min(costs)


def _separable_cost(node: Apply) -> float:
    """The row pass plus the column pass, each at its own cheapest lowering (the same model,
    on the two conv_general nodes the rewrite would build)."""
    row, col = separable.hypothetical(node)
    return _auto_seconds(row) + _auto_seconds(col)


# "auto" factors a constant kernel only where the two passes cost fewer multiplications, and
# then only where they are estimated faster than the whole kernel's cheapest lowering
SEPARABLE_IF_CHEAPER = attrs.evolve(SEPARABLE, why_not=separable.why_not_cheaper,
                                    cost=_separable_cost)

# what a user may force: every name ops/conv.py's ALGORITHMS accepts, "auto" aside (tested)
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (DIRECT, IM2COL, FFT, TILED_FFT, SEPARABLE,
                                                         HELIX, WINOGRAD, WINOGRAD4)}

# what "auto" may choose. In order: an algorithm without a cost wins when it applies (a
# rewrite that is never slower); the rest compete on their estimated cost. IM2COL computes
# every convolution, so it ends the list. SEPARABLE applies only where it saves
# multiplications (a constant kernel of low rank) and competes on the cost of its two passes
# (each at its cheapest); they are then chosen in turn.
# HELIX and WINOGRAD compete on cost too; on NumPy the model does not pick them (their
# modules say why), a measured plan (`conv_planning="measure"`, passes/plans.py) may.
AUTO: tuple[Algorithm, ...] = (POINTWISE_AS_DOT, SEPARABLE_IF_CHEAPER, FFT, TILED_FFT, HELIX, WINOGRAD,
                               IM2COL)


def _where(node: Apply) -> str:
    x, w = node.args
    at = f" (built at {node.source})" if node.source else ""
    return f"conv_general({x.type.short()}, {w.type.short()}){at}"


def choose(node: Apply) -> Algorithm:
    """The algorithm for one conv_general node: the forced one (`fc.config.conv_force_algorithm`,
    else the node's own), or for "auto" the first uncosted candidate of AUTO that applies,
    else the cheapest costed one. Raises ArgumentError when the forced one cannot compute it."""
    name = config.conv_force_algorithm or node.params.get("algorithm", "auto")
    if name == "auto":
        costed = []
        for a in AUTO:
            if _unavailable(a) is not None or a.why_not(node) is not None:
                continue
            if a.cost is None:
                plans.note(node, [plans.Candidate(a.name)], a.name, "rule")
                return a
            costed.append(a)
        # the cheapest by the model (ties: the earlier in AUTO), or by measurement
        return plans.pick(node, costed)
    algo = ALGORITHMS.get(name)
    if algo is None:
        raise ArgumentError(f"{_where(node)}: algorithm={name!r} has no lowering in "
                            f"funconv/passes/conv.py; use one of {tuple(ALGORITHMS)} or 'auto'")
    reason = _unavailable(algo) or algo.why_not(node)
    if reason is not None:
        raise ArgumentError(f"{_where(node)}: algorithm={name!r} cannot compute this "
                            f"convolution: {reason}; use algorithm='auto'")
    plans.note(node, [plans.Candidate(name)], name, "forced")
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
    with plans.recording() as notes:  # what was considered and chosen, per node
        new = rewrite(graph, _rule, "lower_convolutions", stats)
    plans.attach(new, notes)
    return new

