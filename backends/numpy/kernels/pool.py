"""The NumPy kernels of the pooling primitives `reduce_window`, `select_and_scatter_add`
and `select_and_gather` (the reference definitions, plain loops over the window taps,
are the primitives' impls in funconv/ops/pool.py).

Two fast paths, chosen in `_non_overlapping` and `_one_sample_per_window`. The fast
one for stride == window (max_pool's default, e.g. 2x2) reduces one pooled dim at a
time over contiguous or long-strided views, where NumPy runs long inner loops (see
`_stages`); `_spread` does the derivative of non-overlapping sum pooling without a
tap loop. Elsewhere the kernels loop over the window taps as the definitions do,
tracking the first maximum arithmetically (see `_first_max_tap`);
select_and_gather (second derivatives only) measured faster on that general path
and stays there. Imports numpy and funconv.ops (the pooling primitives, their
impls and the shared window geometry).
"""

from __future__ import annotations

import math

import numpy as np
from funconv.backends.numpy.kernels import register

from funconv.ops._window import dilate_and_pad
from funconv.ops.pool import (
    _identity,
    _out_sizes,
    _taps,
    reduce_window_p,
    select_and_gather_p,
    select_and_scatter_add_p,
)

# --- the non-overlapping fast path ------------------------------------------------------------


def _non_overlapping(window, strides) -> bool:
    """Whether the fast path applies: windows tile the (padded) operand without overlap.

    This is the one place that chooses between the two NumPy paths of all three
    primitives. Pooling with stride == window (max_pool's default, e.g. 2x2) is
    the common case; any padding and sizes that are not multiples are handled too
    (the trailing positions that no window covers are cropped).
    """
    return tuple(window) == tuple(strides)


def _tiles(xp, window, out_shape):
    """xp cropped to the positions windows cover, as a C-contiguous array."""
    lead = xp.ndim - len(window)
    return np.ascontiguousarray(xp[(slice(None),) * lead + tuple(
        slice(0, o * w) for o, w in zip(out_shape[lead:], window))])


def _stages(shape, window):
    """Per pooled dim, last first: the (A, w, B) shape that puts that dim's window taps on
    axis 1 of the tiled operand, whose later pooled dims are already reduced.

    Reducing one dim at a time, last dim first, and keeping the first maximum of each
    stage gives the first maximum of the whole window in row-major order (the
    lexicographically smallest tap among the maxima). For 2x2 that is one comparison
    (and one maximum) per dim over whole arrays, instead of one per tap over strided
    quarter-size slices, whose cost is NumPy's per-inner-loop overhead (inner loops
    of W/2 elements), not arithmetic.
    """
    nd = len(window)
    lead = len(shape) - nd
    outer = math.prod(shape[:lead])
    sizes = list(shape[lead:])  # tiled sizes: sizes[i] = out[i] * window[i]
    res = []
    for i in reversed(range(nd)):
        o = sizes[i] // window[i]
        if window[i] > 1:  # a 1-wide window reduces nothing
            res.append((outer * math.prod(sizes[:i]) * o, window[i], math.prod(sizes[i + 1:])))
        sizes[i] = o
    return res


def _stage_taps(a, A, w, B):
    """A stage's w taps as arrays, and the slice that picks its (A, B) results from
    whole-array operations on them.

    When B == 1 (the last dim) a tap is every w-th element: NumPy runs such
    stride-w loops about 4x slower than contiguous ones, so the taps are the
    contiguous shifted slices instead (every position's window, twice the
    arithmetic), and the results are every w-th element of those.
    """
    flat = a.reshape(-1)
    if B == 1:
        n = flat.size - w + 1
        return [flat[k:k + n] for k in range(w)], slice(None, None, w)
    v = a.reshape(A, w, B)
    return [v[:, k] for k in range(w)], slice(None)


def _first_max_stages(xt, window):
    """The stage shapes and, per stage, the (A, B) index of the first maximum along its taps."""
    stages = _stages(xt.shape, window)
    a, idx = xt, []
    for s, (A, w, B) in enumerate(stages):
        taps, pick = _stage_taps(a, A, w, B)
        # strict comparisons: ties keep the earlier tap; a bool viewed as uint8 is 0 or 1
        sel = np.greater(taps[1], taps[0]).view(np.uint8)
        if w > 256:
            sel = sel.astype(np.int32)
        if w > 2 or s + 1 < len(stages):  # (the last 2-tap stage's maximum is not needed)
            best = np.maximum(taps[0], taps[1])
            for k in range(2, w):
                # taps come in increasing order: max(sel, hit * k) records the last improvement
                hit = taps[k] > best
                np.maximum(best, taps[k], out=best)
                np.maximum(sel, np.multiply(hit, k, dtype=sel.dtype), out=sel)
            a = best[pick]
        idx.append(sel[pick].reshape(A, B))
    return stages, idx


def _reduce_tiles(xt, window, combine):
    """The windowed reduction of the tiled operand, flat (one stage per pooled dim)."""
    a = xt
    for A, w, B in _stages(xt.shape, window):
        taps, pick = _stage_taps(a, A, w, B)
        r = combine(taps[0], taps[1])
        for k in range(2, w):
            combine(r, taps[k], out=r)
        a = r[pick]
    return a.reshape(-1) if a is not xt else np.array(a).reshape(-1)  # never the input itself


def _scatter_tiles(g, stages, idx):
    """Undo the stages: each stage's values go to the tap its index names (zeros elsewhere)."""
    # multiplying by the 0/1 selection is much faster than np.where, but 0 * inf is nan:
    # non-finite (or non-float) values take np.where
    fast = g.dtype.kind in "fc" and bool(np.isfinite(g).all())
    zero = np.zeros((), g.dtype)
    for (A, w, B), sel in zip(reversed(stages), reversed(idx)):
        g = g.reshape(A, B)
        out = np.empty((A, w, B), g.dtype)
        if fast and w == 2:  # sel is 0/1; the rest of g (exactly g or 0) goes to tap 0
            np.multiply(g, sel, out=out[:, 1])
            np.subtract(g, out[:, 1], out=out[:, 0])
        else:
            for k in range(w):
                out[:, k] = g * (sel == k) if fast else np.where(sel == k, g, zero)
        g = out
    return g.reshape(-1) if stages else np.array(g).reshape(-1)  # never the input itself



# --- the spread path -------------------------------------------------------------------------


def _one_sample_per_window(window, strides, base_dilation) -> bool:
    """Whether every window holds at most one element of the operand: stride 1 over the
    operand dilated by the window size.

    That is the derivative of non-overlapping sum pooling (avg_pool's default): its
    general path would loop over every tap of the window on the full-size result (729
    taps for the gradient of a 27x27 global average: ~1 s on f32[32,64,27,27]).
    """
    return all(s == 1 for s in strides) and tuple(base_dilation) == tuple(window)


def _spread(x, window, padding, out_shape, fill):
    """The reduction when each window holds one element or none (`_one_sample_per_window`).

    The window at p along a dim covers dilated-padded positions [p, p + k), which hold
    exactly one sample slot, that of element ceil((p - lo) / k): so out[p] is that element
    (`fill`, the reduction's identity, where it lies outside x). With x repeated k times,
    r[t] = x[t // k], that is out[p] = r[p + k - 1 - lo].
    """
    nd = len(window)
    lead = x.ndim - nd
    r = x
    for i, k in enumerate(window):
        if k > 1:
            r = np.repeat(r, k, axis=lead + i)
    out = np.full(out_shape, fill, x.dtype)
    src, dst = [], []
    for i, (k, (lo, _)) in enumerate(zip(window, padding)):
        off = k - 1 - lo
        first, stop = max(0, -off), min(out_shape[lead + i], r.shape[lead + i] - off)
        if stop <= first:
            return out  # every window lies in the padding
        dst.append(slice(first, stop))
        src.append(slice(first + off, stop + off))
    out[(Ellipsis,) + tuple(dst)] = r[(Ellipsis,) + tuple(src)]
    return out



# --- the first maximum, tracked arithmetically ------------------------------------------------


def _first_max_tap(x, window, strides, padding):
    """Per window, the number of the tap holding its first maximum, and the padded shape.

    NOTE: masked NumPy operations (np.where, copyto(where=)) are about 10x slower than
    plain arithmetic here, so the taps are tracked arithmetically: taps come in
    increasing order, so `idx = max(idx, hit * t)` records the last strict improvement,
    i.e. the first maximum. (With NaNs in x the selection is unspecified.)
    """
    nd = len(window)
    out_shape = _out_sizes(x.shape, window, strides, padding, (1,) * nd, "select")
    xp = dilate_and_pad(x, (1,) * nd, padding, _identity("max", x.dtype))
    idx_dtype = np.uint8 if math.prod(window) <= 256 else np.int32
    best = idx = None
    for t, sl in enumerate(_taps(window, strides, out_shape)):
        v = xp[sl]
        if best is None:
            best = np.array(v)
            idx = np.zeros(out_shape, idx_dtype)
        else:
            hit = v > best  # strict: ties keep the earlier tap
            np.maximum(best, v, out=best)
            np.maximum(idx, np.multiply(hit, t, dtype=idx_dtype), out=idx)
    return idx, xp.shape, out_shape


def _masked(values, mask):
    """values where mask, else 0: a multiplication when values are finite (fast), else np.where."""
    if np.isfinite(values).all():
        return values * mask
    return np.where(mask, values, np.zeros((), values.dtype))


# --- the kernels -------------------------------------------------------------------------------


@register(reduce_window_p)
def reduce_window_kernel(x, *, computation, window, strides, padding, base_dilation):
    """`reduce_window_p.impl`, with the spread and non-overlapping fast paths."""
    out_shape = _out_sizes(x.shape, window, strides, padding, base_dilation, "reduce_window")
    if _one_sample_per_window(window, strides, base_dilation):
        return _spread(x, window, padding, out_shape, _identity(computation, x.dtype))
    if _non_overlapping(window, strides):
        xp = dilate_and_pad(x, base_dilation, padding, _identity(computation, x.dtype))
        combine = np.maximum if computation == "max" else np.add
        return _reduce_tiles(_tiles(xp, window, out_shape), window, combine).reshape(out_shape)
    # the general path is the definition's own tap loop (whole-array, in place)
    return reduce_window_p.impl(x, computation=computation, window=window, strides=strides,
                                padding=padding, base_dilation=base_dilation)


@register(select_and_scatter_add_p)
def select_and_scatter_add_kernel(ct, x, *, window, strides, padding):
    """`select_and_scatter_add_p.impl`: the non-overlapping stages, or the tap loop with
    arithmetic masks."""
    nd = len(window)
    lead = x.ndim - nd
    if _non_overlapping(window, strides):
        xp = dilate_and_pad(x, (1,) * nd, padding, _identity("max", x.dtype))
        xt = _tiles(xp, window, ct.shape)
        g = _scatter_tiles(ct, *_first_max_stages(xt, window)).reshape(xt.shape)
        if xp is x and xt.shape == x.shape:  # no padding, sizes multiples of the window
            return g
        res = np.zeros(xp.shape, ct.dtype)
        res[tuple(slice(0, n) for n in xt.shape)] = g
    else:
        idx, padded_shape, out_shape = _first_max_tap(x, window, strides, padding)
        res = np.zeros(padded_shape, ct.dtype)
        for t, sl in enumerate(_taps(window, strides, out_shape)):
            # one tap's positions are distinct (stride >= 1), so += through the slice is exact
            res[sl] += _masked(ct, idx == t)
    return res[(slice(None),) * lead + tuple(
        slice(lo, lo + x.shape[lead + i]) for i, (lo, _) in enumerate(padding))]


@register(select_and_gather_p)
def select_and_gather_kernel(t_, x, *, window, strides, padding):
    """`select_and_gather_p.impl` with arithmetic masks.

    (No non-overlapping fast path: the stages and np.where measured slower than this;
    it only runs in second derivatives.)"""
    nd = len(window)
    idx, _, out_shape = _first_max_tap(x, window, strides, padding)
    tp = dilate_and_pad(t_, (1,) * nd, padding, 0)
    res = np.zeros(out_shape, t_.dtype)
    for t, sl in enumerate(_taps(window, strides, out_shape)):
        res += _masked(tp[sl], idx == t)
    return res
