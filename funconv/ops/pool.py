"""Pooling: the windowed-reduction primitive `reduce_window` (max and sum), the
two max-pool derivative primitives `select_and_scatter_add` and
`select_and_gather`, and the wrappers `max_pool` and `avg_pool`.

All of them work on the trailing `len(window)` dims of their operand (the
spatial dims of an N C spatial... array); leading dims are batch-like.

- `reduce_window(x; computation, window, strides, padding, base_dilation)`:
  `out[..., p] = reduce_{k in window} xd[..., p*stride + k]`, where `xd` is x
  dilated by `base_dilation` and padded with the reduction's identity (-inf
  for max, 0 for sum); negative pads crop. Sum's VJP is again a windowed sum
  (of the cotangent dilated by the stride: the same algebra as conv's input
  gradient). Max's VJP is `select_and_scatter_add`.
- `select_and_scatter_add(ct, x; window, strides, padding)`: x-shaped; every
  window's cotangent is added at the FIRST maximum of x in that window (first
  in row-major window order: deterministic, as JAX and PyTorch do on CPU).
- `select_and_gather(t, x; ...)`: pooled-shaped; picks t at the same first
  maximum. The two are linear in their first operand and each other's
  transpose, so max pooling is differentiable to any order (the selection
  itself is piecewise constant in x: zero derivative).

The NumPy impls have two paths, chosen in `_non_overlapping`. The general one
loops over the window taps (a handful) with whole-array operations on strided
slices. The fast one, for stride == window (max_pool's default, e.g. 2x2),
reduces one pooled dim at a time over contiguous or long-strided views, where
NumPy runs long inner loops (see `_stages`); select_and_gather (second
derivatives only) measured faster on the general path and stays there.
Imports ops._core, primitive, types and errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops._core import asarray, operand, per_dim, to_dtype
from funconv.primitive import Primitive
from funconv.types import DEFAULT_FLOAT, ArrayType, is_inexact

# --- shared geometry ----------------------------------------------------------------------


def _dilate(size: int, d: int) -> int:
    return 0 if size == 0 else (size - 1) * d + 1


def _out_sizes(shape, window, strides, padding, base_dilation, where: str):
    nd = len(window)
    for name, v in (("strides", strides), ("padding", padding), ("base_dilation", base_dilation)):
        if len(v) != nd:
            raise ShapeError(f"{where}: {name} needs one entry per window dim ({nd})")
    if len(shape) < nd:
        raise ShapeError(f"{where}: a {nd}-d window needs an operand of rank >= {nd}")
    if any(v < 1 for v in tuple(window) + tuple(strides) + tuple(base_dilation)):
        raise ShapeError(f"{where}: window, strides and base_dilation must be positive")
    lead = len(shape) - nd
    out = []
    for i in range(nd):
        padded = _dilate(shape[lead + i], base_dilation[i]) + padding[i][0] + padding[i][1]
        if padded < window[i]:
            raise ShapeError(f"{where}: along pooled dim {i} the window ({window[i]}) is larger "
                             f"than the padded input ({padded}); pad more or use a smaller window")
        out.append((padded - window[i]) // strides[i] + 1)
    return tuple(shape[:lead]) + tuple(out)


def _identity(computation: str, dtype: np.dtype):
    if computation == "sum":
        return 0
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _pad(x: np.ndarray, nd: int, padding, base_dilation, fill) -> np.ndarray:
    """x dilated along its trailing nd dims and padded with `fill` (negative pads crop)."""
    if all(d == 1 for d in base_dilation) and all(p == (0, 0) for p in padding):
        return x
    lead = x.ndim - nd
    sizes, inner, crop = [], [], []
    for i in range(nd):
        lo, hi = padding[i]
        dil = _dilate(x.shape[lead + i], base_dilation[i])
        sizes.append(max(lo, 0) + dil + max(hi, 0))
        inner.append(slice(max(lo, 0), max(lo, 0) + dil, base_dilation[i]))
        crop.append(slice(max(-lo, 0), sizes[-1] - max(-hi, 0)))
    xp = np.full(x.shape[:lead] + tuple(sizes), fill, x.dtype)
    xp[(slice(None),) * lead + tuple(inner)] = x
    return xp[(slice(None),) * lead + tuple(crop)]


def _taps(xp_shape, window, strides, out_shape):
    """(tap number, slices of the padded operand holding that tap of every window)."""
    nd = len(window)
    lead = len(xp_shape) - nd
    osp = out_shape[lead:]
    for t, k in enumerate(itertools.product(*[range(w) for w in window])):
        yield t, (slice(None),) * lead + tuple(
            slice(k[i], k[i] + (osp[i] - 1) * strides[i] + 1, strides[i]) for i in range(nd))


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


# --- reduce_window ---------------------------------------------------------------------------


def _reduce_window_rule(x: ArrayType, *, computation, window, strides, padding,
                        base_dilation) -> ArrayType:
    where = (f"reduce_window({x.short()}; computation={computation!r}, window={window}, "
             f"strides={strides}, padding={padding}, base_dilation={base_dilation})")
    if computation not in ("max", "sum"):
        raise ArgumentError(f"{where}: computation must be 'max' or 'sum'")
    if computation == "max" and x.dtype.kind not in "biuf":
        raise DTypeError(f"{where}: max pooling needs real operands")
    return ArrayType(_out_sizes(x.shape, window, strides, padding, base_dilation, where), x.dtype)


def _reduce_window_impl(x, *, computation, window, strides, padding, base_dilation):
    nd = len(window)
    out_shape = _out_sizes(x.shape, window, strides, padding, base_dilation, "reduce_window")
    xp = _pad(x, nd, padding, base_dilation, _identity(computation, x.dtype))
    combine = np.maximum if computation == "max" else np.add
    if _non_overlapping(window, strides):
        return _reduce_tiles(_tiles(xp, window, out_shape), window, combine).reshape(out_shape)
    out = None
    for t, sl in _taps(xp.shape, window, strides, out_shape):
        if out is None:
            out = np.array(xp[sl], dtype=x.dtype)
        else:
            combine(out, xp[sl], out=out)
    return out


def _reduce_window_vjp(ct, out, x, *, computation, window, strides, padding, base_dilation):
    nd = len(window)
    lead = x.ndim - nd
    if computation == "max":
        if any(d != 1 for d in base_dilation) or any(lo < 0 or hi < 0 for lo, hi in padding):
            raise NotImplementedError("the derivative of a max reduce_window with base dilation "
                                      "or negative padding is not implemented (max_pool never "
                                      "builds one)")
        return (select_and_scatter_add_p(ct, x, window=window, strides=strides, padding=padding),)
    # sum: the adjoint of a windowed sum is a windowed sum of the cotangent dilated by the
    # stride, padded so the result has x's size (as conv's input gradient, with a ones kernel)
    in_dil = [_dilate(x.shape[lead + i], base_dilation[i]) for i in range(nd)]
    out_dil = [_dilate(ct.shape[lead + i], strides[i]) for i in range(nd)]
    lo = [window[i] - 1 - padding[i][0] for i in range(nd)]
    pads = tuple((lo[i], in_dil[i] + window[i] - 1 - out_dil[i] - lo[i]) for i in range(nd))
    return (reduce_window_p(ct, computation="sum", window=window, strides=tuple(base_dilation),
                            padding=pads, base_dilation=tuple(strides)),)


reduce_window_p = Primitive("reduce_window", _reduce_window_rule, _reduce_window_impl,
                            _reduce_window_vjp)

# --- select_and_scatter_add / select_and_gather (max pooling's derivatives) ----------------


def _select_rule(name, pooled_first: bool):
    def rule(a: ArrayType, x: ArrayType, *, window, strides, padding) -> ArrayType:
        where = (f"{name}({a.short()}, {x.short()}; window={window}, strides={strides}, "
                 f"padding={padding})")
        if x.dtype.kind not in "biuf":
            raise DTypeError(f"{where}: the selecting operand must be real")
        if any(lo < 0 or hi < 0 for lo, hi in padding):
            raise ShapeError(f"{where}: padding must be non-negative")
        pooled = _out_sizes(x.shape, window, strides, padding, (1,) * len(window), where)
        expect = pooled if pooled_first else x.shape
        if a.shape != expect:
            raise ShapeError(f"{where}: the first operand must have shape {expect}")
        return ArrayType(x.shape if pooled_first else pooled, a.dtype)

    return rule


def _first_max_tap(x, window, strides, padding):
    """Per window, the number of the tap holding its first maximum, and the padded shape.

    NOTE: masked NumPy operations (np.where, copyto(where=)) are about 10x slower than
    plain arithmetic here, so the taps are tracked arithmetically: taps come in
    increasing order, so `idx = max(idx, hit * t)` records the last strict improvement,
    i.e. the first maximum. (With NaNs in x the selection is unspecified.)
    """
    nd = len(window)
    out_shape = _out_sizes(x.shape, window, strides, padding, (1,) * nd, "select")
    xp = _pad(x, nd, padding, (1,) * nd, _identity("max", x.dtype))
    idx_dtype = np.uint8 if math.prod(window) <= 256 else np.int32
    best = idx = None
    for t, sl in _taps(xp.shape, window, strides, out_shape):
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


def _select_and_scatter_add_impl(ct, x, *, window, strides, padding):
    nd = len(window)
    lead = x.ndim - nd
    if _non_overlapping(window, strides):
        xp = _pad(x, nd, padding, (1,) * nd, _identity("max", x.dtype))
        xt = _tiles(xp, window, ct.shape)
        g = _scatter_tiles(ct, *_first_max_stages(xt, window)).reshape(xt.shape)
        if xp is x and xt.shape == x.shape:  # no padding, sizes multiples of the window
            return g
        res = np.zeros(xp.shape, ct.dtype)
        res[tuple(slice(0, n) for n in xt.shape)] = g
    else:
        idx, padded_shape, out_shape = _first_max_tap(x, window, strides, padding)
        res = np.zeros(padded_shape, ct.dtype)
        for t, sl in _taps(padded_shape, window, strides, out_shape):
            # one tap's positions are distinct (stride >= 1), so += through the slice is exact
            res[sl] += _masked(ct, idx == t)
    return res[(slice(None),) * lead + tuple(
        slice(lo, lo + x.shape[lead + i]) for i, (lo, _) in enumerate(padding))]


def _select_and_gather_impl(t_, x, *, window, strides, padding):
    # (no fast path: the stages and np.where measured slower than this; it only runs in
    # second derivatives)
    nd = len(window)
    idx, padded_shape, out_shape = _first_max_tap(x, window, strides, padding)
    tp = _pad(t_, nd, padding, (1,) * nd, 0)
    res = np.zeros(out_shape, t_.dtype)
    for t, sl in _taps(padded_shape, window, strides, out_shape):
        res += _masked(tp[sl], idx == t)
    return res


select_and_scatter_add_p = Primitive(
    "select_and_scatter_add", _select_rule("select_and_scatter_add", True),
    _select_and_scatter_add_impl,
    lambda ct, out, a, x, **p: (select_and_gather_p(ct, x, **p), None))
select_and_gather_p = Primitive(
    "select_and_gather", _select_rule("select_and_gather", False), _select_and_gather_impl,
    lambda ct, out, a, x, **p: (select_and_scatter_add_p(ct, x, **p), None))

# --- wrappers ------------------------------------------------------------------------------


def _pool_args(opname, x, window, stride, padding):
    from funconv.ops.conv import _padding

    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    if isinstance(window, (int, np.integer)):
        nd = x.ndim - 2
        if nd < 1:
            raise ShapeError(f"{opname}: an int window pools the spatial dims of an (N, C, "
                             f"spatial...) array, got {x.aval.short()}; pass a tuple window "
                             "to pool the trailing dims of any array")
    else:
        try:
            nd = len(window)
        except TypeError:
            raise ArgumentError(f"{opname}: window must be an int or a tuple of ints, "
                                f"got {window!r}") from None
    if nd < 1 or nd > x.ndim:
        raise ShapeError(f"{opname}: a window {window!r} does not fit {x.aval.short()}")
    window = per_dim(window, nd, "window", opname)
    strides = window if stride is None else per_dim(stride, nd, "stride", opname)
    where = f"{opname}({x.aval.short()}, window={window}, stride={stride}, padding={padding!r})"
    pads = _padding(padding, x.shape[x.ndim - nd:], window, strides, opname, where)
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ShapeError(f"{where}: padding must be non-negative")
    for i in range(nd):
        padded = x.shape[x.ndim - nd + i] + pads[i][0] + pads[i][1]
        if padded < window[i]:
            raise ShapeError(f"{where}: along pooled dim {i} the window ({window[i]}) is larger "
                             f"than the padded input ({padded}); pad more or use a smaller window")
    return x, window, strides, pads


def max_pool(x, window, stride=None, padding=0) -> Array:
    """Max pooling over the trailing spatial dims.

    Args:
        x: (N, C, spatial...) (or any array, with a tuple `window` over its trailing dims).
        window: int (every spatial dim of an N C spatial... array) or a tuple.
        stride: int or per dim; defaults to the window (non-overlapping).
        padding: "SAME", "VALID", an int, per-dim ints or per-dim (lo, hi)
            pairs; padded positions count as -inf.

    Returns:
        The pooled array. Its gradient goes to the first maximum of each
        window (row-major order within the window).
    """
    x, window, strides, pads = _pool_args("max_pool", x, window, stride, padding)
    if x.dtype.kind == "c":
        raise DTypeError(f"max_pool: complex values have no maximum, got {x.aval.short()}")
    return reduce_window_p(x, computation="max", window=window, strides=strides, padding=pads,
                           base_dilation=(1,) * len(window))


def avg_pool(x, window, stride=None, padding=0) -> Array:
    """Average pooling over the trailing spatial dims (arguments as `max_pool`).

    Padded positions count as zeros and the divisor is always the window size
    (PyTorch's `count_include_pad=True`, flax's default), so windows that
    overlap the padding are pulled towards zero. Integer inputs average in float32.
    """
    x, window, strides, pads = _pool_args("avg_pool", x, window, stride, padding)
    if not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    s = reduce_window_p(x, computation="sum", window=window, strides=strides, padding=pads,
                        base_dilation=(1,) * len(window))
    return s / math.prod(window)


__all__ = [
    "avg_pool",
    "max_pool",
    "reduce_window_p",
    "select_and_gather_p",
    "select_and_scatter_add_p",
]
