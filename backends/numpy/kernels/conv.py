"""The NumPy kernel of `conv_general`: im2col + GEMM (the fast engine; the reference
definition, the direct sum over kernel taps, is `conv_general_p.impl` in funconv/ops/conv.py).

The column matrix is filled chunk by chunk
(bounded memory; a call whose whole column matrix would exceed `MAX_COLUMNS_BYTES` runs
in slabs of output rows) with strided slice copies, and BLAS does the
multiplications; an input-dilated convolution is split into its stride
phases instead of multiplying by the inserted zeros. `_algorithm` picks the
column layout from the shapes: batch first (rows of the input copied as
runs, or one flat run per channel for stride-1 "same-width" convolutions),
batch last for short rows (runs of row * batch elements), a scatter form for
"full" correlations, and a weight-gradient layout for kernels larger than the
output. The "helix" alternative (no column matrix: one GEMM per kernel tap on
a shifted view of the flattened padded input, accumulated) was measured and
is not used: its GEMMs also multiply the padding columns and its
accumulation passes cost more than the copies they save (conv3x3: 11-13 ms
against 10.5 ms per convolution on the 2-core benchmark machine). Also
measured on conv3x3 and not used, because in NumPy every transform is a
separate memory-bound pass over arrays several times the input: Winograd
F(2x2,3x3) (its 16 GEMMs take 4.4-5 ms instead of 7.5, but the input and
output transforms, even as long contiguous ufunc calls, cost 5-6 ms more: 13.6
ms against 10), 3 row-tap GEMMs with K = 3C (8.8 ms against 9.5), and two
Python threads of single-threaded BLAS (no steady gain). Going below the
GEMM bound needs those transforms fused in compiled code.

The choice among these layouts is a NumPy backend choice (they are equivalent
GEMM formulations); which *algorithm* a convolution uses ("direct", "im2col",
later FFT, ...) is decided by funconv/passes/conv.py and arrives here as the
node's `algorithm` param. Imports numpy and funconv.ops (conv's primitive, its
reference impl and the shared window geometry).
"""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
from funconv.backends.numpy.kernels import register

from funconv.ops._window import dilate as _dilate
from funconv.ops._window import dilate_and_pad
from funconv.ops.conv import conv_general_p
from funconv.passes.conv_cost import rates, small_window_shapes

# Bytes of one chunk of the column matrix. Measured on a 2-core EPYC (1 MiB L2
# per core, 32 MiB L3): chunks of a few MiB stay in cache between the copy that
# builds them and the GEMM that reads them; the whole matrix (tens of MiB) does not.
_COLS_CHUNK_BYTES = 3 << 20

# The whole column matrix of a call (N * C * window * output positions elements) above this
# size is not built even chunk by chunk: the output is computed in slabs along its first
# spatial axis (`_by_slabs`), each a convolution of the input rows it reads. The chunks
# above are per image (or input channel), and one image of a long 1-d signal can be huge:
# x f32[1,16,65536] with a 1025-tap kernel needs 4.3 GB of columns.
MAX_COLUMNS_BYTES = 256 << 20

# Eager "auto" convolutions. Under jit the convolution pass records a choice on every node,
# so only eager calls arrive here with "auto". Where some window exceeds SMALL_WINDOW (not
# `small_window_shapes`), the pass chooses as it would under jit, and a choice other than im2col (FFT, tiled FFT, ...)
# runs as the compiled graph of this one convolution, cached per signature (the last
# `EAGER_CACHE_SIZE`): an eager long 1-d filter, x f32[1,16,65536] with 1025 taps, took
# 1-2 s by im2col.
# A call whose im2col GEMM would take under `EAGER_MIN_S` (at the cost model's GEMM rate)
# is not worth the ~5-20 ms of planning a new signature: it stays with im2col, so eager
# code that convolves many differently shaped small inputs compiles nothing.
EAGER_CACHE_SIZE = 64
EAGER_MIN_S = 2e-3
_EAGER: dict = {}  # signature -> compiled single-convolution Executable, or None (im2col)
_EAGER_LOCK = threading.Lock()  # (eager code may convolve from several threads)

# NOTE: a copy whose destination starts just past its source modulo 4096 bytes
# runs 3x slower on x86 ("4K aliasing": a load looks dependent on an earlier
# store to the same page offset). Heap blocks land at arbitrary page offsets,
# so the column buffers are placed half a page away from the input they copy
# (the forward's column fill: 6.3 ms aliased, 1.9 ms apart, on the 2-core box).
_PAGE = 4096


def _scratch(shape, dtype, src: np.ndarray, zero: bool = True) -> np.ndarray:
    """A new C-contiguous buffer, zeroed if `zero`, that starts half a page (mod 4096) from
    `src`'s data, 64-byte aligned: copies from src into it never 4K-alias."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = (np.zeros if zero else np.empty)(nbytes + _PAGE, np.uint8)
    want = ((src.ctypes.data & ~63) + _PAGE // 2) % _PAGE
    off = (want - raw.ctypes.data) % _PAGE
    return raw[off:off + nbytes].view(dtype).reshape(shape)


# NOTE: the column matrix is the GEMM's B operand. OpenBLAS packs it reading a
# few rows at a time; when the rows are a multiple of 4096 bytes apart (a 32x32
# image: 1024 floats) those reads collide in the cache sets and alias the pack
# buffer, and one GEMM of the conv3x3 forward took 7.4 to 11.7 ms depending on
# where malloc put the matrix. Rows padded to 512+ bytes off a page multiple:
# 7.2-7.6 ms wherever it lands (2-core box).
_ROW_SLACK = 512


def _column_matrix(lead, n: int, fill_shape, dtype, src: np.ndarray):
    """A zeroed matrix (lead..., n) for a GEMM operand, its rows padded off page multiples
    and placed away from `src` (see `_scratch`); returns it and the same memory viewed
    as `fill_shape` (the layout the column copies write)."""
    dtype = np.dtype(dtype)
    r = n * dtype.itemsize % _PAGE
    pad = 0 if _ROW_SLACK <= r <= _PAGE - _ROW_SLACK else (_ROW_SLACK - r) % _PAGE
    mat = _scratch(tuple(lead) + (n + pad // dtype.itemsize,), dtype, src)[..., :n]
    return mat, np.reshape(mat, fill_shape, copy=False)


def _tap_copies(in_sizes, small, big, small_mult, big_mult, pads):
    """The rectangles that fill the column matrix straight from the unpadded input.

    The input index of (small index a, big index b) along a dim is
    a*small_mult + b*big_mult - lo (im2col: a = kernel tap, b = output position,
    multipliers kernel dilation and stride; the weight-gradient layout swaps the
    roles). For every small index (a handful), the big indices whose input index
    is inside the input form one range, read by one strided slice. Positions
    that fall into the padding are never written: they keep the zeros of a
    column buffer allocated once per call. Returns (a, big slice, input slice)
    per small index that sees any input.
    """
    nd = len(in_sizes)
    per_dim = []
    for i in range(nd):
        opts = []
        for a in range(small[i]):
            off = a * small_mult[i] - pads[i][0]
            m = big_mult[i]
            b0 = max(0, -(off // m) if off < 0 else 0)  # first b with b*m + off >= 0
            b1 = min(big[i], (in_sizes[i] - 1 - off) // m + 1) if in_sizes[i] - 1 - off >= 0 else 0
            if b1 > b0:
                opts.append((a, slice(b0, b1), slice(b0 * m + off, (b1 - 1) * m + off + 1, m)))
        per_dim.append(opts)
    return [tuple(zip(*combo)) for combo in itertools.product(*per_dim)]


# Shortest row (elements) that the batch-first column copies handle well. NumPy's
# strided copy pays a fixed cost per contiguous run; a batch-first im2col copies
# runs of one output row (or one cotangent row, in the weight-gradient layout).
# Measured on the LeNet shapes (2-core EPYC): rows of 8 or 12 spend most of the
# time in that overhead, and the batch-last layouts (runs of row * batch) run
# them 1.6x to 1.8x faster; with rows of 24 and 32 (LeNet's first layer, conv3x3),
# the extra transposes of the batch-last layouts cost more than they save.
_SHORT_ROW = 16

# How much more column data than scatter data makes a stride-1 convolution
# multiply the input and scatter (`_conv_scatter_batch_last`) instead of
# gathering columns for the output: im2col copies C * K values per output
# position, the scatter's GEMM writes O * K per input sample and adds them back.
# Measured (2-core EPYC, 5x5 "full" correlations of 8 to 24 pixel images and
# input-dilated 3x3 to 7x7 kernels): the scatter wins 1.3x to 2.3x above a data
# ratio of 2 and loses 1.2x to 2.4x where the ratio is below 1, or where its
# adds run along a batch shorter than `_SHORT_ROW` (input dilation in the last dim).
_SCATTER_RATIO = 1.25


def _flat_tap_copies(in_sizes, out_sizes, ksp, rhs_dilation, padding):
    """The column matrix of a stride-1 convolution whose output has the input's sizes in
    every spatial dim but the first, as one flat copy per kernel tap.

    With spatial dims flattened (row-major, the same strides for input and
    output), tap k reads input position q + d for output position q, d = sum_i
    (k_i*dilation_i - lo_i) * stride_i: one contiguous run per channel and
    image, instead of one per row. The run also reads, at the positions whose
    index in a later dim i falls outside the input, a neighbouring row's sample
    (the wrap-around); those positions are zeroed after the copy ("wraps").
    Positions whose flat source lies outside the input are outside the copied
    range (they keep the column buffer's zeros). Returns (tap, output flat
    slice, input flat slice, wraps) per tap that sees any input, wraps a list
    of (spatial dim, output index slice) to zero. (The weight-gradient layout
    calls it with the roles of output and kernel positions exchanged.)
    """
    nd = len(in_sizes)
    p_in, p_out = math.prod(in_sizes), math.prod(out_sizes)
    strides = [math.prod(in_sizes[i + 1:]) for i in range(nd)]
    copies = []
    for tap in itertools.product(*(range(k) for k in ksp)):
        shift = [tap[i] * rhs_dilation[i] - padding[i][0] for i in range(nd)]
        d = sum(e * st for e, st in zip(shift, strides))
        q0, q1 = max(0, -d), min(p_out, p_in - d)
        if q1 <= q0:
            continue
        wraps = [(i, slice(0, -shift[i]) if shift[i] < 0 else slice(max(0, in_sizes[i] - shift[i]), None))
                 for i in range(1, nd) if shift[i]]
        copies.append((tap, slice(q0, q1), slice(q0 + d, q1 + d), wraps))
    return copies



@register(conv_general_p)
def conv_general_kernel(x, w, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count, algorithm="auto"):
    """`conv_general_p.impl`, fast: the GEMM layout `_algorithm` picks ("auto" and "im2col";
    passes/conv.py records the algorithm), or the reference definition for "direct"."""
    if algorithm == "direct":
        return conv_general_p.impl(x, w, window_strides=window_strides, padding=padding,
                                   lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                                   feature_group_count=feature_group_count, algorithm=algorithm)
    nd = w.ndim - 2
    if any(d > 1 for d in lhs_dilation) and any(s > 1 for s in window_strides):
        # rare: strided and input-dilated
        x = dilate_and_pad(x, lhs_dilation, ((0, 0),) * nd, 0)
        lhs_dilation = (1,) * nd
    isp, ksp = x.shape[2:], w.shape[2:]
    osp = tuple((_dilate(isp[i], lhs_dilation[i]) + padding[i][0] + padding[i][1]
                 - _dilate(ksp[i], rhs_dilation[i])) // window_strides[i] + 1 for i in range(nd))
    if (algorithm == "auto" and not small_window_shapes(w.shape, osp, rhs_dilation)
            and 2 * x.shape[0] * math.prod(w.shape) * math.prod(osp) > EAGER_MIN_S * rates().gemm):
        exe = _eager_plan(x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                          feature_group_count)
        if exe is not None:
            return exe.call(x, w)[0]
    columns = math.prod(x.shape[:2]) * math.prod(ksp) * math.prod(osp) * np.result_type(
        x.dtype, w.dtype).itemsize
    if columns > MAX_COLUMNS_BYTES and all(d == 1 for d in lhs_dilation) and max(osp, default=1) > 1:
        return _by_slabs(x, w, window_strides, padding, rhs_dilation, feature_group_count, osp,
                         columns)
    layout = _algorithm(x.shape, w.shape, osp, window_strides, padding, lhs_dilation,
                        feature_group_count)
    return layout(x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                  feature_group_count, osp)


def _eager_plan(x, w, strides, padding, lhs_dilation, rhs_dilation, G):
    """The compiled graph of this convolution as jit would lower it, or None where that is
    im2col (this kernel's own path); cached per signature (see `_EAGER`)."""
    from funconv import config

    # (the options the pass and the code generation read: a change compiles afresh)
    key = (x.shape, x.dtype.str, w.shape, w.dtype.str, strides, padding, lhs_dilation,
           rhs_dilation, G, config.conv_force_algorithm, config.conv_planning,
           config.conv_calibration, config.lanes)
    with _EAGER_LOCK:
        if key in _EAGER:
            return _EAGER[key]
    from funconv.backends.numpy import Executable

    from funconv import passes
    from funconv.staging import make_graph

    params = {"window_strides": strides, "padding": padding, "lhs_dilation": lhs_dilation,
              "rhs_dilation": rhs_dilation, "feature_group_count": G}
    graph = passes.optimize(make_graph(lambda a, b: conv_general_p(a, b, **params))(x, w))
    kept = [n for n in graph.nodes() if getattr(n, "prim", None) is conv_general_p]
    exe = None if any(n.params["algorithm"] == "im2col" for n in kept) else Executable(
        graph, name="eager_conv")
    with _EAGER_LOCK:
        while len(_EAGER) >= EAGER_CACHE_SIZE:
            _EAGER.pop(next(iter(_EAGER)))  # the oldest
        _EAGER[key] = exe
    return exe


def _by_slabs(x, w, strides, padding, rhs_dilation, G, osp, columns):
    """The convolution in slabs of output positions along the first spatial axis with more
    than one, each computed from the input rows it reads (with the padding those rows
    need), so that no call builds more than MAX_COLUMNS_BYTES of columns."""
    nd = w.ndim - 2
    i = next(j for j in range(nd) if osp[j] > 1)
    rows = max(1, MAX_COLUMNS_BYTES * osp[i] // columns)
    s, lo_pad, H = strides[i], padding[i][0], x.shape[2 + i]
    kd = _dilate(w.shape[2 + i], rhs_dilation[i])
    out = np.zeros((x.shape[0], w.shape[0]) + osp, np.result_type(x.dtype, w.dtype))
    lead = (slice(None),) * (2 + i)
    for r0 in range(0, osp[i], rows):
        r1 = min(osp[i], r0 + rows)
        lo, hi = r0 * s - lo_pad, (r1 - 1) * s + kd - lo_pad  # the input rows read: [lo, hi)
        a, b = min(max(lo, 0), H), max(min(hi, H), 0)
        if a >= b:  # the slab reads padding only: its outputs are zeros
            continue
        pads = padding[:i] + ((a - lo, hi - b),) + padding[i + 1:]
        out[lead + (slice(r0, r1),)] = conv_general_kernel(  # (im2col: never "auto" here)
            x[lead + (slice(a, b),)], w, window_strides=strides, padding=pads,
            lhs_dilation=(1,) * nd, rhs_dilation=rhs_dilation, feature_group_count=G,
            algorithm="im2col")
    return out


def _algorithm(x_shape, w_shape, osp, window_strides, padding, lhs_dilation, groups):
    """The im2col + GEMM variant for these shapes, the choice in one place.

    Without groups:
    - a stride-1 convolution that would copy more column data than a scatter
      writes (see `_SCATTER_RATIO`): the input gradient of a "valid" convolution
      (a "full" correlation, mostly padding) or of a strided one (input
      dilation) into fewer channels than it reads: `_conv_scatter_batch_last`
      multiplies the input samples only, not the zeros around or between them;
    - short rows: the batch-last layouts, whose copies read runs of row * batch
      elements (see `_SHORT_ROW`): `_conv_wgrad_batch_last` when the kernel is
      larger than the output (the weight gradient), `_conv_batch_last` otherwise.
    Input dilation otherwise: `_conv_polyphase`, which calls back for each phase.
    No copy at all where the input already is the column matrix, without padding
    or dilation: `_conv_pointwise` for 1x1 kernels (any groups), `_conv_whole_window`
    for kernels as large as the input (the weight gradient of a 1x1 conv).
    Everything else (long rows, groups, empty operands): `_conv_batch_first`.
    """
    isp, ksp = x_shape[2:], w_shape[2:]
    dilated = any(d > 1 for d in lhs_dilation)
    if not dilated and all(p == (0, 0) for p in padding) and math.prod(x_shape):
        if all(k == 1 for k in ksp) and w_shape[1] > 1:
            return _conv_pointwise
        if ksp == isp and groups == 1:
            return _conv_whole_window
    if groups == 1 and math.prod(x_shape) and math.prod(w_shape):
        P, K = math.prod(osp), math.prod(ksp)
        # column data: C * K per output position (1 / dilation of the taps meet a sample)
        # against O * K per input position for the scatter, whose adds run along the
        # batch only when the last dim is dilated; a kernel no larger than the dilation
        # gives each output phase one tap at most, which the polyphase form does best
        run = x_shape[0] * (1 if lhs_dilation[-1] > 1 else osp[-1])
        if (P >= K and all(s == 1 for s in window_strides) and run >= _SHORT_ROW
                and (not dilated or any(k > d for k, d in zip(ksp, lhs_dilation)))
                and x_shape[1] * P > _SCATTER_RATIO * w_shape[0] * math.prod(isp)
                * math.prod(lhs_dilation)):
            return _conv_scatter_batch_last
        if not dilated and P >= K and osp[-1] < _SHORT_ROW:
            return _conv_batch_last
        if not dilated and P < K and ksp[-1] < _SHORT_ROW:
            return _conv_wgrad_batch_last
    return _conv_polyphase if dilated else _conv_batch_first


def _batch_last_padded(x, padding) -> np.ndarray:
    """x (N, C, S...) as (C, S..., N), zero-padded by `padding` (negative pads crop): one copy."""
    nd = x.ndim - 2
    crop = tuple(slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0))
                 for i, (lo, hi) in enumerate(padding))
    x = x[(slice(None), slice(None)) + crop]
    sizes = tuple(x.shape[2 + i] + max(lo, 0) + max(hi, 0) for i, (lo, hi) in enumerate(padding))
    xp = np.zeros((x.shape[1],) + sizes + (x.shape[0],), x.dtype)
    inner = tuple(slice(max(lo, 0), max(lo, 0) + x.shape[2 + i])
                  for i, (lo, hi) in enumerate(padding))
    xp[(slice(None),) + inner] = x.transpose(tuple(range(1, 2 + nd)) + (0,))
    return xp


def _window(start, count, step):
    """The slice of `count` indices start, start + step, ..."""
    return slice(start, start + (count - 1) * step + 1, step)


def _conv_batch_last(x, w, strides, padding, lhs_dilation, rhs_dilation, groups, osp):
    """im2col in the batch-last layout: columns (C, window..., out..., N); groups == 1.

    The input is copied once to (C, padded spatial..., N); then one strided
    slice copy per kernel tap fills the columns with runs of (output row * N)
    elements, and one GEMM (O, C*K) @ (C*K, out*N) per chunk of output rows
    writes straight into the (O, out..., N) result, transposed to (N, O, out...)
    at the end.
    """
    nd = w.ndim - 2
    N = x.shape[0]
    O, C = w.shape[:2]
    ksp = w.shape[2:]
    K = math.prod(ksp)
    xp = _batch_last_padded(x, padding)
    wm = np.ascontiguousarray(w).reshape(O, C * K)
    row = math.prod(osp[1:]) * N  # elements of one output row (first spatial dim) of one map
    out = np.empty((O, osp[0], row), xp.dtype)
    rb = max(1, min(osp[0], _COLS_CHUNK_BYTES // max(1, C * K * row * xp.itemsize)))
    cols = _scratch((C,) + ksp + (rb,) + osp[1:] + (N,), xp.dtype, xp, zero=False)
    for r0 in range(0, osp[0], rb):
        m = min(rb, osp[0] - r0)
        if m < rb:  # the last, partial chunk: a fresh buffer, contiguous for the reshape
            cols = _scratch((C,) + ksp + (m,) + osp[1:] + (N,), xp.dtype, xp, zero=False)
        for tap in itertools.product(*(range(k) for k in ksp)):
            src = (_window(tap[0] * rhs_dilation[0] + r0 * strides[0], m, strides[0]),) + tuple(
                _window(tap[i] * rhs_dilation[i], osp[i], strides[i]) for i in range(1, nd))
            cols[(slice(None),) + tap] = xp[(slice(None),) + src]
        np.matmul(wm, cols.reshape(C * K, m * row), out=out[:, r0:r0 + m].reshape(O, m * row))
    out = out.reshape((O,) + osp + (N,))
    return np.ascontiguousarray(out.transpose((nd + 1, 0) + tuple(range(1, nd + 1))))


def _conv_scatter_batch_last(x, w, strides, padding, lhs_dilation, rhs_dilation, groups, osp):
    """A convolution as GEMM then shifted adds ("col2im", batch last); strides and groups 1.

    Z[tap, o, input position] = sum_c w[o, c, tap] x[c, input position] is one
    GEMM per chunk of taps over the input positions; each tap then adds its
    Z, shifted by the tap (and spread by the input dilation), into the output.
    For an output larger than the input (the input gradient of a "valid" or of
    a strided convolution: mostly padding, or zeros between the samples) this
    multiplies only the input samples, and the adds read runs of (row * N)
    elements.
    """
    nd = w.ndim - 2
    N = x.shape[0]
    O, C = w.shape[:2]
    isp, ksp = x.shape[2:], w.shape[2:]
    K, Pin = math.prod(ksp), math.prod(isp)
    xt = np.ascontiguousarray(x.transpose(tuple(range(1, 2 + nd)) + (0,))).reshape(C, Pin * N)
    wt = np.ascontiguousarray(np.moveaxis(w.reshape(O, C, K), 2, 0)).reshape(K * O, C)
    out = np.zeros((O,) + osp + (N,), xt.dtype)
    every = (slice(None),)
    # input sample p meets output q = p*lhs_dilation + lo - tap*rhs_dilation: per tap, the
    # range of p where q is inside the output (q steps by the input dilation)
    copies = _tap_copies(osp, ksp, isp, tuple(-d for d in rhs_dilation), lhs_dilation,
                         tuple((-lo, -hi) for lo, hi in padding))
    flat = {tap: i for i, tap in enumerate(itertools.product(*(range(k) for k in ksp)))}
    tb = max(1, min(K, _COLS_CHUNK_BYTES // max(1, O * Pin * N * xt.itemsize)))
    for t0 in range(0, K, tb):
        z = np.matmul(wt[t0 * O:(t0 + tb) * O], xt).reshape((-1, O) + isp + (N,))
        for tap, src, dst in copies:
            if t0 <= flat[tap] < t0 + tb:
                out[every + dst] += z[(flat[tap] - t0,) + every + src]
    return np.ascontiguousarray(out.transpose((nd + 1, 0) + tuple(range(1, nd + 1))))


def _conv_wgrad_batch_last(x, w, strides, padding, lhs_dilation, rhs_dilation, groups, osp):
    """A convolution whose kernel is larger than its output (the weight gradient), batch
    last; groups == 1.

    The VJP passes the input with batch and channels exchanged, (C, N, S...),
    and the cotangent as the kernel, (O, N, k...): the contraction runs over
    N and the kernel positions. The input is copied once to (C, padded S...,
    N); for each (small) output position one strided slice copy takes the
    window it sees, runs of (kernel row * N) elements, into columns
    (out positions, C, k... * N); one GEMM per chunk of positions against the
    kernel as (k... * N, O) gives the (out, C, O) result.
    """
    nd = w.ndim - 2
    B, F = x.shape[:2]  # the batch (the forward's channels) and the features (its batch)
    O = w.shape[0]
    ksp = w.shape[2:]
    KF = math.prod(ksp) * F
    xp = _batch_last_padded(x.transpose((1, 0) + tuple(range(2, 2 + nd))), padding)  # (B, S..., F)
    wm = np.ascontiguousarray(w.transpose(tuple(range(2, 2 + nd)) + (1, 0))).reshape(KF, O)
    positions = list(itertools.product(*(range(p) for p in osp)))
    pb = max(1, min(len(positions), _COLS_CHUNK_BYTES // max(1, B * KF * xp.itemsize)))
    out = np.empty((len(positions), B, O), xp.dtype)
    for p0 in range(0, len(positions), pb):
        chunk = positions[p0:p0 + pb]
        cols = _scratch((len(chunk), B) + ksp + (F,), xp.dtype, xp, zero=False)
        for j, pos in enumerate(chunk):
            src = tuple(_window(pos[i] * strides[i], ksp[i], rhs_dilation[i]) for i in range(nd))
            cols[j] = xp[(slice(None),) + src]
        np.matmul(cols.reshape(len(chunk) * B, KF), wm, out=out[p0:p0 + len(chunk)].reshape(-1, O))
    return np.ascontiguousarray(out.transpose(1, 2, 0)).reshape((B, O) + osp)


def _fill_columns(cols, xs, chunk: slice, copies, flat: bool) -> None:
    """Copy the chunk `xs[:, :, chunk]` into the column buffer `cols`, one copy per entry of
    `copies` (from `_tap_copies`, or `_flat_tap_copies` when `flat`).

    Both layouts of `_conv_batch_first` share this: cols is (G, B) + A + (chunk,) + C and
    the copies index A, then C (flattened, with the wrapped-around entries zeroed, when
    `flat`).
    """
    every = (slice(None),)
    nd = (cols.ndim - 3) // 2  # A and C have one entry per spatial dim
    if flat:
        flat_cols = np.reshape(cols, cols.shape[:cols.ndim - nd] + (-1,), copy=False)
        for a, dst, src, wraps in copies:
            flat_cols[every * 2 + a + every + (dst,)] = xs[:, :, chunk, src]
            for i, wrapped in wraps:
                cols[every * 2 + a + every * (1 + i) + (wrapped,)] = 0
    else:
        for a, dst, src in copies:
            cols[every * 2 + a + every + dst] = xs[every * 2 + (chunk,) + src]


def _conv_pointwise(x, w, strides, padding, lhs_dilation, rhs_dilation, G, osp):
    """A 1x1 convolution without padding: the (strided) input is already the column
    matrix, so one GEMM (O/G, C/G) @ (C/G, out positions) per image and group."""
    N, C = x.shape[:2]
    xs = x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)]
    out = np.matmul(w.reshape(G, w.shape[0] // G, C // G),
                    xs.reshape(N, G, C // G, math.prod(osp)))
    return out.reshape((N, w.shape[0]) + osp)


def _conv_whole_window(x, w, strides, padding, lhs_dilation, rhs_dilation, G, osp):
    """A kernel as large as the unpadded input (one output position): a contraction over
    channels and positions, summed per image, out[b, o] = sum_c x[b, c, :] . w[o, c, :]
    (the weight gradient of a 1x1 conv, where c is the batch: transposed views of
    contiguous arrays, so no copy)."""
    B, C = x.shape[:2]
    O = w.shape[0]
    xm = x.reshape(B, C, -1).transpose(1, 0, 2)  # (C, B, S)
    wm = w.reshape(O, C, -1).transpose(1, 2, 0)  # (C, S, O)
    # the per-c products (c, B, O) in chunks of bounded size, summed as they come
    cb = max(1, _COLS_CHUNK_BYTES // max(1, B * O * np.result_type(x, w).itemsize))
    out = sum(np.matmul(xm[c0:c0 + cb], wm[c0:c0 + cb]).sum(axis=0) for c0 in range(0, C, cb))
    return np.asarray(out).reshape((B, O) + osp)


def _conv_batch_first(x, w, window_strides, padding, lhs_dilation, rhs_dilation, G, osp):
    """im2col + GEMM in the batch-first layout: the column matrix is copied chunk by chunk
    from the input, BLAS multiplies.

    The column matrix is filled by one strided slice copy per kernel tap (or per
    output position), straight from the unpadded input: no padded copy of the
    input is made, the padding stays the zeros of the column buffer. Two layouts,
    chosen so that those copies read long runs of the input:
    - output larger than the kernel (forward, input gradient): columns
      (Cg * window, images of the chunk * output positions), one GEMM per
      chunk of images (small images batch into one big GEMM);
    - kernel larger than the output (the weight gradient, whose "kernel" is
      the cotangent image and whose output is the small kernel): columns
      (output positions, Cg * window) per chunk of input channels, the GEMM
      accumulating over the chunks.
    """
    nd = w.ndim - 2
    N = x.shape[0]
    O, Cg = w.shape[:2]
    Og = O // G
    isp, ksp = x.shape[2:], w.shape[2:]
    K, P = math.prod(ksp), math.prod(osp)
    dtype = np.result_type(x.dtype, w.dtype)
    if N * O * P * Cg * K == 0:  # an empty operand: nothing to multiply
        return np.zeros((N, O) + osp, dtype)
    xg = x.reshape((N, G, Cg) + isp)
    item = np.dtype(dtype).itemsize
    if P >= K:
        # columns (G, Cg, window..., chunk, out...) -> one GEMM per chunk:
        # (G, Og, Cg*K) @ (G, Cg*K, chunk*P); many small images make one big GEMM
        wm = np.ascontiguousarray(w).reshape(G, Og, Cg * K)
        # stride 1 and the output as wide as the input (a "SAME" convolution): one flat copy
        # per tap and channel instead of one per row (see _flat_tap_copies)
        flat = all(s == 1 for s in window_strides) and osp[1:] == isp[1:]
        if flat:
            copies = _flat_tap_copies(isp, osp, ksp, rhs_dilation, padding)
            xs = xg.reshape(N, G, Cg, -1).transpose(1, 2, 0, 3)  # (G, Cg, N, flat spatial)
        else:
            copies = _tap_copies(isp, ksp, osp, rhs_dilation, window_strides, padding)
            xs = xg.transpose((1, 2, 0) + tuple(range(3, 3 + nd)))  # (G, Cg, N, spatial...): a view
        nb = max(1, min(N, _COLS_CHUNK_BYTES // max(1, G * Cg * K * P * item)))
        out = np.empty((N, G, Og, P), dtype)
        for n0 in range(0, N, nb):
            m = min(nb, N - n0)
            if n0 == 0 or m < nb:  # the last chunk may be partial: a buffer of its own size
                mat, cols = _column_matrix((G, Cg * K), m * P, (G, Cg) + ksp + (m,) + osp,
                                           dtype, x)
            _fill_columns(cols, xs, slice(n0, n0 + m), copies, flat)
            if m == 1:  # (G, Og, P) is already out[n0]'s layout
                np.matmul(wm, mat, out=out[n0])
            else:
                res = np.matmul(wm, mat)
                out[n0:n0 + m] = res.reshape(G, Og, m, P).transpose(2, 0, 1, 3)
        return out.reshape((N, O) + osp)
    # columns (G, N, out..., chunk, window...) -> GEMM (G, Og, chunk*K) @ (G, chunk*K, N*P),
    # accumulated over the chunks of input channels
    # the flat copies of the other layout, roles exchanged: output positions are the
    # "taps", kernel positions the "outputs" (no kernel dilation: the forward stride)
    flat = all(d == 1 for d in rhs_dilation) and ksp[1:] == isp[1:]
    if flat:
        copies = _flat_tap_copies(isp, ksp, osp, window_strides, padding)
        xt = xg.reshape(N, G, Cg, -1).transpose(1, 0, 2, 3)  # (G, N, Cg, flat spatial)
    else:
        copies = _tap_copies(isp, osp, ksp, window_strides, rhs_dilation, padding)
        xt = xg.transpose((1, 0, 2) + tuple(range(3, 3 + nd)))  # (G, N, Cg, spatial...): a view
    cb = max(1, min(Cg, _COLS_CHUNK_BYTES // max(1, G * N * P * K * item)))
    acc = None
    for c0 in range(0, Cg, cb):
        m = min(cb, Cg - c0)
        if c0 == 0 or m < cb:  # the last chunk may be partial: a buffer of its own size
            mat, cols = _column_matrix((G, N * P), m * K, (G, N) + osp + (m,) + ksp, dtype, x)
        _fill_columns(cols, xt, slice(c0, c0 + m), copies, flat)
        # the kernel's chunk as a (G, Og, m*K) view when its layout allows (no copy of a
        # transposed cotangent, which is what the weight gradient passes here)
        wc = w[:, c0:c0 + m].reshape(G, Og, m * K)
        prod = np.matmul(wc, mat.transpose(0, 2, 1))
        if acc is None:
            acc = prod
        else:
            acc += prod
    return acc.reshape(G, Og, N, P).transpose(2, 0, 1, 3).reshape((N, O) + osp)


def _conv_polyphase(x, w, strides, padding, lhs_dilation, rhs_dilation, G, osp):
    """A stride-1 convolution of an input dilated by d (the transposed convolution,
    and the input gradient of a strided one) without multiplying by the inserted zeros.

    Along a dim, the outputs p = r + d*t of one phase r only meet the kernel taps k
    with (r - lo + k*rhs_dilation) % d == 0: those taps form a sub-kernel w[k0::step]
    that slides over the undilated input with dilation rhs_dilation*step/d. So each
    phase is an ordinary convolution of x, written into out[..., r::d]; together the
    phases do the useful multiplications only (1/d per dim of the zero-filled ones).
    """
    nd = w.ndim - 2
    isp, ksp = x.shape[2:], w.shape[2:]
    out = np.zeros((x.shape[0], w.shape[0]) + osp, np.result_type(x.dtype, w.dtype))
    phases = []  # per dim: (output slice, kernel slice, padding pair, dilation) of each phase
    for i in range(nd):
        d, rd, lo = lhs_dilation[i], rhs_dilation[i], padding[i][0]
        step = d // math.gcd(rd, d)
        dim = []
        for r in range(min(d, osp[i])):
            k0 = next((k for k in range(min(step, ksp[i])) if (r - lo + k * rd) % d == 0), None)
            if k0 is None:
                continue  # no tap of this phase meets an input sample: its outputs stay zero
            m = len(range(k0, ksp[i], step))
            off = (r - lo + k0 * rd) // d
            sub_rd = rd * step // d
            T = len(range(r, osp[i], d))
            dim.append((slice(r, None, d), slice(k0, None, step),
                        (-off, T + (m - 1) * sub_rd - isp[i] + off), sub_rd))
        phases.append(dim)
    for combo in itertools.product(*phases):
        o_sl, k_sl, pads, dils = zip(*combo)
        sub = w[(slice(None), slice(None)) + k_sl]
        out[(slice(None), slice(None)) + o_sl] = conv_general_kernel(  # (im2col, not "auto")
            x, sub, window_strides=(1,) * nd, padding=pads, lhs_dilation=(1,) * nd,
            rhs_dilation=dils, feature_group_count=G, algorithm="im2col")
    return out

