"""Indexing: `x[idx]` (NumPy basic and advanced indexing), `x.at[idx].set/add/multiply`,
`take`, `take_along_axis`, and the primitives they are built from.

Primitives (shape rule, NumPy meaning and VJP of each sit together below):
- `iota`: `arange` along one dimension of a shape; no operands, not differentiable.
- `gather(x, idx)`: gather_nd style. `idx` is an integer array of shape
  `(..., k)`; each row indexes the leading k axes of x, so the result has shape
  `idx.shape[:-1] + x.shape[k:]`. Its VJP is a scatter_add into zeros.
- `scatter_add(x, idx, updates)`: the transpose of gather: adds each row of
  `updates` at the position `idx` names (duplicates accumulate). Its VJP is
  the identity for x and a gather for updates.
- `argsort(x, axis)`: stable argsort (int32), not differentiable; `sort` is a
  `take_along_axis` by it, so its gradient follows the permutation.
Indices reaching these primitives are non-negative (the wrappers normalise
negative ones); out-of-range indices that could not be checked (traced
under jit) are clamped, in gather and scatter_add alike, so the two stay each
other's adjoint.

`getitem` lowers NumPy indexing onto slice/flip/reshape (basic indexing) and
one transpose + gather (integer arrays). `index_update` computes the flat
position of every selected element by indexing an iota array with the same
index, then scatters. Imports _core, shape, primitive, types.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, IndexingError, ShapeError
from funconv.ops._core import asarray, broadcast_to, describe, operand, to_dtype
from funconv.primitive import Primitive
from funconv.types import ArrayType, canonical_dtype, int32, int64

# --- iota -------------------------------------------------------------------------------------


def _iota_rule(*, shape, dtype, dimension) -> ArrayType:
    if not 0 <= dimension < len(shape):
        raise ShapeError(f"iota: dimension {dimension} out of range for shape {shape}")
    if dtype.kind not in "iuf":
        raise DTypeError(f"iota: dtype must be integer or float, got {dtype}")
    return ArrayType(tuple(shape), dtype)


def _iota_impl(*, shape, dtype, dimension):
    r = np.arange(shape[dimension], dtype=dtype)
    view = r.reshape(tuple(n if i == dimension else 1 for i, n in enumerate(shape)))
    return np.ascontiguousarray(np.broadcast_to(view, shape))


iota_p = Primitive("iota", _iota_rule, _iota_impl, differentiable=False)


def iota(dtype, size) -> Array:
    """`lax.iota`: `[0, 1, ..., size-1]` of `dtype`."""
    from funconv.ops._core import static_int

    size = static_int(size, "size", "iota")
    if size < 0:
        raise ShapeError(f"iota: size must be non-negative, got {size}")
    return iota_p(shape=(size,), dtype=canonical_dtype(dtype), dimension=0)


def broadcasted_iota(dtype, shape, dimension) -> Array:
    """`lax.broadcasted_iota`: the index along `dimension` at every position of `shape`."""
    from funconv.ops._core import static_int, static_ints

    return iota_p(shape=static_ints(shape, "shape", "broadcasted_iota"), dtype=canonical_dtype(dtype),
                  dimension=static_int(dimension, "dimension", "broadcasted_iota"))


# --- gather -----------------------------------------------------------------------------------


def _gather_check(name, x: ArrayType, idx: ArrayType) -> int:
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{name}: indices must be integers, got {idx.short()}")
    if idx.ndim < 1 or idx.shape[-1] > x.ndim:
        raise ShapeError(f"{name}: indices {idx.short()} must have shape (..., k) with k <= "
                         f"the rank of the operand {x.short()}")
    return idx.shape[-1]


def _gather_rule(x: ArrayType, idx: ArrayType) -> ArrayType:
    k = _gather_check("gather", x, idx)
    return ArrayType(idx.shape[:-1] + x.shape[k:], x.dtype)


def _index_columns(x, idx):
    """The k clamped index columns of `idx`, for NumPy advanced indexing of x's leading axes."""
    k = idx.shape[-1]
    return tuple(np.clip(idx[..., j], 0, x.shape[j] - 1) for j in range(k))


def _gather_impl(x, idx):
    k = idx.shape[-1]
    out_shape = idx.shape[:-1] + x.shape[k:]
    if k == 0:
        return np.ascontiguousarray(np.broadcast_to(x, out_shape))
    if builtins.any(x.shape[j] == 0 for j in range(k)):
        return np.zeros(out_shape, x.dtype)  # nothing to gather from; only empty idx is valid
    return x[_index_columns(x, idx)]


def _gather_vjp(ct, out, x, idx):
    from funconv.ops.creation import zeros

    return scatter_add_p(zeros(x.shape, x.dtype), idx, ct), None


# linear=True here and in scatter_add: linear in the value operands, the integer index operand
# being a fixed parameter of the map (it is never differentiated)
gather_p = Primitive("gather", _gather_rule, _gather_impl, _gather_vjp, linear=True)

# --- scatter_add ---------------------------------------------------------------------------------


def _scatter_add_rule(x: ArrayType, idx: ArrayType, upd: ArrayType) -> ArrayType:
    k = _gather_check("scatter_add", x, idx)
    want = idx.shape[:-1] + x.shape[k:]
    if upd.shape != want or upd.dtype != x.dtype:
        raise ShapeError(f"scatter_add: updates must be {ArrayType(want, x.dtype).short()} for "
                         f"operand {x.short()} and indices {idx.short()}, got {upd.short()}")
    return x


def _scatter_add_impl(x, idx, upd):
    out = np.array(x, copy=True)
    k = idx.shape[-1]
    if idx.size == 0 or builtins.any(x.shape[j] == 0 for j in range(k)):
        return out
    if k == 0:
        return out + upd.sum(axis=tuple(range(idx.ndim - 1)), dtype=x.dtype)
    cols = _index_columns(x, idx)
    rows, tail = math.prod(idx.shape[:-1]), x.shape[k:]
    if rows <= _FEW_ROWS and math.prod(tail) >= _LONG_SLICE:
        # NOTE: np.add.at walks each slice element by element (11 ns per element: 22 ms for
        # 35 slices of 55K in an adaptive max pool's gradient); a few long slices add
        # faster one by one, in the same order (duplicates accumulate in index order)
        flat_out = out.reshape((-1,) + tail)
        flat_upd = upd.reshape((rows,) + tail)
        for j, i in enumerate(np.ravel_multi_index(cols, x.shape[:k]).ravel().tolist()):
            flat_out[i] += flat_upd[j]
        return out
    np.add.at(out, cols, upd)  # unbuffered: duplicate indices accumulate
    return out


# when scatter_add adds slice by slice instead of np.add.at: few slices, each long enough
# that NumPy's per-call cost (~1 us) is small against the add
_FEW_ROWS, _LONG_SLICE = 4096, 256


scatter_add_p = Primitive("scatter_add", _scatter_add_rule, _scatter_add_impl,
                          lambda ct, out, x, idx, upd: (ct, None, gather_p(ct, idx)), linear=True)

# --- getitem --------------------------------------------------------------------------------------


def _array(x, opname) -> Array:
    x = operand(x, opname)
    return x if isinstance(x, Array) else asarray(x)


def _index_array(item, x: Array):
    """An index item that is an array: a NumPy int array if concrete, else an int Array."""
    if isinstance(item, (list, tuple)):
        try:
            v = np.asarray(item)
        except ValueError:
            raise IndexingError(f"getitem: ragged index list {describe(item)} for {x.aval.short()}") from None
        if v.size == 0:
            v = v.astype(np.int64)
        item = v
    if isinstance(item, Array):
        v = item._concrete_value()
        if v is None:
            if item.dtype.kind not in "iub":
                raise IndexingError(f"getitem: index arrays must be integers (or bool masks), got "
                                    f"{item.aval.short()} for {x.aval.short()}; convert with "
                                    ".astype(fc.int32)")
            return item
        item = v
    if item.dtype.kind not in "iub":
        raise IndexingError(f"getitem: index arrays must be integers (or bool masks), got "
                            f"{describe(item)} for {x.aval.short()}; convert with .astype(int)")
    return np.asarray(item)


def _parse_index(x: Array, idx):
    """Normalise `idx` to a list of ("none"|"slice"|"int"|"array", value, dim) items,
    with Ellipsis expanded and bool masks turned into integer arrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    raw = []
    for it in idx:
        if it is None or it is Ellipsis or isinstance(it, slice):
            raw.append(it)
        elif isinstance(it, (bool, np.bool_)):
            raise IndexingError(f"getitem: a Python bool index on {x.aval.short()} is not supported; "
                                "use a bool array mask")
        elif isinstance(it, (int, np.integer)):
            raw.append(int(it))
        elif isinstance(it, (Array, np.ndarray, list, tuple)):
            a = _index_array(it, x)
            if a.ndim == 0 and isinstance(a, np.ndarray) and a.dtype.kind in "iu":
                raw.append(int(a))
            elif a.dtype.kind == "b":
                if not isinstance(a, np.ndarray):
                    raise IndexingError(
                        f"getitem: a bool mask {a.aval.short()} needs a concrete value (its result's "
                        "shape depends on it), but it is traced under jit; use fc.where(mask, x, 0) "
                        "or pass the mask as a static argument")
                if a.ndim == 0:
                    raise IndexingError("getitem: a 0-d bool mask is supported only as the whole "
                                        "index (x[mask]); use x[None] or x[None][:0] with others")
                raw.append(("mask", a))
            else:
                raw.append(a)
        else:
            raise IndexingError(f"getitem: unsupported index {describe(it)} for {x.aval.short()}; "
                                "use ints, slices, None, ..., or integer/bool arrays")
    consumed = builtins.sum(it[1].ndim if isinstance(it, tuple) else 1
                            for it in raw if it is not None and it is not Ellipsis)
    n_ell = builtins.sum(1 for it in raw if it is Ellipsis)
    if n_ell > 1:
        raise IndexingError("getitem: an index can only have a single ellipsis ('...')")
    if consumed > x.ndim:
        raise IndexingError(f"getitem: too many indices for {x.aval.short()}: {consumed} were "
                            f"given, the array has {x.ndim} dimension(s)")
    fill = [slice(None)] * (x.ndim - consumed)
    if n_ell:
        k = next(i for i, it in enumerate(raw) if it is Ellipsis)
        raw = raw[:k] + fill + raw[k + 1:]
    else:
        raw = raw + fill
    items, dim = [], 0
    for it in raw:
        if it is None:
            items.append(("none", None, None))
        elif isinstance(it, slice):
            items.append(("slice", it, dim))
            dim += 1
        elif isinstance(it, int):
            n = x.shape[dim]
            if not -n <= it < n:
                raise IndexingError(f"getitem: index {it} is out of bounds for axis {dim} with size "
                                    f"{n} (array {x.aval.short()})")
            items.append(("int", it % n, dim))
            dim += 1
        elif isinstance(it, tuple):  # a bool mask: its nonzero() coordinates, one array per axis
            mask = it[1]
            want = x.shape[dim:dim + mask.ndim]
            if mask.shape != want:
                raise IndexingError(f"getitem: bool mask of shape {mask.shape} does not match "
                                    f"the indexed dimensions {want} of {x.aval.short()}")
            for coords in np.nonzero(mask):
                items.append(("array", coords, dim))
                dim += 1
        else:
            items.append(("array", it, dim))
            dim += 1
    return items


def _normalize_index_array(a, n: int, dim: int, x: Array):
    """Non-negative indices for an axis of size n; concrete ones are bounds-checked."""
    if isinstance(a, np.ndarray):
        if a.size and (a.min() < -n or a.max() >= n):
            bad = a[(a < -n) | (a >= n)].ravel()[0]
            raise IndexingError(f"getitem: index {bad} is out of bounds for axis {dim} with size {n} "
                                f"(array {x.aval.short()})")
        return np.where(a < 0, a + n, a)
    from funconv.ops.elementwise import where

    return where(a < 0, a + n, a)


def getitem(x, idx) -> Array:
    """`x[idx]` with NumPy's meaning.

    Supports ints (negative count from the end), slices with any step, None,
    Ellipsis, integer arrays (concrete or traced; NumPy's advanced-indexing
    rules, including the placement of the broadcast index dimensions first
    when advanced indices are not adjacent) and concrete bool masks.
    Out-of-range static indices raise IndexingError; traced ones are clamped.
    """
    from funconv.ops.shape import reshape, slice_axes, transpose

    x = _array(x, "getitem")
    mask0 = idx[0] if isinstance(idx, tuple) and len(idx) == 1 else idx
    if isinstance(mask0, (Array, np.ndarray)) and mask0.ndim == 0 and mask0.dtype == np.bool_:
        # a lone 0-d bool mask (NumPy, Array API): a new leading axis of length 1 (True) or 0
        keep = bool(_index_array(mask0, x)) if isinstance(mask0, np.ndarray) else mask0._require_value(
            "getitem with a 0-d bool mask (the result's shape depends on it)")
        y = reshape(x, (1,) + x.shape)
        return y if keep else getitem(y, slice(0, 0))
    items = _parse_index(x, idx)
    has_adv = builtins.any(kind == "array" for kind, _, _ in items)
    if has_adv:  # NumPy: integers among advanced indices act as 0-d index arrays
        items = [("array", np.asarray(v), d) if kind == "int" else (kind, v, d) for kind, v, d in items]
    # basic part: one slice over all axes
    starts, stops, steps = [0] * x.ndim, list(x.shape), [1] * x.ndim
    for kind, v, d in items:
        if kind == "slice":
            starts[d], stops[d], steps[d] = v.indices(x.shape[d])
        elif kind == "int":
            starts[d], stops[d] = v, v + 1
    y = slice_axes(x, starts, stops, steps)
    if not has_adv:
        shape = []
        for kind, v, d in items:
            if kind == "none":
                shape.append(1)
            elif kind == "slice":
                shape.append(y.shape[d])
        return reshape(y, tuple(shape))
    # advanced part: transpose the indexed axes to the front and gather once
    adv = [(v, d) for kind, v, d in items if kind == "array"]
    adv_dims = [d for _, d in adv]
    rest_dims = [d for kind, _, d in items if kind == "slice"]
    arrays = [_normalize_index_array(v, y.shape[d], d, x) for v, d in adv]
    index = _stack_indices(arrays, x)
    yt = transpose(y, tuple(adv_dims + rest_dims))
    res = gather_p(yt, index)
    nb = index.ndim - 1
    bshape = res.shape[:nb]
    positions = [i for i, (kind, _, _) in enumerate(items) if kind == "array"]
    adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
    layout = []  # the result's axes in order: ("B",), ("one",), ("rest", size)
    if not adjacent:
        layout.append(("B",))
    rest_sizes = iter(res.shape[nb:])
    for i, (kind, _, _) in enumerate(items):
        if kind == "none":
            layout.append(("one",))
        elif kind == "slice":
            layout.append(("rest", next(rest_sizes)))
        elif adjacent and i == positions[0]:
            layout.append(("B",))
    before = 0
    for entry in layout:
        if entry[0] == "B":
            break
        before += entry[0] == "rest"
    nrest = len(rest_dims)
    perm = (tuple(range(nb, nb + before)) + tuple(range(nb))
            + tuple(range(nb + before, nb + nrest)))
    res = transpose(res, perm)
    final = []
    for entry in layout:
        if entry[0] == "B":
            final.extend(bshape)
        elif entry[0] == "one":
            final.append(1)
        else:
            final.append(entry[1])
    return reshape(res, tuple(final))


def _stack_indices(arrays, x: Array) -> Array:
    """Broadcast the index arrays together and stack them on a new last axis: (B..., k)."""
    from funconv.ops._core import broadcast_shapes
    from funconv.ops.shape import concatenate, reshape

    shapes = [np.shape(a) if isinstance(a, np.ndarray) else a.shape for a in arrays]
    try:
        b = broadcast_shapes("getitem", *shapes)
    except ShapeError:
        raise IndexingError(f"getitem: index arrays of shapes {', '.join(map(str, shapes))} cannot "
                            f"be broadcast together (indexing {x.aval.short()})") from None
    big = builtins.max(x.shape, default=0) >= 2**31 - 1
    dt = int64 if big or builtins.any(not isinstance(a, np.ndarray) and a.dtype == int64
                                      for a in arrays) else int32
    if builtins.all(isinstance(a, np.ndarray) for a in arrays):
        return asarray(np.stack([np.broadcast_to(a, b) for a in arrays], axis=-1).astype(dt))
    cols = [reshape(broadcast_to(to_dtype(asarray(a), dt), b), b + (1,)) for a in arrays]
    return concatenate(cols, axis=-1)


# --- x.at[idx] --------------------------------------------------------------------------------------


def index_update(x, idx, values, mode: str) -> Array:
    """`x.at[idx].set(values)` / `.add` / `.multiply` / `.divide` / `.min` / `.max`: a new array.

    `values` broadcast to the shape of `x[idx]` and are cast to x's dtype. With
    repeated indices, `add` accumulates, `multiply`/`divide`/`min`/`max` apply
    every value in turn, and `set` keeps the last one (as NumPy). Under jit
    with traced index arrays, repeated indices are exact for `add` only, and
    unspecified for the others (as in JAX).
    """
    from funconv.ops.elementwise import where
    from funconv.ops.shape import reshape
    from funconv.ops.creation import zeros

    x = _array(x, f"at[].{mode}")
    if mode not in ("set", "add", "multiply", "divide", "min", "max"):
        raise ValueError(f"index_update: unknown mode {mode!r}")
    pos_dt = int64 if x.size >= 2**31 - 1 else int32
    positions = getitem(asarray(np.arange(x.size, dtype=pos_dt).reshape(x.shape)), idx)
    v = operand(values, f"at[].{mode}")
    if isinstance(v, complex) and x.dtype.kind != "c":
        v = asarray(v)  # converted below, dropping the imaginary part as NumPy's assignment does
    v = to_dtype(v, x.dtype) if not isinstance(v, Array) else v.astype(x.dtype)
    if v.shape != positions.shape:
        try:
            v = broadcast_to(v, positions.shape)
        except ShapeError:
            raise ShapeError(f"at[].{mode}: values {v.aval.short()} cannot be broadcast to the "
                             f"indexed shape {positions.shape} of {x.aval.short()}") from None
    if mode == "divide":
        from funconv.ops.elementwise import divide

        if x.dtype.kind not in "fc":
            raise DTypeError(f"at[].divide: needs a float or complex array, got {x.aval.short()}")
        mode, v = "multiply", divide(1, v)
    flat = reshape(x, (-1,))
    p = reshape(positions, (-1, 1))
    v = reshape(v, (-1,))
    if mode == "add":
        return reshape(scatter_add_p(flat, p, v), x.shape)
    if mode == "multiply" and x.dtype.kind == "b":
        raise DTypeError(f"at[].multiply: not supported for {x.aval.short()}")
    pv = positions._concrete_value()
    if pv is None:
        rounds = [None]
    else:
        pv = pv.ravel()
        rank = _occurrence_rank(pv)
        rounds = [None] if rank.size == 0 or rank.max() == 0 else \
            [np.nonzero(rank == r)[0] for r in range(int(rank.max()) + 1)]
    for sel in rounds:  # each round touches every position at most once
        p_r = p if sel is None else asarray(pv[sel].reshape(-1, 1).astype(pos_dt))
        v_r = v if sel is None else take(v, sel)
        scattered = scatter_add_p(zeros(flat.shape, x.dtype), p_r, v_r)
        if pv is not None:
            m = np.zeros(x.size, bool)
            m[pv if sel is None else pv[sel]] = True
            mask = asarray(m)
        else:
            count = scatter_add_p(zeros(flat.shape, int32), p_r, broadcast_to(to_dtype(1, int32), v_r.shape))
            mask = count > 0
        if mode == "set":
            flat = where(mask, scattered, flat)
        elif mode == "multiply":
            flat = flat * where(mask, scattered, 1)
        else:
            from funconv.ops.elementwise import maximum, minimum

            flat = where(mask, (minimum if mode == "min" else maximum)(flat, scattered), flat)
    return reshape(flat, x.shape)


def _occurrence_rank(p: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries hold the same value."""
    order = np.argsort(p, kind="stable")
    sp = p[order]
    starts = np.r_[0, np.nonzero(sp[1:] != sp[:-1])[0] + 1] if sp.size else np.zeros(0, int)
    group_start = np.repeat(starts, np.diff(np.r_[starts, sp.size]))
    rank = np.empty(p.size, np.int64)
    rank[order] = np.arange(p.size) - group_start
    return rank


# --- take, take_along_axis ------------------------------------------------------------------------


def take(x, indices, axis=None, mode=None) -> Array:
    """`np.take`: elements of `x` at `indices` along `axis` (None: the flattened array).

    `mode`: None or "raise" (out-of-range concrete indices raise IndexingError),
    "wrap" (indices modulo the axis size) or "clip" (clamped to the axis).
    """
    from funconv.ops._core import normalize_axis
    from funconv.ops.shape import reshape

    x = _array(x, "take")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = normalize_axis(axis, x.ndim, "take")
    idx = _take_index(indices, "take")
    if mode in ("wrap", "clip"):
        from funconv.ops.elementwise import clip, remainder

        n = x.shape[ax]
        if n == 0:
            raise IndexingError(f"take: cannot take from the empty axis {ax} of {x.aval.short()}")
        idx = idx if isinstance(idx, Array) else asarray(np.asarray(idx))
        if idx.dtype.kind not in "iu":
            raise IndexingError(f"take: indices must be integers, got {idx.aval.short()}")
        idx = remainder(idx, n) if mode == "wrap" else clip(idx, 0, n - 1)
    elif mode not in (None, "raise"):
        raise ValueError(f"take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    return getitem(x, (slice(None),) * ax + (idx,))


def _take_index(indices, opname):
    if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
        return int(indices)
    if isinstance(indices, (Array, np.ndarray, list, tuple)):
        return indices
    raise IndexingError(f"{opname}: indices must be an int or an integer array, got {describe(indices)}")


def take_along_axis(arr, indices, axis) -> Array:
    """`np.take_along_axis`: pick along `axis` by `indices` of the same rank as `arr`."""
    from funconv.ops._core import normalize_axis
    from funconv.ops.shape import reshape

    x = _array(arr, "take_along_axis")
    idx = _take_index(indices, "take_along_axis")
    if not isinstance(idx, Array):
        idx = _index_array(idx if isinstance(idx, (list, tuple, np.ndarray)) else np.asarray(idx), x)
        idx = idx if isinstance(idx, Array) else asarray(idx)
    if idx.dtype.kind not in "iu":
        raise IndexingError(f"take_along_axis: indices must be integers, got {idx.aval.short()}")
    if axis is None:
        x, idx, axis = reshape(x, (-1,)), reshape(idx, (-1,)), 0
    if idx.ndim != x.ndim:
        raise IndexingError(f"take_along_axis: indices {idx.aval.short()} must have the rank of the "
                            f"array {x.aval.short()}")
    ax = normalize_axis(axis, x.ndim, "take_along_axis")
    full = []
    for d in range(x.ndim):
        if d == ax:
            full.append(idx)
        else:
            full.append(np.arange(x.shape[d]).reshape(tuple(-1 if i == d else 1 for i in range(x.ndim))))
    return getitem(x, tuple(full))


# --- nonzero, sorting -------------------------------------------------------------------------------


def nonzero(x) -> tuple[Array, ...]:
    """`np.nonzero`: one int32 index array per axis. Needs a concrete `x` (the result's
    shape depends on its values), so not under jit: use `where(mask, x, 0)` there."""
    x = _array(x, "nonzero")
    v = x._require_value("nonzero (or where(condition) / x[mask]), whose result shape depends "
                         "on the values,")
    if v.ndim == 0:
        raise IndexingError("nonzero: not defined for 0-d arrays; use atleast_1d(x) first")
    return tuple(asarray(i.astype(np.int32)) for i in np.nonzero(v))


def argwhere(x) -> Array:
    """`np.argwhere`: the indices of the nonzero elements, shape (count, ndim)."""
    x = _array(x, "argwhere")
    v = x._require_value("argwhere, whose result shape depends on the values,")
    return asarray(np.argwhere(v).astype(np.int32))


def _argsort_rule(x: ArrayType, *, axis) -> ArrayType:
    if x.dtype.kind not in "biuf":
        raise DTypeError(f"argsort: does not accept {x.short()}")
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"argsort: axis {axis} out of range for {x.short()}")
    return ArrayType(x.shape, int32)


# a stable sort (equal elements keep their order), so results are deterministic
argsort_p = Primitive("argsort", _argsort_rule,
                      lambda x, *, axis: np.argsort(x, axis=axis, kind="stable").astype(np.int32),
                      differentiable=False)


def argsort(x, axis=-1, descending=False, *, stable=True) -> Array:
    """`np.argsort` (stable: ties keep their order; int32 indices; axis None flattens).

    `descending=True` sorts from largest to smallest, still keeping ties in order (as JAX).
    """
    from funconv.ops._core import normalize_axis
    from funconv.ops.shape import flip, reshape

    x = _array(x, "argsort")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    if x.ndim == 0:
        raise ShapeError("argsort: needs at least one dimension, got a 0-d array")
    ax = normalize_axis(axis, x.ndim, "argsort")
    if not descending:
        return argsort_p(x, axis=ax)
    # a stable ascending sort of the reversed array, read backwards, is a stable descending one
    n = x.shape[ax]
    return (n - 1) - flip(argsort_p(flip(x, ax), axis=ax), ax)


def sort(x, axis=-1, descending=False, *, stable=True) -> Array:
    """`np.sort` (axis None flattens); differentiable: the gradient follows the permutation."""
    from funconv.ops.shape import reshape

    x = _array(x, "sort")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return take_along_axis(x, argsort(x, axis, descending), axis)


__all__ = ["iota", "broadcasted_iota", "take", "take_along_axis", "nonzero", "argwhere", "argsort",
           "sort"]


# --- searchsorted (the Array API's) ----------------------------------------------------------


def _searchsorted_rule(x1: ArrayType, x2: ArrayType, *, side) -> ArrayType:
    if x1.ndim != 1:
        raise ShapeError(f"searchsorted: x1 must be 1-d (sorted), got {x1.short()}")
    if x1.dtype != x2.dtype or x1.dtype.kind not in "biuf":
        raise DTypeError(f"searchsorted: operands must be real and of one dtype, got {x1.short()}, "
                         f"{x2.short()}")
    return ArrayType(x2.shape, int32)


# integer-valued, so not differentiable (the insertion points are piecewise constant)
searchsorted_p = Primitive("searchsorted", _searchsorted_rule,
                           lambda x1, x2, *, side: np.searchsorted(x1, x2, side=side).astype(np.int32),
                           differentiable=False)


def searchsorted(x1, x2, /, *, side="left", sorter=None) -> Array:
    """Indices at which to insert x2's elements into the sorted 1-d x1 to keep it sorted
    ("left": before equal elements, "right": after); `sorter` sorts an unsorted x1."""
    if side not in ("left", "right"):
        raise ArgumentError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    from funconv.ops._core import dtype_of, operand, to_dtype
    from funconv.types import result_type

    a, v = _array(x1, "searchsorted"), operand(x2, "searchsorted")  # a scalar x2 stays weak
    if a.ndim != 1:
        raise ShapeError(f"searchsorted: x1 must be 1-d (sorted), got {a.aval.short()}")
    if sorter is not None:
        a = take(a, sorter)
    dt = result_type(a.dtype, dtype_of(v))
    return searchsorted_p(to_dtype(a, dt), to_dtype(v, dt), side=side)


__all__ += ["searchsorted"]
