"""Pooling: the windowed-reduction primitive `reduce_window` (max and sum), the
two max-pool derivative primitives `select_and_scatter_add` and
`select_and_gather`, and the wrappers `max_pool`, `avg_pool` (with PyTorch's
`ceil_mode` and `count_include_pad`), `adaptive_max_pool` and `adaptive_avg_pool`
(see "wrappers" and "adaptive pooling" below: they need no primitive of their own).

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

import attrs
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


def _reduce_window_impl(x, *, computation, window, strides, padding, base_dilation):
    nd = len(window)
    out_shape = _out_sizes(x.shape, window, strides, padding, base_dilation, "reduce_window")
    if _one_sample_per_window(window, strides, base_dilation):
        return _spread(x, window, padding, out_shape, _identity(computation, x.dtype))
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
# The wrappers speak PyTorch's and flax's options (ceil_mode, count_include_pad, adaptive
# pooling) and lower them onto the three primitives above plus ordinary differentiable ops:
# ceil mode is extra high padding (the identity of the reduction, so the overhang is
# ignored) and averaging divisors are constant arrays computed with NumPy at trace time.


def _flag(value, name: str, opname: str, x: Array) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{opname}({x.aval.short()}, ...): {name} must be True or False, "
                            f"got {value!r}")
    return bool(value)


def _out_size(n: int, k: int, s: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """Number of windows along one dim of size n padded by (lo, hi).

    Floor mode (the default, and reduce_window's rule): (n + lo + hi - k) // s + 1.
    Ceil mode, PyTorch's `pooling_output_shape`: ceil((n + lo + hi - k) / s) + 1, minus
    one when the last window would start past the input and the low padding
    ((out - 1) * s >= n + lo), so every window starts on the input or its low padding.
    """
    span = n + lo + hi - k
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1  # ceil, also for a negative span (a window wider than the input)
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


@attrs.frozen(eq=False)
class _Geometry:
    """A pooling call's resolved arguments: the operand, the window, the strides, the
    user's (lo, hi) pads, the output's spatial sizes and the pads given to the primitive
    (the user's high pad plus the ceil-mode overhang)."""

    x: Array
    window: tuple
    strides: tuple
    pads: tuple
    out: tuple
    prim_pads: tuple

    def reduce(self, x, computation: str) -> Array:
        """reduce_window over the geometry, cropped to `out` windows per dim."""
        nd = len(self.window)
        y = reduce_window_p(x, computation=computation, window=self.window, strides=self.strides,
                            padding=self.prim_pads, base_dilation=(1,) * nd)
        if tuple(y.shape[y.ndim - nd:]) != self.out:
            # only in ceil mode with a high pad of at least a window: the primitive's floor
            # rule then counts one window that starts in the high padding, which PyTorch drops
            y = y[(Ellipsis,) + tuple(slice(0, o) for o in self.out)]
        return y


def _pool_args(opname, x, window, stride, padding, ceil_mode=False) -> _Geometry:
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
    ceil_mode = _flag(ceil_mode, "ceil_mode", opname, x)
    where = f"{opname}({x.aval.short()}, window={window}, stride={stride}, padding={padding!r}"
    where += ", ceil_mode=True)" if ceil_mode else ")"
    sizes = x.shape[x.ndim - nd:]
    pads = _padding(padding, sizes, window, strides, opname, where)
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ShapeError(f"{where}: padding must be non-negative")
    out, prim_pads = [], []
    for i in range(nd):
        (lo, hi), k, s = pads[i], window[i], strides[i]
        o = _out_size(sizes[i], k, s, lo, hi, ceil_mode)
        if o < 1:
            padded = sizes[i] + lo + hi
            raise ShapeError(f"{where}: along pooled dim {i} the window ({k}) is larger than "
                             f"the padded input ({padded}); pad more or use a smaller window")
        # a window wholly in the padding has no input element: max_pool would give -inf and
        # avg_pool 0, silently. PyTorch refuses such pads (more strictly: at most half the
        # window); a pad below the window on each side never makes one
        if k <= lo or (o - 1) * s - lo >= sizes[i]:
            raise ShapeError(f"{where}: along pooled dim {i} (size {sizes[i]}) the padding "
                             f"({lo}, {hi}) puts a whole window in the padding, with no input "
                             f"element to pool; the largest valid padding is {k - 1} on each "
                             f"side (less than the window, {k})")
        out.append(o)
        # ceil mode: pad the high side so the last window fits; the overhang holds the
        # reduction's identity (-inf / 0), so max ignores it and avg's divisor leaves it out
        prim_pads.append((lo, hi + max(0, (o - 1) * s + k - (sizes[i] + lo + hi))))
    return _Geometry(x, window, strides, pads, tuple(out), tuple(prim_pads))


def max_pool(x, window, stride=None, padding=0, *, ceil_mode=False) -> Array:
    """Max pooling over the trailing spatial dims (PyTorch's max_pool1d/2d/3d, flax's max_pool).

    Args:
        x: (N, C, spatial...) (or any array, with a tuple `window` over its trailing dims).
        window: int (every spatial dim of an N C spatial... array) or a tuple.
        stride: int or per dim; defaults to the window (non-overlapping).
        padding: "SAME", "VALID", an int, per-dim ints or per-dim (lo, hi)
            pairs; padded positions count as -inf.
        ceil_mode: PyTorch's: out = ceil((in + lo + hi - window) / stride) + 1 windows
            instead of floor(...), minus one if the last would start past the input and
            its low padding. The extra window hangs off the high end; the overhang is
            ignored. It also allows a window wider than the padded input (one window),
            as PyTorch does. With "SAME" it changes nothing (SAME's ceil(in / stride)
            windows already cover the input); "VALID" means padding 0.

    Returns:
        The pooled array. Its gradient goes to the first maximum of each
        window (row-major order within the window).
    """
    g = _pool_args("max_pool", x, window, stride, padding, ceil_mode)
    if g.x.dtype.kind == "c":
        raise DTypeError(f"max_pool: complex values have no maximum, got {g.x.aval.short()}")
    return g.reduce(g.x, "max")


def _window_counts(n, k, s, lo, hi, out, include_pad: bool) -> np.ndarray:
    """Per window along one dim, PyTorch's avg_pool divisor: the window clipped to the
    padded input [-lo, n + hi) (so the ceil-mode overhang never counts), or with
    include_pad=False to the input itself [0, n)."""
    start = np.arange(out) * s - lo
    end = np.minimum(start + k, n + hi)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return np.maximum(end - start, 0)


def _divide_by_counts(total: Array, counts) -> Array:
    """total (..., out...) divided by the outer product of the per-dim window counts.

    The counts are static, so the divisor is a constant array; where they all equal one
    number, a scalar. A window with no element to count (only possible wholly inside the
    padding, where the sum is 0) is divided by 1, giving 0 as PyTorch does.
    """
    div = np.ones((), np.int64)
    for c in counts:
        div = np.multiply.outer(div, c)
    div = np.maximum(div, 1)
    if div.size and (div == div.flat[0]).all():
        return total / int(div.flat[0])
    real = np.finfo(total.dtype).dtype  # the real dtype (a complex average divides by reals)
    return total / asarray(div.astype(real))


def avg_pool(x, window, stride=None, padding=0, *, ceil_mode=False,
             count_include_pad=True) -> Array:
    """Average pooling over the trailing spatial dims (PyTorch's avg_pool1d/2d/3d, flax's
    avg_pool).

    Args:
        x, window, stride, padding: as `max_pool`; padded positions count as zeros.
        ceil_mode: as `max_pool`. The ceil-mode overhang is never counted in a divisor.
        count_include_pad: True (PyTorch's and flax's default): divide by the window size,
            clipped to the padded input, so windows overlapping the padding are pulled
            towards zero. False: divide by the number of input (non-padding) elements in
            each window.

    Returns:
        The pooled array; integer inputs average in float32.
    """
    g = _pool_args("avg_pool", x, window, stride, padding, ceil_mode)
    include = _flag(count_include_pad, "count_include_pad", "avg_pool", g.x)
    x = g.x if is_inexact(g.x.dtype) else to_dtype(g.x, DEFAULT_FLOAT)
    nd = len(g.window)
    sizes = x.shape[x.ndim - nd:]
    counts = [_window_counts(sizes[i], g.window[i], g.strides[i], *g.pads[i], g.out[i], include)
              for i in range(nd)]
    return _divide_by_counts(g.reduce(x, "sum"), counts)


# --- adaptive pooling --------------------------------------------------------------------------
# PyTorch's adaptive pooling: output window i along a dim of size n pooled to o covers
# [floor(i * n / o), ceil((i + 1) * n / o)). When o divides n these are the windows of a
# plain pool (window = stride = n / o). Otherwise they vary in size (and overlap when
# o > n), so each such dim is pooled on its own: both reductions are separable (the
# max / mean of a box is the max / mean along one dim of the max / mean along the others).


def _adaptive_args(opname, x, output_size):
    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    where = f"{opname}({x.aval.short()}, output_size={output_size!r})"
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, (bool, np.bool_)):
        nd = x.ndim - 2
        if nd < 1:
            raise ShapeError(f"{where}: an int output_size pools the spatial dims of an (N, C, "
                             "spatial...) array; pass a tuple (one size per trailing dim) to "
                             "pool the trailing dims of any array")
        sizes = (output_size,) * nd
    elif isinstance(output_size, (tuple, list)):
        sizes = tuple(output_size)
        nd = len(sizes)
        if not 1 <= nd <= x.ndim:
            raise ShapeError(f"{where}: output_size needs one entry per pooled trailing dim "
                             f"(1 to {x.ndim} entries for this array), got {nd}")
    else:
        raise ArgumentError(f"{where}: output_size must be an int or a tuple of ints (None "
                            f"keeps a dim), got {type(output_size).__name__}")
    ins = x.shape[x.ndim - nd:]
    out = []
    for n, o in zip(ins, sizes):
        if o is None:
            o = n
        elif isinstance(o, (bool, np.bool_)) or not isinstance(o, (int, np.integer)):
            raise ArgumentError(f"{where}: output sizes must be ints or None, got {o!r}")
        elif o < 1:
            raise ArgumentError(f"{where}: output sizes must be >= 1, got {o}; use 1 for "
                                "global pooling")
        if n == 0:
            raise ShapeError(f"{where}: cannot pool an empty spatial dim into {o} windows")
        out.append(int(o))
    return x, nd, tuple(ins), tuple(out)


def _adaptive_bounds(n: int, o: int):
    """Start and end (exclusive) of every adaptive window along one dim, as NumPy arrays."""
    i = np.arange(o)
    return (i * n) // o, -(-((i + 1) * n) // o)


def _one_dim_window(nd: int, d: int, k: int) -> tuple[int, ...]:
    return tuple(k if j == d else 1 for j in range(nd))


def _global_axes(lead, ins, out):
    """The axes pooled to size 1, if every pooled dim is either that or kept whole, else None.

    Global pooling (output size 1, the most common adaptive pooling) is then one plain
    reduction over those axes: a window as large as the input would make reduce_window
    loop over all of its taps.
    """
    if not all(o == 1 or o == n for n, o in zip(ins, out)):
        return None
    return tuple(lead + d for d, (n, o) in enumerate(zip(ins, out)) if o != n)


def adaptive_avg_pool(x, output_size) -> Array:
    """Adaptive average pooling (PyTorch's adaptive_avg_pool1d/2d/3d) over the trailing dims.

    Args:
        x: (N, C, spatial...) (or any array, with a tuple `output_size` over its trailing dims).
        output_size: an int (every spatial dim of an N C spatial... array) or a tuple,
            one entry per trailing dim; a None entry keeps that dim's size. Sizes larger
            than the input are allowed (windows then overlap). 1 is global average pooling.

    Returns:
        (..., output_size...): output i along a dim of size n pooled to o is the mean over
        [floor(i * n / o), ceil((i + 1) * n / o)). Integer inputs average in float32.
    """
    from funconv.ops.linalg import tensordot
    from funconv.ops.reduce import mean
    from funconv.ops.reduce import sum as reduce_sum
    from funconv.ops.shape import moveaxis

    x, nd, ins, out = _adaptive_args("adaptive_avg_pool", x, output_size)
    if not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    lead = x.ndim - nd
    axes = _global_axes(lead, ins, out)
    if axes is not None:
        return mean(x, axis=axes, keepdims=True) if axes else x
    if all(n % o == 0 for n, o in zip(ins, out)):
        return avg_pool(x, tuple(n // o for n, o in zip(ins, out)))
    # (the sum and the mean are separable, so each dim is summed on its own, in any order)
    counts = []
    for d, (n, o) in enumerate(zip(ins, out)):
        if n == o:
            counts.append(np.ones(o, np.int64))
        elif o == 1:
            x = reduce_sum(x, axis=lead + d, keepdims=True)
            counts.append(np.full(1, n))
        elif n % o == 0:  # a plain windowed sum along this dim
            w = _one_dim_window(nd, d, n // o)
            x = reduce_window_p(x, computation="sum", window=w, strides=w,
                                padding=((0, 0),) * nd, base_dilation=(1,) * nd)
            counts.append(np.full(o, n // o))
        else:
            # the window sums as a contraction with a constant 0/1 (o, n) matrix: exact, linear
            start, end = _adaptive_bounds(n, o)
            cols = np.arange(n)
            member = (cols >= start[:, None]) & (cols < end[:, None])
            m = asarray(member.astype(np.finfo(x.dtype).dtype))
            x = moveaxis(tensordot(x, m, axes=([lead + d], [1])), -1, lead + d)
            counts.append(end - start)
    # then divide by the box sizes, as PyTorch does (sum / count, not a sum of x / count)
    return _divide_by_counts(x, counts)


def adaptive_max_pool(x, output_size) -> Array:
    """Adaptive max pooling (PyTorch's adaptive_max_pool1d/2d/3d) over the trailing dims.

    Args:
        x, output_size: as `adaptive_avg_pool`.

    Returns:
        (..., output_size...): output i along a dim of size n pooled to o is the maximum
        over [floor(i * n / o), ceil((i + 1) * n / o)). The gradient goes to the first
        maximum of each window (row-major order), as `max_pool` and PyTorch on CPU.
    """
    from funconv.ops.indexing import take
    from funconv.ops.reduce import max as reduce_max

    x, nd, ins, out = _adaptive_args("adaptive_max_pool", x, output_size)
    if x.dtype.kind == "c":
        raise DTypeError(f"adaptive_max_pool: complex values have no maximum, got {x.aval.short()}")
    lead = x.ndim - nd
    axes = _global_axes(lead, ins, out)
    if axes is not None:  # (one reduction over all the axes: its first maximum is row-major)
        return reduce_max(x, axis=axes, keepdims=True) if axes else x
    if all(n % o == 0 for n, o in zip(ins, out)):
        return max_pool(x, tuple(n // o for n, o in zip(ins, out)))
    # one dim at a time, the LAST first: keeping the first maximum at each stage then gives
    # the first maximum of the whole box in row-major order (see _stages)
    for d in reversed(range(nd)):
        n, o = ins[d], out[d]
        if n == o:
            continue
        if o == 1:
            x = reduce_max(x, axis=lead + d, keepdims=True)
        elif n % o == 0:
            x = max_pool(x, _one_dim_window(nd, d, n // o))
        else:
            # gather every window into a row of an (o, widest) table, short windows padded
            # by repeating their last element (a later duplicate never is the FIRST
            # maximum), then reduce the rows; the gather's derivative adds the cotangent
            # back. (reduce_window over the table measured 3x slower here: its fast path
            # handles a long last-dim window with shifted whole-array slices)
            start, end = _adaptive_bounds(n, o)
            width = int((end - start).max())
            idx = np.minimum(start[:, None] + np.arange(width), end[:, None] - 1)
            x = reduce_max(take(x, idx, axis=lead + d), axis=lead + d + 1)
    return x


__all__ = [
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "avg_pool",
    "max_pool",
    "reduce_window_p",
    "select_and_gather_p",
    "select_and_scatter_add_p",
]
