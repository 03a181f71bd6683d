"""The Array API standard's namespace-level functions: dtype inspection (`finfo`, `iinfo`,
`isdtype`, `result_type`, `can_cast`), `__array_namespace_info__`, and the standard's names
for functions funconv has under NumPy's (`concat`, `permute_dims`, ...) or that are
compositions of its primitives (`vecdot`, `unstack`, `cumulative_sum`, `unique_*`, ...).

Everything here is immutable and traceable (data-dependent shapes, `unique_*`, need concrete
arrays, as `nonzero` does) and differentiable where the math is, being built from funconv ops.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError
from funconv.ops._core import asarray, describe, normalize_axis, operand, to_dtype
from funconv.types import (SUPPORTED, DEFAULT_COMPLEX, DEFAULT_FLOAT, DEFAULT_INT, canonical_dtype, result_type as _result_type, short_dtype)

# 2025.12: tuples from meshgrid/broadcast_arrays/devices, scalars in searchsorted and isin
__array_api_version__ = "2025.12"

# --- dtypes ------------------------------------------------------------------------------


def _dtype_arg(x, opname) -> np.dtype:
    """The dtype of an Array or a dtype-like (np.float32, "int8", fc.uint8, ...)."""
    if isinstance(x, Array):
        return x.dtype
    try:
        return canonical_dtype(x)
    except DTypeError as e:
        raise DTypeError(f"{opname}: {e}") from None


@dataclass(frozen=True)
class finfo_object:
    """Machine limits of a floating-point dtype (the Array API's `finfo` result)."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: np.dtype


@dataclass(frozen=True)
class iinfo_object:
    """Machine limits of an integer dtype (the Array API's `iinfo` result)."""

    bits: int
    max: int
    min: int
    dtype: np.dtype


def finfo(type) -> finfo_object:  # noqa: A002 (the standard's name)
    """Limits of a float or complex dtype (of its real component for complex), or of an Array's."""
    d = _dtype_arg(type, "finfo")
    if d.kind not in "fc":
        raise DTypeError(f"finfo: needs a floating-point dtype, got {short_dtype(d)}; "
                         "use iinfo for integers")
    f = np.finfo(d)
    return finfo_object(int(f.bits), float(f.eps), float(f.max), float(f.min),
                        float(f.smallest_normal), f.dtype)


def iinfo(type) -> iinfo_object:  # noqa: A002
    """Limits of an integer dtype, or of an Array's."""
    d = _dtype_arg(type, "iinfo")
    if d.kind not in "iu":
        raise DTypeError(f"iinfo: needs an integer dtype, got {short_dtype(d)}; use finfo for floats")
    i = np.iinfo(d)
    return iinfo_object(int(i.bits), int(i.max), int(i.min), d)


_KINDS = {
    "bool": "b",
    "signed integer": "i",
    "unsigned integer": "u",
    "integral": "iu",
    "real floating": "f",
    "complex floating": "c",
    "numeric": "iufc",
}


def isdtype(dtype, kind) -> bool:
    """Whether `dtype` is of `kind`: a dtype, a kind name ("integral", "real floating", ...),
    or a tuple of these."""
    d = _dtype_arg(dtype, "isdtype")
    if isinstance(kind, tuple):
        return builtins.any(isdtype(d, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ArgumentError(f"isdtype: unknown kind {kind!r}; use a dtype or one of "
                                f"{', '.join(map(repr, _KINDS))}")
        return d.kind in _KINDS[kind]
    return d == _dtype_arg(kind, "isdtype")


def result_type(*arrays_and_dtypes) -> np.dtype:
    """The dtype funconv's promotion gives these Arrays, dtypes and Python scalars (scalars
    are weak: they adopt the dtype of the arrays they meet)."""
    if not arrays_and_dtypes:
        raise ArgumentError("result_type: needs at least one array or dtype")
    ops = []
    for x in arrays_and_dtypes:
        if isinstance(x, (bool, int, float, complex)):
            ops.append(x)
        else:
            ops.append(_dtype_arg(x, "result_type"))
    if builtins.all(not isinstance(o, np.dtype) for o in ops):
        raise ArgumentError("result_type: needs at least one array or dtype (Python scalars "
                            "alone have no dtype)")
    return _result_type(*ops)


def can_cast(from_, to) -> bool:
    """Whether `from_` (a dtype or Array) promotes to `to` without changing kind downward or
    losing range: the standard's type-promotion lattice (result_type(from_, to) == to)."""
    f, t = _dtype_arg(from_, "can_cast"), _dtype_arg(to, "can_cast")
    return _result_type(f, t) == t


class _Info:
    """`__array_namespace_info__()`: funconv's devices and dtypes (one device, the CPU)."""

    def capabilities(self) -> dict:
        # nonzero/unique/boolean masks work on concrete arrays (eager), not under jit
        return {"boolean indexing": True, "data-dependent shapes": True,
                "max dimensions": None}

    def default_device(self):
        return "cpu"

    def devices(self) -> tuple:
        return ("cpu",)

    def default_dtypes(self, *, device=None) -> dict:
        return {"real floating": DEFAULT_FLOAT, "complex floating": DEFAULT_COMPLEX,
                "integral": DEFAULT_INT, "indexing": DEFAULT_INT}

    def dtypes(self, *, device=None, kind=None) -> dict:
        names = {"bool": "bool", "int8": "int8", "int16": "int16", "int32": "int32",
                 "int64": "int64", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32",
                 "uint64": "uint64", "float32": "float32", "float64": "float64",
                 "complex64": "complex64", "complex128": "complex128"}
        out = {n: np.dtype(d) for n, d in names.items()}
        assert set(out.values()) == set(SUPPORTED)
        if kind is None:
            return out
        return {n: d for n, d in out.items() if isdtype(d, kind)}


def __array_namespace_info__() -> _Info:
    """The Array API's inspection namespace."""
    return _Info()


# --- the standard's names for NumPy's functions, and compositions ------------------------


def _array(x, opname) -> Array:
    x = operand(x, opname)
    return x if isinstance(x, Array) else asarray(x)


def concat(arrays, /, *, axis=0) -> Array:
    """The standard's `concatenate` (axis=None flattens first)."""
    from funconv.ops.shape import concatenate

    return concatenate(arrays, axis=axis)


def permute_dims(x, /, axes) -> Array:
    """The standard's `transpose(x, axes)`."""
    from funconv.ops.shape import transpose

    if axes is None:
        raise ArgumentError("permute_dims: axes is required (a permutation of the axes); "
                            "use matrix_transpose or transpose(x) to reverse them")
    return transpose(x, axes)


def matrix_transpose(x, /) -> Array:
    """Swap the last two axes (a stack of matrices transposed)."""
    from funconv.ops.shape import swapaxes

    x = _array(x, "matrix_transpose")
    if x.ndim < 2:
        raise ArgumentError(f"matrix_transpose: needs at least 2 dimensions, got {x.aval.short()}")
    return swapaxes(x, -1, -2)


def unstack(x, /, *, axis=0) -> tuple[Array, ...]:
    """The slices of `x` along `axis`, as a tuple (the inverse of `stack`)."""
    from funconv.ops.indexing import getitem

    x = _array(x, "unstack")
    if x.ndim == 0:
        raise ArgumentError(f"unstack: needs at least 1 dimension, got {x.aval.short()}")
    ax = normalize_axis(axis, x.ndim, "unstack")
    lead = (slice(None),) * ax
    return tuple(getitem(x, lead + (i,)) for i in range(x.shape[ax]))


def vecdot(x1, x2, /, *, axis=-1) -> Array:
    """The dot product of vectors along `axis` (broadcast over the others): sum(conj(x1) * x2)."""
    from funconv.ops._core import promote
    from funconv.ops.elementwise import conj
    from funconv.ops.reduce import sum as _sum

    a, b = _array(x1, "vecdot"), _array(x2, "vecdot")
    for v in (a, b):
        if v.ndim == 0:
            raise ArgumentError(f"vecdot: needs arrays of at least 1 dimension, got "
                                f"{a.aval.short()}, {b.aval.short()}")
    if not -builtins.min(a.ndim, b.ndim) <= axis < 0 and not 0 <= axis < builtins.min(a.ndim, b.ndim):
        raise ArgumentError(f"vecdot: axis {axis} is out of range for {a.aval.short()}, {b.aval.short()}")
    if a.shape[axis] != b.shape[axis]:
        raise ArgumentError(f"vecdot: the vectors along axis {axis} differ in length "
                            f"({a.aval.short()}, {b.aval.short()})")
    a, b = promote("vecdot", a, b)
    # dtype kept: the vectors' dtype, not sum's widened accumulator (u8 . u8 is u8)
    return _sum(conj(a) * b, axis=axis if axis < 0 else axis - a.ndim, dtype=a.dtype)


def _cumulative(opname, x, axis, dtype, include_initial, scan, identity):
    from funconv.ops.reduce import accumulation_dtype
    from funconv.ops.shape import concatenate

    x = _array(x, opname)
    if axis is None:
        if x.ndim > 1:
            raise ArgumentError(f"{opname}: axis is required for an array of rank > 1 "
                                f"({x.aval.short()})")
        axis = 0
    if x.ndim == 0:
        raise ArgumentError(f"{opname}: needs at least 1 dimension, got {x.aval.short()}")
    ax = normalize_axis(axis, x.ndim, opname)
    x = to_dtype(x, canonical_dtype(dtype) if dtype is not None else accumulation_dtype(x.dtype))
    out = scan(x, ax)
    if include_initial:
        # the empty prefix first: 0 for a sum, 1 for a product
        shape = tuple(1 if i == ax else d for i, d in enumerate(x.shape))
        from funconv.ops._core import broadcast_to

        init = broadcast_to(to_dtype(identity, x.dtype), shape)
        out = concatenate([init, out], axis=ax)
    return out


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False) -> Array:
    """Running sums along `axis` (required for rank > 1); `include_initial` prepends 0."""
    from funconv.ops.reduce import cumsum_p

    return _cumulative("cumulative_sum", x, axis, dtype, include_initial,
                       lambda v, ax: cumsum_p(v, axis=ax) if v.shape[ax] else v, 0)


def _prefix_product(x, ax):
    # Hillis-Steele scan: after step k each element holds the product of the 2**k elements
    # ending at it, so ceil(log2(n)) multiplications by a shifted copy (padded with 1s) give
    # every prefix product. Exact for integers, and differentiable as products of elements
    # (no division: zeros are fine), unlike exp(cumsum(log(x))).
    from funconv.ops.shape import pad

    n = x.shape[ax]
    k = 1
    while k < n:
        widths = [(0, 0)] * x.ndim
        widths[ax] = (k, 0)
        shifted = pad(x, widths, constant_values=1)
        idx = [slice(None)] * x.ndim
        idx[ax] = slice(0, n)
        x = x * shifted[tuple(idx)]
        k *= 2
    return x


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False) -> Array:
    """Running products along `axis` (required for rank > 1); `include_initial` prepends 1."""
    return _cumulative("cumulative_prod", x, axis, dtype, include_initial, _prefix_product, 1)


def isin(x1, x2, /, *, invert=False) -> Array:
    """Whether each element of x1 occurs in x2 (elementwise `in`); `invert` negates."""
    from funconv.ops.reduce import any as _any
    from funconv.ops.shape import reshape

    a, b = _array(x1, "isin"), _array(x2, "isin")
    hit = _any(a[..., None] == reshape(b, (-1,)), axis=-1) if b.size else (a != a) & (a == a)
    return ~hit if invert else hit


def _unique(x, opname):
    x = _array(x, opname)
    v = x._require_value(f"{opname}, whose result shape depends on the values,")
    # NaNs are distinct from each other (the standard), so each is its own unique value
    values, first, inverse, counts = np.unique(v.ravel(), return_index=True, return_inverse=True,
                                               return_counts=True, equal_nan=False)
    return x, first, inverse.reshape(v.shape), counts


def _unique_values_of(x, first) -> Array:
    # gathered from x at their first occurrences, so the values stay differentiable
    from funconv.ops.indexing import take

    return take(x, asarray(first.astype(DEFAULT_INT)), axis=None)


class UniqueAllResult(tuple):
    """(values, indices, inverse_indices, counts), also by name."""

    __slots__ = ()
    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])
    inverse_indices = property(lambda self: self[2])
    counts = property(lambda self: self[3])


class UniqueCountsResult(tuple):
    """(values, counts), also by name."""

    __slots__ = ()
    values = property(lambda self: self[0])
    counts = property(lambda self: self[1])


class UniqueInverseResult(tuple):
    """(values, inverse_indices), also by name."""

    __slots__ = ()
    values = property(lambda self: self[0])
    inverse_indices = property(lambda self: self[1])


def unique_values(x, /) -> Array:
    """The sorted distinct elements (concrete arrays only: the size depends on the values)."""
    x, first, _, _ = _unique(x, "unique_values")
    return _unique_values_of(x, first)


def unique_counts(x, /) -> UniqueCountsResult:
    """The distinct elements and how often each occurs."""
    x, first, _, counts = _unique(x, "unique_counts")
    return UniqueCountsResult((_unique_values_of(x, first), asarray(counts.astype(DEFAULT_INT))))


def unique_inverse(x, /) -> UniqueInverseResult:
    """The distinct elements and, for each element of x, the index of its value."""
    x, first, inverse, _ = _unique(x, "unique_inverse")
    return UniqueInverseResult((_unique_values_of(x, first), asarray(inverse.astype(DEFAULT_INT))))


def unique_all(x, /) -> UniqueAllResult:
    """Distinct elements, their first indices in x (flattened), the inverse map and counts."""
    x, first, inverse, counts = _unique(x, "unique_all")
    return UniqueAllResult((_unique_values_of(x, first), asarray(first.astype(DEFAULT_INT)),
                            asarray(inverse.astype(DEFAULT_INT)), asarray(counts.astype(DEFAULT_INT))))


def from_dlpack(x, /, *, device=None, copy=None) -> Array:
    """An Array from any object exporting DLPack (a NumPy, PyTorch, JAX ... CPU array); the
    data is copied (funconv arrays are immutable), so copy=False raises."""
    from funconv.ops._core import check_device

    check_device(device, "from_dlpack")
    if isinstance(x, Array):
        return x  # immutable: sharing it is never observable, so no copy is needed
    if copy is False:
        raise ValueError("from_dlpack: copy=False, but funconv always copies the data (its "
                         "arrays are immutable); pass copy=None")
    try:
        v = np.from_dlpack(x)
    except (TypeError, AttributeError, BufferError, RuntimeError) as e:
        raise ArgumentError(f"from_dlpack: cannot import {describe(x)}: {e}") from None
    return asarray(v)


__all__ = ["from_dlpack", "finfo", "iinfo", "isdtype", "result_type", "can_cast", "concat", "permute_dims",
           "matrix_transpose", "unstack", "vecdot", "cumulative_sum", "cumulative_prod", "isin",
           "unique_values", "unique_counts", "unique_inverse", "unique_all"]
