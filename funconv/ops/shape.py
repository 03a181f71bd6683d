"""Shape primitives and their NumPy-named wrappers.

Primitives: broadcast_to, reshape, transpose, slice (static start/limit/stride,
as lax.slice), pad (lo, hi, interior per axis, negative lo/hi crop, as
lax.pad), concatenate, flip. All are linear; each VJP is the adjoint shape
operation (slice <-> pad, concatenate -> slices, flip -> flip, ...).
Wrappers: reshape, transpose, expand_dims, squeeze, flip, pad (np.pad),
concatenate, stack, split, moveaxis, swapaxes, tile, repeat, roll,
broadcast_arrays. Imports _core, primitive, types; indexing and reduce lazily.
"""

from __future__ import annotations

import builtins

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, AxisError, ShapeError
from funconv.ops._core import (asarray, broadcast_shapes as _broadcast_shapes, broadcast_to, describe,
                               dtype_of, normalize_axes, normalize_axis, operand, static_int,
                               static_ints, to_dtype)
from funconv.primitive import Primitive, types_str
from funconv.types import ArrayType, result_type

# --- broadcast_to -------------------------------------------------------------------


def _broadcast_rule(x: ArrayType, *, shape) -> ArrayType:
    lead = len(shape) - x.ndim
    if lead < 0 or any(d != 1 and d != shape[lead + i] for i, d in enumerate(x.shape)):
        raise ShapeError(f"broadcast_to: cannot broadcast {x.short()} to shape {shape}")
    return ArrayType(tuple(shape), x.dtype)


def _broadcast_vjp(ct, out, x, *, shape):
    # the one place that "unbroadcasts": sum over the new and the stretched axes
    from funconv.ops.reduce import reduce_sum_p

    lead = len(shape) - x.ndim
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(x.shape)
                                      if d == 1 and shape[lead + i] != 1)
    if axes:
        ct = reduce_sum_p(ct, axes=axes)
    if ct.shape != x.shape:
        ct = reshape_p(ct, shape=x.shape)
    return (ct,)


broadcast_to_p = Primitive("broadcast_to", _broadcast_rule,
                           lambda x, *, shape: np.broadcast_to(x, shape), _broadcast_vjp, linear=True)

# --- reshape ---------------------------------------------------------------------------


def _reshape_rule(x: ArrayType, *, shape) -> ArrayType:
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ShapeError(f"reshape: cannot reshape {x.short()} ({x.size} elements) to {shape}")
    return ArrayType(tuple(shape), x.dtype)


reshape_p = Primitive("reshape", _reshape_rule, lambda x, *, shape: np.reshape(x, shape),
                      lambda ct, out, x, *, shape: (reshape_p(ct, shape=x.shape),), linear=True)

# --- transpose ---------------------------------------------------------------------------


def _transpose_rule(x: ArrayType, *, perm) -> ArrayType:
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"transpose: {perm} is not a permutation of the axes of {x.short()}")
    return ArrayType(tuple(x.shape[p] for p in perm), x.dtype)


transpose_p = Primitive("transpose", _transpose_rule, lambda x, *, perm: np.transpose(x, perm),
                        lambda ct, out, x, *, perm: (transpose_p(ct, perm=tuple(np.argsort(perm).tolist())),),
                        linear=True)


# --- slice ---------------------------------------------------------------------------------
# lax.slice: static start/limit/stride per axis, strides >= 1 (the wrappers turn a negative
# NumPy step into a flip followed by a positive-stride slice).


def _slice_len(start: int, limit: int, stride: int) -> int:
    return builtins.max(0, -(-(limit - start) // stride))


def _slice_rule(x: ArrayType, *, start_indices, limit_indices, strides) -> ArrayType:
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim):
        raise ShapeError(f"slice: {x.short()} needs {x.ndim} start/limit/stride entries, got "
                         f"{start_indices}, {limit_indices}, {strides}")
    for d, (s, l, st) in enumerate(zip(start_indices, limit_indices, strides)):
        if not (0 <= s <= l <= x.shape[d]) or st < 1:
            raise ShapeError(f"slice: axis {d} of {x.short()}: start {s}, limit {l}, stride {st} "
                             f"must satisfy 0 <= start <= limit <= {x.shape[d]} and stride >= 1")
    return ArrayType(tuple(_slice_len(s, l, st) for s, l, st in zip(start_indices, limit_indices, strides)),
                     x.dtype)


def _slice_impl(x, *, start_indices, limit_indices, strides):
    return x[tuple(slice(s, l, st) for s, l, st in zip(start_indices, limit_indices, strides))]


def _slice_vjp(ct, out, x, *, start_indices, limit_indices, strides):
    # the adjoint puts ct back in place and zeros elsewhere: a pad with interior stride-1
    config = []
    for n, s, st, m in zip(x.shape, start_indices, strides, out.shape):
        if m == 0:
            config.append((0, n, 0))
        else:
            last = s + (m - 1) * st
            config.append((s, n - last - 1, st - 1))
    return (pad_p(ct, _zero(ct.dtype), config=tuple(config)),)


slice_p = Primitive("slice", _slice_rule, _slice_impl, _slice_vjp, linear=True)

# --- pad -------------------------------------------------------------------------------------
# lax.pad: per axis (lo, hi, interior). interior inserts `interior` copies of the padding value
# between neighbours; negative lo/hi crop. The padding value is a 0-d operand (so it can be
# traced); pad is linear in (x, value) jointly.


def _pad_rule(x: ArrayType, v: ArrayType, *, config) -> ArrayType:
    if v.shape != () or v.dtype != x.dtype:
        raise ShapeError(f"pad: the padding value must be a scalar of the operand's dtype, got "
                         f"{x.short()}, {v.short()}")
    if len(config) != x.ndim:
        raise ShapeError(f"pad: {x.short()} needs {x.ndim} (lo, hi, interior) triples, got {config}")
    shape = []
    for d, (n, (lo, hi, interior)) in enumerate(zip(x.shape, config)):
        size = lo + hi + n + builtins.max(n - 1, 0) * interior
        if interior < 0 or size < 0:
            raise ShapeError(f"pad: axis {d} of {x.short()}: (lo={lo}, hi={hi}, interior={interior}) "
                             "gives a negative size or a negative interior")
        shape.append(size)
    return ArrayType(tuple(shape), x.dtype)


def _pad_impl(x, v, *, config):
    if x.ndim == 0:
        return np.array(x, copy=True)
    if all(i == 0 and lo >= 0 and hi >= 0 for lo, hi, i in config):  # the common case, one copy
        return np.pad(x, [(lo, hi) for lo, hi, _ in config], constant_values=v)
    dilated = tuple(n + builtins.max(n - 1, 0) * i for n, (_, _, i) in zip(x.shape, config))
    full = np.full(dilated, v, dtype=x.dtype)
    full[tuple(slice(None, None, i + 1) for _, _, i in config)] = x
    out = np.pad(full, [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi, _ in config],
                 constant_values=v)
    crop = tuple(slice(builtins.max(-lo, 0), out.shape[d] - builtins.max(-hi, 0))
                 for d, (lo, hi, _) in enumerate(config))
    return out[crop]


def _pad_vjp(ct, out, x, v, *, config):
    from funconv.ops.reduce import reduce_sum_p

    # undo lo/hi (crop what was added, zero-fill what was cropped), then pick x's positions
    t = pad_p(ct, _zero(ct.dtype), config=tuple((-lo, -hi, 0) for lo, hi, _ in config))
    x_ct = slice_p(t, start_indices=(0,) * x.ndim, limit_indices=t.shape,
                   strides=tuple(i + 1 for _, _, i in config))
    all_ct = tuple(range(ct.ndim))
    v_ct = reduce_sum_p(ct, axes=all_ct) - reduce_sum_p(x_ct, axes=all_ct)
    return x_ct, v_ct


pad_p = Primitive("pad", _pad_rule, _pad_impl, _pad_vjp, linear=True)

# --- concatenate ---------------------------------------------------------------------------------


def _concatenate_rule(*xs: ArrayType, axis) -> ArrayType:
    if not xs:
        raise ShapeError("concatenate: needs at least one operand")
    x0 = xs[0]
    for t in xs:
        if t.dtype != x0.dtype:
            raise ShapeError(f"concatenate: operand dtypes differ in the IR: {types_str(*xs)}")
        if t.ndim != x0.ndim or not 0 <= axis < t.ndim or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, x0.shape)) if i != axis):
            raise ShapeError(f"concatenate: operands {types_str(*xs)} must have equal shapes "
                             f"except along axis {axis}")
    size = builtins.sum(t.shape[axis] for t in xs)
    return ArrayType(x0.shape[:axis] + (size,) + x0.shape[axis + 1:], x0.dtype)


def _concatenate_vjp(ct, out, *xs, axis):
    cts, start = [], 0
    for x in xs:
        stop = start + x.shape[axis]
        lo = tuple(start if i == axis else 0 for i in range(ct.ndim))
        hi = tuple(stop if i == axis else d for i, d in enumerate(ct.shape))
        cts.append(slice_p(ct, start_indices=lo, limit_indices=hi, strides=(1,) * ct.ndim))
        start = stop
    return tuple(cts)


concatenate_p = Primitive("concatenate", _concatenate_rule,
                          lambda *xs, axis: np.concatenate(xs, axis=axis), _concatenate_vjp, linear=True)

# --- flip ------------------------------------------------------------------------------------------


def _flip_rule(x: ArrayType, *, axes) -> ArrayType:
    if any(not 0 <= a < x.ndim for a in axes):
        raise ShapeError(f"flip: axes {axes} out of range for {x.short()}")
    return x


flip_p = Primitive("flip", _flip_rule, lambda x, *, axes: np.flip(x, axes),
                   lambda ct, out, x, *, axes: (flip_p(ct, axes=axes),), linear=True)


def _zero(dtype) -> Array:
    return to_dtype(0, dtype)


# --- wrappers ------------------------------------------------------------------------------


def _array(x, opname) -> Array:
    x = operand(x, opname)
    return x if isinstance(x, Array) else asarray(x)


def reshape(x, shape, *, copy=None) -> Array:
    """`np.reshape`: one dimension may be -1. (`copy`, the Array API's, changes nothing: an
    immutable array's reshape is never observably a view.)"""
    x = _array(x, "reshape")
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        if isinstance(shape, str):
            raise TypeError
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ArgumentError(f"reshape: shape must be a tuple of ints, got {describe(shape)}") from None
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: at most one -1 allowed, got {shape}")
    if -1 in shape:
        rest = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if rest == 0 or x.size % rest:
            raise ShapeError(f"reshape: cannot reshape {x.aval.short()} to {shape}")
        shape = tuple(x.size // rest if s == -1 else s for s in shape)
    if shape == x.shape:
        return x
    return reshape_p(x, shape=shape)


def transpose(x, axes=None) -> Array:
    """`np.transpose`: reverse the axes, or permute them by `axes`."""
    x = _array(x, "transpose")
    if axes is None:
        perm = tuple(range(x.ndim))[::-1]
    else:
        perm = tuple(normalize_axis(a, x.ndim, "transpose") for a in static_ints(axes, "axes", "transpose"))
    if perm == tuple(range(x.ndim)):
        return x
    return transpose_p(x, perm=perm)


def expand_dims(x, axis) -> Array:
    """`np.expand_dims`: insert size-1 axes at positions `axis` (int or tuple)."""
    x = _array(x, "expand_dims")
    axes = static_ints(axis, "axis", "expand_dims")
    ndim = x.ndim + len(axes)
    axes = normalize_axes(axes, ndim, "expand_dims")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


def squeeze(x, axis=None) -> Array:
    """`np.squeeze`: drop size-1 axes (all of them, or those in `axis`)."""
    x = _array(x, "squeeze")
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise ShapeError(f"squeeze: axis {bad[0]} of {x.aval.short()} has size "
                             f"{x.shape[bad[0]]}, not 1")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def ravel(x) -> Array:
    return reshape(x, (-1,))


def slice_axes(x, starts, stops, steps) -> Array:
    """Slice every axis of `x` by NumPy `start:stop:step` triples (any sign of step).

    The triples must already be normalised by `slice.indices(n)`. Negative
    steps become a flip followed by a positive-stride `slice_p`.
    """
    flips, lo, hi, st = [], [], [], []
    for d, (n, s, e, k) in enumerate(zip(x.shape, starts, stops, steps)):
        count = len(range(s, e, k))
        if k < 0:
            flips.append(d)
            s, k = n - 1 - s, -k
        if count == 0:
            s, e = 0, 0
        else:
            e = s + (count - 1) * k + 1
        lo.append(s)
        hi.append(e)
        st.append(k)
    if flips:
        x = flip_p(x, axes=tuple(flips))
    if tuple(lo) == (0,) * x.ndim and tuple(hi) == x.shape and tuple(st) == (1,) * x.ndim:
        return x
    return slice_p(x, start_indices=tuple(lo), limit_indices=tuple(hi), strides=tuple(st))


def flip(x, axis=None) -> Array:
    """`np.flip`: reverse the order of elements along `axis` (None: all axes)."""
    x = _array(x, "flip")
    axes = normalize_axes(axis, x.ndim, "flip")
    return flip_p(x, axes=axes) if axes else x


def fliplr(x) -> Array:
    """`np.fliplr`: flip axis 1."""
    return flip(x, 1)


def flipud(x) -> Array:
    """`np.flipud`: flip axis 0."""
    return flip(x, 0)


def _pad_widths(pad_width, ndim: int, opname: str) -> list[tuple[int, int]]:
    try:
        w = np.asarray(pad_width)
        if w.dtype.kind not in "iu" and not (w.dtype.kind == "f" and np.all(w == np.round(w))):
            raise TypeError
        w = np.broadcast_to(w.astype(np.int64), (ndim, 2))
    except (TypeError, ValueError):
        raise ArgumentError(f"{opname}: pad_width must be an int, a (before, after) pair, or one "
                            f"pair per axis ({ndim} axes), got {pad_width!r}") from None
    if np.any(w < 0):
        raise ArgumentError(f"{opname}: pad_width {pad_width!r} has a negative entry; "
                            "to crop, index with a slice instead")
    return [(int(a), int(b)) for a, b in w]


_INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")


def pad(array, pad_width, mode="constant", constant_values=0) -> Array:
    """`np.pad`: pad with `constant_values` (mode "constant") or by "edge", "reflect",
    "symmetric" or "wrap".

    Args:
        array: the operand.
        pad_width: an int, a `(before, after)` pair, or one pair per axis.
        mode: "constant" (default), "edge", "reflect", "symmetric" or "wrap".
        constant_values: a scalar (Python number or 0-d array; it may be traced).
    """
    x = _array(array, "pad")
    widths = _pad_widths(pad_width, x.ndim, "pad")
    if mode == "constant":
        if isinstance(constant_values, (tuple, list)) or (
                isinstance(constant_values, (Array, np.ndarray)) and np.ndim(constant_values) != 0):
            raise NotImplementedError("pad: per-axis constant_values are not supported; pass one scalar")
        v = operand(constant_values, "pad")
        if isinstance(v, Array):
            v = v.astype(x.dtype)
        else:
            v = to_dtype(v, x.dtype)
        if all(w == (0, 0) for w in widths):
            return x
        return pad_p(x, v, config=tuple((lo, hi, 0) for lo, hi in widths))
    if mode in _INDEX_MODES:
        # the source position of every output element, computed by NumPy on an index range
        from funconv.ops.indexing import take

        for d, (lo, hi) in enumerate(widths):
            if lo or hi:
                if x.shape[d] == 0:
                    raise ShapeError(f"pad: mode {mode!r} cannot pad the empty axis {d} of {x.aval.short()}")
                src = np.pad(np.arange(x.shape[d]), (lo, hi), mode=mode)
                x = take(x, src, axis=d)
        return x
    raise NotImplementedError(f"pad: mode {mode!r} is not supported; use 'constant', "
                              + ", ".join(repr(m) for m in _INDEX_MODES))


def _arrays(arrays, opname) -> list[Array]:
    if isinstance(arrays, Array) or isinstance(arrays, np.ndarray):
        arrays = [arrays[i] for i in range(len(arrays))]
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise ArgumentError(f"{opname}: expected a non-empty sequence of arrays, got {describe(arrays)}")
    ops = [operand(a, opname) for a in arrays]
    dt = result_type(*[dtype_of(a) for a in ops])
    return [to_dtype(a if isinstance(a, Array) else asarray(a), dt) for a in ops]


def concatenate(arrays, axis=0) -> Array:
    """`np.concatenate`: join arrays along an existing axis (None: flatten first)."""
    xs = _arrays(arrays, "concatenate")
    if axis is None:
        xs = [reshape(a, (-1,)) for a in xs]
        axis = 0
    if any(a.ndim == 0 for a in xs):
        raise ShapeError(f"concatenate: zero-dimensional arrays cannot be concatenated "
                         f"({types_str(*[a.aval for a in xs])}); use stack")
    ax = normalize_axis(axis, xs[0].ndim, "concatenate")
    for a in xs:
        if a.ndim != xs[0].ndim or any(p != q for i, (p, q) in enumerate(zip(a.shape, xs[0].shape))
                                       if i != ax):
            raise ShapeError(f"concatenate: operands {types_str(*[b.aval for b in xs])} must have "
                             f"equal rank and equal sizes except along axis {axis}")
    if len(xs) == 1:
        return xs[0]
    return concatenate_p(*xs, axis=ax)


def stack(arrays, axis=0) -> Array:
    """`np.stack`: join arrays of one shape along a new axis."""
    xs = _arrays(arrays, "stack")
    if any(a.shape != xs[0].shape for a in xs):
        raise ShapeError(f"stack: all operands must have the same shape, got "
                         f"{types_str(*[a.aval for a in xs])}")
    ax = normalize_axis(axis, xs[0].ndim + 1, "stack")
    return concatenate([expand_dims(a, ax) for a in xs], axis=ax)


def vstack(arrays) -> Array:
    """`np.vstack`: concatenate along axis 0 (1-d operands become rows)."""
    xs = [a if a.ndim >= 2 else reshape(a, (1, -1)) for a in _arrays(arrays, "vstack")]
    return concatenate(xs, axis=0)


def hstack(arrays) -> Array:
    """`np.hstack`: concatenate along axis 1 (axis 0 for 1-d operands)."""
    xs = _arrays(arrays, "hstack")
    return concatenate(xs, axis=0 if xs[0].ndim == 1 else 1)


def _split_points(x, indices_or_sections, ax, opname, equal) -> list[int]:
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(indices_or_sections, bool):
        k = int(indices_or_sections)
        if k <= 0:
            raise ArgumentError(f"{opname}: the number of sections must be positive, got {k}")
        if equal and n % k:
            raise ShapeError(f"{opname}: axis {ax} of {x.aval.short()} (size {n}) does not split "
                             f"into {k} equal sections; use array_split for unequal ones")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        return list(np.cumsum([0] + sizes))
    try:
        idx = [int(i) for i in indices_or_sections]
    except (TypeError, ValueError):
        raise ArgumentError(f"{opname}: expected a number of sections or a sequence of indices, "
                            f"got {describe(indices_or_sections)}") from None
    return [0] + idx + [n]


def split(x, indices_or_sections, axis=0) -> list[Array]:
    """`np.split`: a list of sub-arrays, by a number of equal sections or by split indices."""
    x = _array(x, "split")
    ax = normalize_axis(axis, x.ndim, "split")
    return _split_at(x, _split_points(x, indices_or_sections, ax, "split", True), ax)


def array_split(x, indices_or_sections, axis=0) -> list[Array]:
    """`np.array_split`: like split, but sections may differ in size by one."""
    x = _array(x, "array_split")
    ax = normalize_axis(axis, x.ndim, "array_split")
    return _split_at(x, _split_points(x, indices_or_sections, ax, "array_split", False), ax)


def _split_at(x, points, ax) -> list[Array]:
    out = []
    for a, b in zip(points[:-1], points[1:]):
        s = slice(a, b).indices(x.shape[ax])
        starts = [0] * x.ndim
        stops = list(x.shape)
        steps = [1] * x.ndim
        starts[ax], stops[ax] = s[0], builtins.max(s[0], s[1])
        out.append(slice_axes(x, starts, stops, steps))
    return out


def moveaxis(x, source, destination) -> Array:
    """`np.moveaxis`: move axes to new positions, keeping the order of the others."""
    x = _array(x, "moveaxis")
    src = static_ints(source, "source", "moveaxis")
    dst = static_ints(destination, "destination", "moveaxis")
    if len(src) != len(dst):
        raise ArgumentError(f"moveaxis: source {source} and destination {destination} must have "
                            "the same number of elements")
    src = [normalize_axis(a, x.ndim, "moveaxis") for a in src]
    dst = [normalize_axis(a, x.ndim, "moveaxis") for a in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise AxisError(f"moveaxis: repeated axis in source {source} or destination {destination}")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, tuple(order))


def swapaxes(x, axis1, axis2) -> Array:
    """`np.swapaxes`: exchange two axes."""
    x = _array(x, "swapaxes")
    a = normalize_axis(axis1, x.ndim, "swapaxes")
    b = normalize_axis(axis2, x.ndim, "swapaxes")
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, tuple(perm))


def tile(x, reps) -> Array:
    """`np.tile`: repeat the whole array `reps` times along each axis."""
    x = _array(x, "tile")
    reps = static_ints(reps, "reps", "tile")
    if any(r < 0 for r in reps):
        raise ArgumentError(f"tile: reps must be non-negative, got {reps}")
    d = builtins.max(len(reps), x.ndim)
    reps = (1,) * (d - len(reps)) + reps
    x = reshape(x, (1,) * (d - x.ndim) + x.shape)
    # interleave a broadcast axis of size r before every axis, then merge the pairs
    inter = reshape(x, tuple(s for n in x.shape for s in (1, n)))
    big = broadcast_to(inter, tuple(s for r, n in zip(reps, x.shape) for s in (r, n)))
    return reshape(big, tuple(r * n for r, n in zip(reps, x.shape)))


def repeat(x, repeats, axis=None) -> Array:
    """`np.repeat`: repeat each element `repeats` times (an int, or one count per element)."""
    from funconv.ops.indexing import take

    x = _array(x, "repeat")
    if axis is None:
        x, ax = reshape(x, (-1,)), 0
    else:
        ax = normalize_axis(axis, x.ndim, "repeat")
    if isinstance(repeats, Array):
        repeats = repeats._require_value("repeat with array counts")
    try:
        src = np.repeat(np.arange(x.shape[ax]), repeats)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"repeat: bad repeats {describe(repeats)} for axis of size "
                            f"{x.shape[ax]}: {e}") from None
    return take(x, src, axis=ax)


def roll(x, shift, axis=None) -> Array:
    """`np.roll`: shift elements cyclically along `axis` (None: the flattened array)."""
    from funconv.ops.indexing import take

    x = _array(x, "roll")
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, 0), x.shape)
    shifts = static_ints(shift, "shift", "roll")
    axes = static_ints(axis, "axis", "roll")
    if len(shifts) != len(axes) and 1 not in (len(shifts), len(axes)):
        raise ArgumentError(f"roll: {len(shifts)} shifts for {len(axes)} axes")
    shifts, axes = np.broadcast_arrays(np.asarray(shifts), np.asarray(axes))
    for s, a in zip(shifts.ravel(), axes.ravel()):
        a = normalize_axis(int(a), x.ndim, "roll")
        if x.shape[a]:
            x = take(x, np.roll(np.arange(x.shape[a]), int(s)), axis=a)
    return x


def broadcast_arrays(*arrays) -> tuple[Array, ...]:
    """`np.broadcast_arrays`: the operands broadcast to their common shape (dtypes kept)."""
    xs = [_array(a, "broadcast_arrays") for a in arrays]
    shape = _broadcast_shapes("broadcast_arrays", *[a.shape for a in xs], types=[a.aval for a in xs])
    return tuple(broadcast_to(a, shape) for a in xs)  # a tuple, as the Array API (and NumPy 2)


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """`np.broadcast_shapes`: the shape that arrays of `shapes` broadcast to."""
    norm = [static_ints(s, "a shape", "broadcast_shapes") for s in shapes]
    return _broadcast_shapes("broadcast_shapes", *norm)


def atleast_1d(x) -> Array:
    """`np.atleast_1d` (one operand)."""
    x = _array(x, "atleast_1d")
    return x if x.ndim >= 1 else reshape(x, (1,))


def atleast_2d(x) -> Array:
    """`np.atleast_2d` (one operand)."""
    x = _array(x, "atleast_2d")
    return x if x.ndim >= 2 else reshape(x, (1,) * (2 - x.ndim) + x.shape)


def diff(x, n=1, axis=-1, prepend=None, append=None) -> Array:
    """`np.diff`: the n-th forward difference along `axis` (bools: not_equal, as NumPy), of x
    with `prepend` and `append` joined to it along `axis` first."""
    from funconv.ops.elementwise import not_equal, subtract

    x = _array(x, "diff")
    if (prepend is not None or append is not None) and x.ndim:
        ax = normalize_axis(axis, x.ndim, "diff")
        edge = tuple(1 if i == ax else d for i, d in enumerate(x.shape))

        def part(v):  # a scalar is broadcast to one slice of x, as NumPy
            v = _array(v, "diff")
            return broadcast_to(v, edge) if v.ndim == 0 else v

        parts = ([part(prepend)] if prepend is not None else []) + [x] + (
            [part(append)] if append is not None else [])
        x = concatenate(parts, axis=ax)
    if x.ndim == 0:
        raise ShapeError("diff: needs at least one dimension, got a 0-d array")
    ax = normalize_axis(axis, x.ndim, "diff")
    n = static_int(n, "n", "diff")
    if n < 0:
        raise ArgumentError(f"diff: order n must be non-negative, got {n}")
    for _ in range(n):
        m = x.shape[ax]
        lo = [0] * x.ndim
        hi = list(x.shape)
        st = [1] * x.ndim
        lo_b, hi_a = list(lo), list(hi)
        lo_b[ax] = builtins.min(1, m)
        hi_a[ax] = builtins.max(m - 1, 0)
        later, earlier = slice_axes(x, lo_b, hi, st), slice_axes(x, lo, hi_a, st)
        x = not_equal(later, earlier) if x.dtype.kind == "b" else subtract(later, earlier)
    return x


__all__ = ["reshape", "transpose", "expand_dims", "squeeze", "ravel", "flip", "fliplr", "flipud",
           "pad", "concatenate", "stack", "vstack", "hstack", "split", "array_split", "moveaxis",
           "swapaxes", "tile", "repeat", "roll", "broadcast_arrays", "atleast_1d", "atleast_2d", "diff",
           "broadcast_shapes"]
