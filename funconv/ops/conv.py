"""Convolution: the general dilated convolution primitive `conv_general` and the
user-facing wrappers `conv` (PyTorch's options, JAX's `dimension_numbers`
layouts), `conv_transpose` (PyTorch's) and `conv_general_dilated` (JAX's).

One primitive covers every convolution of a training step (in the spirit of
`lax.conv_general_dilated`):

    out[n, o, p] = sum_{c, k} xd[n, g(o)*Cg + c, p*stride + k*rhs_dilation] * w[o, c, k]

where `xd` is the input dilated by `lhs_dilation` (zeros inserted between
samples: the transposed convolution) and padded by `padding` (one `(lo, hi)`
pair per spatial dim; negative pads crop), `g(o) = o // (O / groups)` and
`Cg = C / groups`. Layouts: input N C spatial..., kernel O (C/groups)
spatial..., output N O spatial... (cross-correlation, as in every deep-learning
framework; 1-d, 2-d, 3-d, any number of spatial dims really).

Its VJPs are again `conv_general` applications (so second derivatives work
and a later rewrite pass sees every convolution of a training step, forward
and backward, as one kind of node):
- input cotangent: the cotangent convolved with the kernel flipped in space
  and with in/out channels swapped per group; the forward stride becomes the
  input dilation and the forward input dilation becomes the stride;
- weight cotangent: a correlation of the input with the cotangent, batch and
  channel axes exchanged (groups folded into the channel axis so that it is
  again a grouped convolution); the forward stride becomes the kernel
  dilation and the kernel dilation becomes the stride.

The NumPy impl is im2col + GEMM: the column matrix is filled chunk by chunk
(bounded memory) with strided slice copies, and BLAS does the
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
GEMM bound needs those transforms fused in compiled code. Imports ops._core,
ops.shape, primitive, types and errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops._core import asarray, operand, per_dim, to_dtype
from funconv.primitive import Primitive
from funconv.types import DEFAULT_FLOAT, ArrayType, is_inexact, result_type

# Bytes of one chunk of the column matrix. Measured on a 2-core EPYC (1 MiB L2
# per core, 32 MiB L3): chunks of a few MiB stay in cache between the copy that
# builds them and the GEMM that reads them; the whole matrix (tens of MiB) does not.
_COLS_CHUNK_BYTES = 3 << 20

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

# --- the primitive: shape rule ----------------------------------------------------------


def _dilate(size: int, d: int) -> int:
    return 0 if size == 0 else (size - 1) * d + 1


def _params_str(window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count) -> str:
    return (f"window_strides={window_strides}, padding={padding}, lhs_dilation={lhs_dilation}, "
            f"rhs_dilation={rhs_dilation}, feature_group_count={feature_group_count}")


def _conv_rule(x: ArrayType, w: ArrayType, *, window_strides, padding, lhs_dilation,
               rhs_dilation, feature_group_count) -> ArrayType:
    ps = _params_str(window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count)
    where = f"conv_general({x.short()}, {w.short()}; {ps})"
    if x.dtype != w.dtype:
        raise DTypeError(f"{where}: operand dtypes differ; convert one with .astype() first")
    if not is_inexact(x.dtype):
        raise DTypeError(f"{where}: convolution needs float or complex operands; "
                         "convert with .astype(fc.float32)")
    nd = w.ndim - 2
    if nd < 1 or x.ndim != w.ndim:
        raise ShapeError(f"{where}: input (N, C, spatial...) and kernel (O, C/groups, "
                         "spatial...) need the same rank, at least 3")
    for name, v in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                    ("rhs_dilation", rhs_dilation), ("padding", padding)):
        if len(v) != nd:
            raise ShapeError(f"{where}: {name} needs one entry per spatial dim ({nd})")
    if any(s < 1 for s in window_strides + lhs_dilation + rhs_dilation):
        raise ShapeError(f"{where}: strides and dilations must be positive")
    g = feature_group_count
    if g < 1 or w.shape[0] % g:
        raise ShapeError(f"{where}: feature_group_count={g} must divide the kernel's "
                         f"{w.shape[0]} output channels")
    if x.shape[1] != g * w.shape[1]:
        raise ShapeError(f"{where}: the input has {x.shape[1]} channels but the kernel expects "
                         f"feature_group_count * kernel.shape[1] = {g} * {w.shape[1]} = "
                         f"{g * w.shape[1]}")
    out = []
    for i in range(nd):
        padded = _dilate(x.shape[2 + i], lhs_dilation[i]) + padding[i][0] + padding[i][1]
        window = _dilate(w.shape[2 + i], rhs_dilation[i])
        if window < 1 or padded < window:
            raise ShapeError(f"{where}: along spatial dim {i} the (dilated) kernel spans "
                             f"{window} but the (dilated, padded) input has only {padded}; "
                             "pad more, or use a smaller kernel or dilation")
        out.append((padded - window) // window_strides[i] + 1)
    return ArrayType((x.shape[0], w.shape[0]) + tuple(out), x.dtype)


# --- the primitive: NumPy impl (im2col + GEMM) ------------------------------------------


def _dilate_and_pad(x: np.ndarray, lhs_dilation, padding) -> np.ndarray:
    """x (N, C, S...) dilated by `lhs_dilation` and padded with zeros (negative pads crop).

    Returns x itself when there is nothing to do; otherwise one new zero array
    with x scattered into it (a view of it, when a pad is negative).
    """
    nd = x.ndim - 2
    if all(d == 1 for d in lhs_dilation) and all(p == (0, 0) for p in padding):
        return x
    sizes, inner, crop = [], [], []
    for i in range(nd):
        lo, hi = padding[i]
        dil = _dilate(x.shape[2 + i], lhs_dilation[i])
        sizes.append(max(lo, 0) + dil + max(hi, 0))
        inner.append(slice(max(lo, 0), max(lo, 0) + dil, lhs_dilation[i]))
        crop.append(slice(max(-lo, 0), sizes[-1] - max(-hi, 0)))
    xp = np.zeros(x.shape[:2] + tuple(sizes), x.dtype)
    xp[(slice(None), slice(None)) + tuple(inner)] = x
    return xp[(slice(None), slice(None)) + tuple(crop)]


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


def _conv_impl(x, w, *, window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count):
    """The NumPy impl: the algorithm `_algorithm` picks."""
    nd = w.ndim - 2
    if any(d > 1 for d in lhs_dilation) and any(s > 1 for s in window_strides):
        x = _dilate_and_pad(x, lhs_dilation, ((0, 0),) * nd)  # rare: strided and input-dilated
        lhs_dilation = (1,) * nd
    isp, ksp = x.shape[2:], w.shape[2:]
    osp = tuple((_dilate(isp[i], lhs_dilation[i]) + padding[i][0] + padding[i][1]
                 - _dilate(ksp[i], rhs_dilation[i])) // window_strides[i] + 1 for i in range(nd))
    algorithm = _algorithm(x.shape, w.shape, osp, window_strides, padding, lhs_dilation,
                           feature_group_count)
    return algorithm(x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                     feature_group_count, osp)


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
        out[(slice(None), slice(None)) + o_sl] = _conv_impl(
            x, sub, window_strides=(1,) * nd, padding=pads, lhs_dilation=(1,) * nd,
            rhs_dilation=dils, feature_group_count=G)
    return out


# --- the primitive: VJP (both cotangents are conv_general again) --------------------------


def _transpose_kernel(w: Array, groups: int) -> Array:
    """Kernel (O, C/G, k...) -> (C, O/G, k...), flipped in space, channels swapped per group.

    This is the kernel of the adjoint convolution (the input gradient, and
    conv_transpose).
    """
    from funconv.ops.shape import flip_p, reshape_p, transpose_p

    O, Cg = w.shape[:2]
    ksp = w.shape[2:]
    nd = len(ksp)
    w = flip_p(w, axes=tuple(range(2, 2 + nd)))
    if groups == 1:
        return transpose_p(w, perm=(1, 0) + tuple(range(2, 2 + nd)))
    w = reshape_p(w, shape=(groups, O // groups, Cg) + ksp)
    w = transpose_p(w, perm=(0, 2, 1) + tuple(range(3, 3 + nd)))
    return reshape_p(w, shape=(groups * Cg, O // groups) + ksp)


def _conv_vjp(ct, out, x, w, *, window_strides, padding, lhs_dilation, rhs_dilation,
              feature_group_count):
    from funconv.ops.shape import reshape_p, transpose_p

    G = feature_group_count
    nd = w.ndim - 2
    sp = tuple(range(2, 2 + nd))
    N, Cg = x.shape[0], w.shape[1]
    in_dil = [_dilate(x.shape[2 + i], lhs_dilation[i]) for i in range(nd)]
    k_dil = [_dilate(w.shape[2 + i], rhs_dilation[i]) for i in range(nd)]
    out_dil = [_dilate(ct.shape[2 + i], window_strides[i]) for i in range(nd)]

    # input cotangent: "full" correlation of ct (dilated by the stride) with the
    # transposed kernel; the padding makes the result exactly x's size (it crops
    # the input positions a floor-rounded forward never read).
    lo_x = [k_dil[i] - 1 - padding[i][0] for i in range(nd)]
    pad_x = tuple((lo_x[i], in_dil[i] + k_dil[i] - 1 - out_dil[i] - lo_x[i]) for i in range(nd))
    x_ct = conv_general_p(ct, _transpose_kernel(w, G), window_strides=tuple(lhs_dilation),
                          padding=pad_x, lhs_dilation=tuple(window_strides),
                          rhs_dilation=tuple(rhs_dilation), feature_group_count=G)

    # weight cotangent: the input's channels become the batch and its batch the
    # features (groups folded in front: feature g*N + n), the cotangent becomes
    # the kernel; the output (Cg, O, k...) is transposed back to (O, Cg, k...).
    if G == 1:
        lhs = transpose_p(x, perm=(1, 0) + sp)
    else:
        lhs = reshape_p(x, shape=(N, G, Cg) + x.shape[2:])
        lhs = transpose_p(lhs, perm=(2, 1, 0) + tuple(range(3, 3 + nd)))
        lhs = reshape_p(lhs, shape=(Cg, G * N) + x.shape[2:])
    rhs = transpose_p(ct, perm=(1, 0) + sp)
    pad_w = tuple((padding[i][0], out_dil[i] - in_dil[i] + k_dil[i] - padding[i][0] - 1)
                  for i in range(nd))
    w_ct = conv_general_p(lhs, rhs, window_strides=tuple(rhs_dilation), padding=pad_w,
                          lhs_dilation=tuple(lhs_dilation), rhs_dilation=tuple(window_strides),
                          feature_group_count=G)
    w_ct = transpose_p(w_ct, perm=(1, 0) + sp)
    return x_ct, w_ct


conv_general_p = Primitive("conv_general", _conv_rule, _conv_impl, _conv_vjp)

# --- wrappers -----------------------------------------------------------------------------

_ALGORITHMS = ("auto", "direct", "im2col")


def _operands(opname, x, w):
    """Both operands as Arrays of one float (or complex) dtype."""
    x, w = operand(x, opname), operand(w, opname)
    x = x if isinstance(x, Array) else asarray(x)
    w = w if isinstance(w, Array) else asarray(w)
    dt = result_type(x.dtype, w.dtype)
    if not is_inexact(dt):
        dt = DEFAULT_FLOAT
    return to_dtype(x, dt), to_dtype(w, dt)


def _explicit_padding(padding, nd: int, opname: str, where: str):
    """int, per-dim ints or per-dim (lo, hi) pairs -> tuple of (lo, hi) pairs."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return ((int(padding), int(padding)),) * nd
    try:
        items = tuple(padding)
    except TypeError:
        items = None
    if items is not None and len(items) == nd:
        out = []
        for p in items:
            if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
                out.append((int(p), int(p)))
                continue
            try:
                lo, hi = p
            except (TypeError, ValueError):
                break
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi)):
                break
            out.append((int(lo), int(hi)))
        else:
            return tuple(out)
    raise ShapeError(f"{where}: padding must be 'SAME', 'VALID', an int, {nd} ints or {nd} "
                     f"(lo, hi) pairs (one per spatial dim), got {padding!r}")


def _same_padding(in_sizes, windows, strides):
    """JAX/TF "SAME": output = ceil(input / stride), the extra padding on the high side."""
    pads = []
    for n, k, s in zip(in_sizes, windows, strides):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _padding(padding, in_sizes, windows, strides, opname, where):
    nd = len(in_sizes)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * nd
        if mode == "SAME":
            return _same_padding(in_sizes, windows, strides)
        raise ShapeError(f"{where}: unknown padding {padding!r}; use 'SAME', 'VALID', an int, "
                         "per-dim ints or per-dim (lo, hi) pairs")
    return _explicit_padding(padding, nd, opname, where)


def _check_kernel(opname, x: Array, w: Array, groups, x_channels_name="input"):
    """Rank and group checks shared by conv and conv_transpose, in the user's terms."""
    if w.ndim < 3:
        raise ShapeError(f"{opname}: the kernel {w.aval.short()} must be (out_channels, "
                         "in_channels/groups, spatial...) with at least one spatial dim")
    if x.ndim != w.ndim:
        raise ShapeError(f"{opname}: {x_channels_name} {x.aval.short()} and kernel "
                         f"{w.aval.short()} must have the same rank: (N, C, spatial...) and "
                         "(O, C/groups, spatial...); add a batch axis with x[None] if it is missing")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ArgumentError(f"{opname}: groups must be a positive int, got {groups!r}")


# PyTorch's padding_mode -> fc.pad's mode
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}


def _layout_perms(opname, dimension_numbers, nd: int):
    """JAX's `dimension_numbers=(lhs, rhs, out)` specs, e.g. ("NHWC", "HWIO", "NHWC"), ->
    the permutations taking x and w to (N, C, spatial...) and (O, I, spatial...), and the
    one taking the (N, O, spatial...) result to `out`'s layout.

    As in `jax.lax.conv_general_dilated`, spatial dims are matched by letter and come
    in the kernel spec's order, which is also the order of stride, padding and dilation.
    """
    where = f"{opname}(dimension_numbers={dimension_numbers!r})"
    try:
        lhs, rhs, out = dimension_numbers
        ok = all(isinstance(spec, str) for spec in (lhs, rhs, out))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArgumentError(f"{where}: expected three layout strings (lhs, rhs, out) as in JAX, "
                            "e.g. ('NHWC', 'HWIO', 'NHWC')")
    spatial = "".join(c for c in rhs if c not in "OI")
    for spec, fixed in ((lhs, "NC"), (rhs, "OI"), (out, "NC")):
        if (len(spec) != nd + 2 or len(set(spec)) != len(spec) or not set(fixed) <= set(spec)
                or sorted(c for c in spec if c not in fixed) != sorted(spatial)):
            raise ArgumentError(
                f"{where}: the spec {spec!r} must have {nd + 2} distinct letters: {fixed[0]!r}, "
                f"{fixed[1]!r} and the kernel spec's spatial letters {spatial!r} (the kernel "
                f"has {nd} spatial dims)")
    lhs_perm = tuple(lhs.index(c) for c in "NC" + spatial)
    rhs_perm = tuple(rhs.index(c) for c in "OI" + spatial)
    out_perm = tuple(("NC" + spatial).index(c) for c in out)  # (N, C, spatial...) -> out
    return lhs_perm, rhs_perm, out_perm


def _in_layout(opname, dimension_numbers, x, w, groups, call) -> Array:
    """`call(x, w)` (operands (N, C, spatial...) and (O, I, spatial...), result (N, O,
    spatial...)) applied to operands and result in JAX's `dimension_numbers` layout."""
    from funconv.ops.shape import transpose

    x, w = _operands(opname, x, w)
    if x.ndim != w.ndim:
        _check_kernel(opname, x, w, groups)
    x_perm, w_perm, out_perm = _layout_perms(opname, dimension_numbers, w.ndim - 2)
    try:
        y = call(transpose(x, x_perm), transpose(w, w_perm))
    except ShapeError as e:
        raise ShapeError(f"{opname}({x.aval.short()}, {w.aval.short()}, dimension_numbers="
                         f"{dimension_numbers!r}), in the (N, C, spatial...) and (O, I, "
                         f"spatial...) layout: {e}") from None
    return transpose(y, out_perm)


def conv(x, w, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         dimension_numbers=None, algorithm="auto") -> Array:
    """N-d convolution (cross-correlation, as in PyTorch's conv2d and JAX's conv).

    Args:
        x: input (N, C, spatial...); the number of spatial dims is `w.ndim - 2`.
        w: kernel (O, C/groups, window...).
        stride: int or one int per spatial dim.
        padding: "SAME" (output = ceil(input / stride), as JAX/TF: the odd
            extra pad on the high side), "VALID" (none), an int, one int per
            spatial dim, or one `(lo, hi)` pair per spatial dim (negative crops).
        dilation: kernel dilation, int or per dim.
        groups: feature groups: C and O must be divisible by it (depthwise:
            groups == C).
        padding_mode: what the padding holds, as PyTorch's `Conv2d(padding_mode=)`:
            "zeros", "reflect", "replicate" or "circular".
        dimension_numbers: other layouts, as JAX's `conv_general_dilated`: three
            strings (input, kernel, output), e.g. `("NHWC", "HWIO", "NHWC")`. Per-dim
            arguments follow the kernel spec's spatial order. None means
            ("NC...", "OI...", "NC...").
        algorithm: "auto", "direct" or "im2col" (all im2col + GEMM for now).

    Returns:
        (N, O, out...), with out = (in + lo + hi - dilation*(k - 1) - 1) // stride + 1.
        Add a bias yourself: `conv(x, w) + b[:, None, None]`.
    """
    if dimension_numbers is not None:
        return _in_layout("conv", dimension_numbers, x, w, groups, lambda x, w: conv(
            x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
            padding_mode=padding_mode, algorithm=algorithm))
    if padding_mode not in _PADDING_MODES:
        raise ArgumentError(f"conv: unknown padding_mode {padding_mode!r}; use one of "
                            f"{tuple(_PADDING_MODES)}")
    if algorithm not in _ALGORITHMS:
        if algorithm in ("fft", "tiled_fft", "helix", "separable"):
            raise NotImplementedError(f"conv: algorithm={algorithm!r} comes with the convolution "
                                      "rewrite issue (passes/conv.py); use 'auto' or 'im2col' for now")
        raise ArgumentError(f"conv: unknown algorithm {algorithm!r}; use one of {_ALGORITHMS}")
    x, w = _operands("conv", x, w)
    _check_kernel("conv", x, w, groups)
    nd = w.ndim - 2
    strides = per_dim(stride, nd, "stride", "conv")
    dil = per_dim(dilation, nd, "dilation", "conv")
    where = (f"conv({x.aval.short()}, {w.aval.short()}, stride={stride}, padding={padding!r}, "
             f"dilation={dilation}, groups={groups})")
    O, Cg = w.shape[:2]
    if O % groups:
        raise ShapeError(f"{where}: groups={groups} does not divide the kernel's {O} output channels")
    if x.shape[1] != groups * Cg:
        hint = ""
        if x.shape[-1] == groups * Cg and nd <= 3:  # a channels-last input, as flax's
            sp = "DHW"[3 - nd:]
            hint = (f"; the input looks channels-last: pass dimension_numbers=('N{sp}C', "
                    f"'OI{sp}', 'N{sp}C') (or 'N{sp}C', '{sp}IO', 'N{sp}C' for a flax kernel)")
        raise ShapeError(f"{where}: the input has {x.shape[1]} channels but the kernel expects "
                         f"groups * kernel.shape[1] = {groups} * {Cg} = {groups * Cg} (kernel "
                         f"layout: out_channels, in_channels/groups, window...){hint}")
    windows = [_dilate(k, d) for k, d in zip(w.shape[2:], dil)]
    pads = _padding(padding, x.shape[2:], windows, strides, "conv", where)
    if padding_mode != "zeros" and any(p != (0, 0) for p in pads):
        from funconv.ops.shape import pad

        if any(lo < 0 or hi < 0 for lo, hi in pads):
            raise ArgumentError(f"{where}: padding_mode={padding_mode!r} needs non-negative "
                                f"padding, got {pads}")
        x = pad(x, ((0, 0), (0, 0)) + pads, mode=_PADDING_MODES[padding_mode])
        pads = ((0, 0),) * nd
    for i in range(nd):
        padded = x.shape[2 + i] + pads[i][0] + pads[i][1]
        if padded < windows[i]:
            raise ShapeError(f"{where}: along spatial dim {i} the kernel spans {windows[i]} "
                             f"(dilated) but the padded input has only {padded}: the output "
                             "would be empty; pad more, or use a smaller kernel")
    return conv_general_p(x, w, window_strides=strides, padding=pads, lhs_dilation=(1,) * nd,
                          rhs_dilation=dil, feature_group_count=int(groups))


def conv_transpose(y, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1) -> Array:
    """Transposed convolution ("deconvolution"): the adjoint of `x -> conv(x, w, ...)`.

    Same numbers as PyTorch's `conv_transpose2d(y, w, stride=, padding=,
    output_padding=, dilation=, groups=)` and the same weight tensor: `w` has
    conv's layout (O, I/groups, window...), `y` has O channels and the result
    I channels.

    Args:
        y: (N, O, spatial...).
        w: (O, I/groups, window...).
        stride, dilation: int or per dim, of the convolution this is the adjoint of.
        padding: that convolution's padding: an int, per-dim ints, per-dim
            `(lo, hi)` pairs, "VALID" (0) or "SAME" (the adjoint of a SAME
            convolution of an input `stride` times larger: output = in * stride).
        output_padding: int or per dim, added at the high end of each spatial
            dim to pick among the input sizes that the strided convolution maps
            to the same output size; must be < max(stride, dilation) (and
            < stride for the adjoint identity to hold).
        groups: feature groups.

    Returns:
        (N, I, out...) with out = (in - 1)*stride + dilation*(k - 1) + 1 - lo - hi
        + output_padding.
    """
    y, w = _operands("conv_transpose", y, w)
    _check_kernel("conv_transpose", y, w, groups, "y")
    nd = w.ndim - 2
    strides = per_dim(stride, nd, "stride", "conv_transpose")
    dil = per_dim(dilation, nd, "dilation", "conv_transpose")
    opad = per_dim(output_padding, nd, "output_padding", "conv_transpose", minimum=0)
    where = (f"conv_transpose({y.aval.short()}, {w.aval.short()}, stride={stride}, "
             f"padding={padding!r}, output_padding={output_padding}, dilation={dilation}, "
             f"groups={groups})")
    O = w.shape[0]
    if O % groups:
        raise ShapeError(f"{where}: groups={groups} does not divide the kernel's {O} channels "
                         "(dim 0)")
    if y.shape[1] != O:
        raise ShapeError(f"{where}: y has {y.shape[1]} channels but the kernel's dim 0 is {O}: "
                         "conv_transpose takes conv's weight layout (O, I/groups, window...) and "
                         "maps O channels to I")
    for i in range(nd):
        if opad[i] >= max(strides[i], dil[i]):
            raise ArgumentError(f"{where}: output_padding must be smaller than stride or "
                                f"dilation (as in PyTorch), got {opad[i]} in dim {i}")
    windows = [_dilate(k, d) for k, d in zip(w.shape[2:], dil)]
    if isinstance(padding, str) and padding.upper() == "SAME":
        pads = _same_padding([n * s for n, s in zip(y.shape[2:], strides)], windows, strides)
        # the extra output padding that makes the output exactly in * stride
        opad = tuple(opad[i] + y.shape[2 + i] * strides[i]
                     - ((y.shape[2 + i] - 1) * strides[i] + windows[i] - pads[i][0] - pads[i][1])
                     for i in range(nd))
    else:
        pads = _padding(padding, y.shape[2:], windows, strides, "conv_transpose", where)
    full = [(windows[i] - 1 - pads[i][0], windows[i] - 1 - pads[i][1] + opad[i]) for i in range(nd)]
    for i in range(nd):
        size = _dilate(y.shape[2 + i], strides[i]) + full[i][0] + full[i][1] - windows[i] + 1
        if size < 1:
            raise ShapeError(f"{where}: the output would have size {size} along spatial dim {i}; "
                             "use less padding")
    return conv_general_p(y, _transpose_kernel(w, int(groups)), window_strides=(1,) * nd,
                          padding=tuple(full), lhs_dilation=strides, rhs_dilation=dil,
                          feature_group_count=int(groups))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None,
                         preferred_element_type=None) -> Array:
    """`jax.lax.conv_general_dilated`: the general convolution, with JAX's signature.

    Args:
        lhs: input, (N, C, spatial...) unless `dimension_numbers` says otherwise.
        rhs: kernel, (O, C/feature_group_count, window...) likewise.
        window_strides: int or one per spatial dim.
        padding: "SAME", "SAME_LOWER" (the odd extra pad low), "VALID", or one
            `(lo, hi)` pair per spatial dim (the only form allowed with lhs_dilation,
            as in JAX).
        lhs_dilation: input dilation (zeros between samples: a transposed
            convolution without the kernel flip, as flax's ConvTranspose); None is 1.
        rhs_dilation: kernel dilation ("atrous"); None is 1.
        dimension_numbers: None or three layout strings, e.g. ("NHWC", "HWIO", "NHWC").
        feature_group_count: feature groups (depthwise: the input channels).
        batch_group_count: only 1 (JAX's grouped weight-gradient form is not supported).
        precision: accepted for compatibility; funconv on the CPU always computes at
            the operands' precision.
        preferred_element_type: if given, the dtype the operands are converted to
            (and so the result's dtype).

    Returns:
        The result in the output layout of `dimension_numbers`.
    """
    opname = "conv_general_dilated"
    if batch_group_count != 1:
        raise NotImplementedError(f"{opname}: batch_group_count={batch_group_count} (JAX's "
                                  "grouped weight-gradient form) is not supported; use "
                                  "feature_group_count, or fc.grad of a grouped conv")
    x, w = _operands(opname, lhs, rhs)
    if preferred_element_type is not None:
        dt = np.dtype(preferred_element_type)
        if not is_inexact(dt):
            raise DTypeError(f"{opname}: preferred_element_type must be a float or complex "
                             f"dtype, got {dt}")
        x, w = to_dtype(x, dt), to_dtype(w, dt)
    if dimension_numbers is not None:
        return _in_layout(opname, dimension_numbers, x, w, feature_group_count,
                          lambda x, w: conv_general_dilated(
                              x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                              feature_group_count=feature_group_count))
    _check_kernel(opname, x, w, feature_group_count)
    nd = w.ndim - 2
    strides = per_dim(window_strides, nd, "window_strides", opname)
    lhs_dil = per_dim(1 if lhs_dilation is None else lhs_dilation, nd, "lhs_dilation", opname)
    rhs_dil = per_dim(1 if rhs_dilation is None else rhs_dilation, nd, "rhs_dilation", opname)
    where = (f"{opname}({x.aval.short()}, {w.aval.short()}, window_strides={window_strides}, "
             f"padding={padding!r}, lhs_dilation={lhs_dilation}, rhs_dilation={rhs_dilation}, "
             f"feature_group_count={feature_group_count})")
    windows = [_dilate(k, d) for k, d in zip(w.shape[2:], rhs_dil)]
    if isinstance(padding, str) and any(d > 1 for d in lhs_dil):
        raise ArgumentError(f"{where}: string padding with lhs_dilation is ambiguous (JAX "
                            "refuses it too); pass one (lo, hi) pair per spatial dim, or use "
                            "fc.conv_transpose")
    if isinstance(padding, str) and padding.upper() == "SAME_LOWER":
        pads = tuple((hi, lo) for lo, hi in _same_padding(x.shape[2:], windows, strides))
    else:
        pads = _padding(padding, x.shape[2:], windows, strides, opname, where)
    return conv_general_p(x, w, window_strides=strides, padding=pads, lhs_dilation=lhs_dil,
                          rhs_dilation=rhs_dil, feature_group_count=int(feature_group_count))


__all__ = ["conv", "conv_general_dilated", "conv_general_p", "conv_transpose"]
