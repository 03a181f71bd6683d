"""Reduction primitives (reduce_sum, reduce_max, reduce_min, reduce_prod, cumsum,
argmax, argmin) and NumPy-named wrappers (`sum`, `mean`, `var`, `std`, `prod`,
`max`, `min`, `logsumexp`, `cumsum`, `any`, `all`, ...), each taking
`axis` (None, an int, a tuple; negative counts from the end) and `keepdims`.

Primitives reduce over a sorted tuple of `axes` and drop them; wrappers handle
`keepdims` with a reshape. VJPs: sum broadcasts the cotangent back; max/min
send it to the FIRST extremum of each window (deterministic on ties); prod
multiplies by the product of the other elements (exact with zeros, and to every
order: built from products only); cumsum's is
a reversed cumsum. Bools and ints sum and multiply in int32 (int64 stays), and
mean/var/std of integers are float32, as JAX.
"""

from __future__ import annotations

import builtins

import numpy as np

from funconv.array import Array
from funconv.errors import DTypeError, ShapeError
from funconv.ops._core import asarray, broadcast_to, normalize_axes, operand, to_dtype
from funconv.primitive import Primitive
from funconv.types import ArrayType, DEFAULT_FLOAT, canonical_dtype, int32, is_inexact


def _reduce_rule(name, kinds=None):
    def rule(x: ArrayType, *, axes) -> ArrayType:
        if kinds is not None and x.dtype.kind not in kinds:
            raise DTypeError(f"{name}: does not accept {x.short()}")
        if builtins.any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
            raise ShapeError(f"{name}: axes {axes} out of range (or repeated) for {x.short()}")
        return ArrayType(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)

    return rule


def _expand_to(ct, x, axes):
    """Broadcast a reduced cotangent back over the reduced `axes` of x."""
    from funconv.ops.shape import reshape_p

    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if ct.shape != kept:
        ct = reshape_p(ct, shape=kept)
    return broadcast_to(ct, x.shape)


def _sum_impl(x, *, axes):
    return np.sum(x, axis=axes, dtype=x.dtype)


reduce_sum_p = Primitive("reduce_sum", _reduce_rule("sum"), _sum_impl,
                         lambda ct, out, x, *, axes: (_expand_to(ct, x, axes),), linear=True)


def _minmax_vjp(ct, out, x, *, axes):
    # the cotangent goes to the first extremum of each window (deterministic)
    from funconv.ops.elementwise import where

    hit = x == _expand_to(out, x, axes)
    first = hit & (_cumulative_count(hit, axes) == 1)
    return (where(first, _expand_to(ct, x, axes), 0),)


def _cumulative_count(mask, axes):
    """Number of True entries at or before each position, in row-major order over `axes`."""
    from funconv.ops.shape import reshape, transpose

    rest = [i for i in range(mask.ndim) if i not in axes]
    perm = tuple(rest) + tuple(axes)
    m = transpose(mask, perm)
    n = int(np.prod([mask.shape[a] for a in axes], dtype=np.int64))
    flat = reshape(m, tuple(mask.shape[i] for i in rest) + (n,)).astype(np.int32)
    c = cumsum(flat, axis=-1)
    c = reshape(c, m.shape)
    return transpose(c, tuple(np.argsort(perm).tolist()))


reduce_max_p = Primitive("reduce_max", _reduce_rule("max", "biuf"),
                         lambda x, *, axes: np.max(x, axis=axes), _minmax_vjp)
reduce_min_p = Primitive("reduce_min", _reduce_rule("min", "biuf"),
                         lambda x, *, axes: np.min(x, axis=axes), _minmax_vjp)


def _cumsum_rule(x: ArrayType, *, axis) -> ArrayType:
    return x


def _cumsum_vjp(ct, out, x, *, axis):
    from funconv.ops.shape import flip

    return (flip(cumsum_p(flip(ct, axis), axis=axis), axis),)


# NOTE: np.cumsum pays a fixed cost per row: along an axis of 7 it ran at 12 ns per
# element (the first-maximum mask of an adaptive max pool's gradient: 22 ms for 1.5M
# elements). For short axes one add per position across all rows is ~10x faster and
# sums in the same order (out[i] = out[i-1] + x[i]), so the result is identical.
_SHORT_SCAN = 32


def _cumsum_impl(x, *, axis):
    n = x.shape[axis]
    if not 1 < n <= _SHORT_SCAN or x.size < 64 * n:
        return np.cumsum(x, axis=axis, dtype=x.dtype)
    out = np.empty(x.shape, x.dtype)
    src, dst = np.moveaxis(x, axis, 0), np.moveaxis(out, axis, 0)
    dst[0] = src[0]
    for i in range(1, n):
        np.add(dst[i - 1], src[i], out=dst[i])
    return out


cumsum_p = Primitive("cumsum", _cumsum_rule, _cumsum_impl, _cumsum_vjp, linear=True)


def _prod_vjp(ct, out, x, *, axes):
    return (_expand_to(ct, x, axes) * _prod_of_others(x, axes),)


def _prod_of_others(x, axes):
    """For each element, the product of the other elements of its window, by multiplications
    only: the backward pass of a pairwise tree of products (as JAX's reduce_prod JVP).

    Exact with zeros and, being only products, differentiable to every order. (The old
    `prod / x_i`, with the zero cases patched by `where`, was right in value but its branches
    were constants: hessian(prod)([0, 2, 3]) lost d^2/dx_1 dx_0 = 3.) O(n) work, log2(n) steps.
    """
    from funconv.ops.shape import concatenate, reshape, slice_axes, stack, transpose

    rest = [i for i in range(x.ndim) if i not in axes]
    perm = tuple(rest) + tuple(axes)
    lead = tuple(x.shape[i] for i in rest)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    v = reshape(transpose(x, perm), lead + (n,))
    size = 1 << (n - 1).bit_length()  # pad the window with ones to a power of two
    if size > n:
        v = concatenate([v, broadcast_to(to_dtype(1, x.dtype), lead + (size - n,))], axis=-1)

    def every_other(level, start):  # positions start, start + 2, ... of the window axis
        return slice_axes(level, [0] * len(lead) + [start], level.shape, [1] * len(lead) + [2])

    def halves(level):  # the left and right child of each pair
        return every_other(level, 0), every_other(level, 1)

    levels = [v]
    while levels[-1].shape[-1] > 1:
        left, right = halves(levels[-1])
        levels.append(left * right)
    # down the tree: a child's "others" is its parent's times its sibling
    others = broadcast_to(to_dtype(1, x.dtype), lead + (1,))
    for level in reversed(levels[:-1]):
        left, right = halves(level)
        others = reshape(stack([others * right, others * left], axis=-1), lead + (level.shape[-1],))
    if size > n:
        others = slice_axes(others, [0] * (len(lead) + 1), lead + (n,), [1] * (len(lead) + 1))
    others = reshape(others, lead + tuple(x.shape[a] for a in axes))
    return transpose(others, tuple(np.argsort(perm).tolist()))


reduce_prod_p = Primitive("reduce_prod", _reduce_rule("prod", "iufc"),
                          lambda x, *, axes: np.prod(x, axis=axes, dtype=x.dtype), _prod_vjp)


def _arg_rule(name):
    def rule(x: ArrayType, *, axis) -> ArrayType:
        if x.dtype.kind not in "biuf":
            raise DTypeError(f"{name}: does not accept {x.short()}")
        if not 0 <= axis < x.ndim:
            raise ShapeError(f"{name}: axis {axis} out of range for {x.short()}")
        return ArrayType(tuple(d for i, d in enumerate(x.shape) if i != axis), np.dtype("int32"))

    return rule


argmax_p = Primitive("argmax", _arg_rule("argmax"),
                     lambda x, *, axis: np.argmax(x, axis=axis).astype(np.int32), differentiable=False)
argmin_p = Primitive("argmin", _arg_rule("argmin"),
                     lambda x, *, axis: np.argmin(x, axis=axis).astype(np.int32), differentiable=False)

# --- wrappers -------------------------------------------------------------------------


def _array(x, opname) -> Array:
    x = operand(x, opname)
    return x if isinstance(x, Array) else asarray(x)


def _keep(out: Array, x: Array, axes, keepdims: bool) -> Array:
    if not keepdims:
        return out
    from funconv.ops.shape import reshape

    return reshape(out, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))


def _reduction(prim, opname):
    def f(x, axis=None, keepdims=False):
        x = _array(x, opname)
        axes = normalize_axes(axis, x.ndim, opname)
        if x.size == 0 and builtins.any(x.shape[a] == 0 for a in axes):
            raise ShapeError(f"{opname}: zero-size reduction over an empty axis of {x.aval.short()} "
                             "has no identity; pass an axis whose size is not 0")
        out = prim(x, axes=axes) if axes else x
        return _keep(out, x, axes, keepdims)

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"`np.{opname}` over `axis` (None: all), with `keepdims`."
    return f


amax = max = _reduction(reduce_max_p, "max")  # noqa: A001
amin = min = _reduction(reduce_min_p, "min")  # noqa: A001


def sum(x, axis=None, dtype=None, keepdims=False) -> Array:  # noqa: A001
    """`np.sum`. Bools and ints sum in int32 (int64 stays), as JAX."""
    x = _array(x, "sum")
    if dtype is not None:
        x = to_dtype(x, canonical_dtype(dtype))
    else:
        x = to_dtype(x, accumulation_dtype(x.dtype))
    axes = normalize_axes(axis, x.ndim, "sum")
    out = reduce_sum_p(x, axes=axes) if axes else x
    return _keep(out, x, axes, keepdims)


def mean(x, axis=None, dtype=None, keepdims=False) -> Array:
    """`np.mean`; integer inputs average in float32."""
    x = _array(x, "mean")
    if dtype is not None:
        x = to_dtype(x, canonical_dtype(dtype))
    elif not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    axes = normalize_axes(axis, x.ndim, "mean")
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    return sum(x, axis=axes, keepdims=keepdims) / n


def var(x, axis=None, dtype=None, ddof=0, keepdims=False, *, correction=None) -> Array:
    """`np.var` (population variance unless `ddof`, or `correction`, the Array API's name);
    integers in float32 unless `dtype`."""
    x = _array(x, "var")
    if correction is not None:
        ddof = correction
    if dtype is not None:
        x = to_dtype(x, canonical_dtype(dtype))
    elif not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    axes = normalize_axes(axis, x.ndim, "var")
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    d = x - mean(x, axis=axes, keepdims=True)
    from funconv.ops.elementwise import real, conj

    sq = real(d * conj(d)) if d.dtype.kind == "c" else d * d
    return sum(sq, axis=axes, keepdims=keepdims) / builtins.max(n - ddof, 0)


def std(x, axis=None, dtype=None, ddof=0, keepdims=False, *, correction=None) -> Array:
    """`np.std`: the square root of `var`; its gradient at a constant slice (std 0, a kink) is
    the zero subgradient, as PyTorch's (d sqrt(v) = dv / (2 sqrt(v)) would be 0 / 0)."""
    return sqrt_zero_subgradient(var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims,
                                     correction=correction))


def sqrt_zero_subgradient(v) -> Array:
    """sqrt(v) for v >= 0, with derivative 0 at v == 0 instead of inf: the square root of a sum
    of squares (a norm, std) has a kink there, whose subgradients include 0 (PyTorch's choice
    for norm and std). Both `where`s: the inner keeps sqrt's inf derivative at 0 out of the
    gradient (0 * inf is NaN)."""
    from funconv.ops.elementwise import sqrt, where

    zero = v == 0
    return where(zero, 0, sqrt(where(zero, 1, v)))


def prod(x, axis=None, dtype=None, keepdims=False) -> Array:
    """`np.prod`. Bools and ints multiply in int32 (int64 stays), as JAX."""
    x = _array(x, "prod")
    if dtype is not None:
        x = to_dtype(x, canonical_dtype(dtype))
    else:
        x = to_dtype(x, accumulation_dtype(x.dtype))
    axes = normalize_axes(axis, x.ndim, "prod")
    out = reduce_prod_p(x, axes=axes) if axes else x
    return _keep(out, x, axes, keepdims)


def logsumexp(x, axis=None, keepdims=False) -> Array:
    """log(sum(exp(x))), stable: the max is subtracted first (its gradient is softmax)."""
    from funconv.ops.elementwise import exp, isfinite, log, where
    from funconv.ops.shape import squeeze
    from funconv.ops.special import stop_gradient

    x = _array(x, "logsumexp")
    if not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    axes = normalize_axes(axis, x.ndim, "logsumexp")
    m = max(x, axis=axes, keepdims=True)
    finite = isfinite(m)
    # the shift by a constant is exact; max keeps exp from overflowing. Slices whose max is
    # +-inf (or NaN) are that max: computing them with zeros instead (both `where`s, so their
    # NaN never reaches the gradient) and taking `m` with max's gradient gives the limits:
    # [inf, 1] -> inf with gradient [1, 0]; all -inf -> -inf with gradient on the first
    # element, as logaddexp (finite, so a zero cotangent stays zero)
    shift = stop_gradient(where(finite, m, 0))
    z = where(finite, x - shift, 0)
    out = where(finite, log(sum(exp(z), axis=axes, keepdims=True)) + shift, m)
    return out if keepdims else squeeze(out, axes)


def _arg(prim, opname):
    def f(x, axis=None, keepdims=False):
        x = _array(x, opname)
        if axis is None:
            from funconv.ops.shape import reshape

            out = prim(reshape(x, (-1,)), axis=0)
            return reshape(out, (1,) * x.ndim) if keepdims else out
        ax = normalize_axes(axis, x.ndim, opname)[0]
        return _keep(prim(x, axis=ax), x, (ax,), keepdims)

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"`np.{opname}` (int32 indices; the first extremum on ties)."
    return f


argmax = _arg(argmax_p, "argmax")
argmin = _arg(argmin_p, "argmin")


def cumsum(x, axis=None, dtype=None) -> Array:
    """`np.cumsum` (flattened when `axis` is None); bools count in int32."""
    from funconv.ops.shape import reshape

    x = _array(x, "cumsum")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    if dtype is not None:
        x = to_dtype(x, canonical_dtype(dtype))
    else:
        x = to_dtype(x, accumulation_dtype(x.dtype))
    return cumsum_p(x, axis=normalize_axes(axis, x.ndim, "cumsum")[0])


def any(x, axis=None, keepdims=False) -> Array:  # noqa: A001
    """`np.any`: is any element (along `axis`) nonzero (False over an empty axis)."""
    return _logical_reduction(max, "any", False, x, axis, keepdims)


def all(x, axis=None, keepdims=False) -> Array:  # noqa: A001
    """`np.all`: are all elements (along `axis`) nonzero (True over an empty axis)."""
    return _logical_reduction(min, "all", True, x, axis, keepdims)


def _logical_reduction(reduce, opname, identity, x, axis, keepdims) -> Array:
    # any/all are max/min of bools, but unlike max/min they have an identity (False/True),
    # so a reduction over an empty axis is that identity rather than an error
    x = to_dtype(_array(x, opname), np.dtype(bool))
    axes = normalize_axes(axis, x.ndim, opname)
    if builtins.any(x.shape[a] == 0 for a in axes):
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return _keep(broadcast_to(asarray(identity), shape), x, axes, keepdims)
    return reduce(x, axis=axis, keepdims=keepdims)


def accumulation_dtype(dtype) -> np.dtype:
    """The dtype sum/prod/cumsum accumulate `dtype` in (the Array API's rule, as JAX): bools
    and ints narrower than the default int widen to it (i32, or u32 for unsigned), so
    `sum` of a uint8 image does not wrap at 256; wider ints and floats stay."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b" or (dtype.kind == "i" and dtype.itemsize < int32.itemsize):
        return int32
    if dtype.kind == "u" and dtype.itemsize < int32.itemsize:
        return np.dtype("uint32")
    return dtype


def count_nonzero(x, axis=None, keepdims=False) -> Array:
    """`np.count_nonzero` (int32)."""
    x = _array(x, "count_nonzero")
    return sum(x != 0, axis=axis, keepdims=keepdims)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False) -> Array:
    """`np.allclose` as a 0-d bool array (`bool(...)` it outside jit)."""
    from funconv.ops.elementwise import isclose

    return all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def array_equal(a, b) -> Array:
    """`np.array_equal` as a 0-d bool array: equal shapes and equal elements."""
    from funconv.ops.elementwise import equal

    a, b = _array(a, "array_equal"), _array(b, "array_equal")
    if a.shape != b.shape:
        return asarray(False)
    return all(equal(a, b))


__all__ = ["sum", "mean", "var", "std", "prod", "max", "min", "amax", "amin", "argmax", "argmin",
           "logsumexp", "cumsum", "any", "all", "count_nonzero", "allclose", "array_equal"]
