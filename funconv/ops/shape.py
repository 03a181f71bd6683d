"""Shape primitives (broadcast_to, reshape, transpose, ...) and their wrappers.

All are linear; their VJPs are the adjoint shape operations.
"""

from __future__ import annotations

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, ShapeError
from funconv.ops._core import asarray, normalize_axes, normalize_axis, operand
from funconv.primitive import Primitive
from funconv.types import ArrayType

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

# --- wrappers ------------------------------------------------------------------------------


def _array(x, opname) -> Array:
    x = operand(x, opname)
    return x if isinstance(x, Array) else asarray(x)


def reshape(x, shape) -> Array:
    """`np.reshape`: one dimension may be -1."""
    x = _array(x, "reshape")
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ArgumentError(f"reshape: shape must be a tuple of ints, got {shape!r}") from None
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
        perm = tuple(normalize_axis(a, x.ndim, "transpose") for a in axes)
    if perm == tuple(range(x.ndim)):
        return x
    return transpose_p(x, perm=perm)


def expand_dims(x, axis) -> Array:
    """`np.expand_dims`: insert size-1 axes at positions `axis` (int or tuple)."""
    x = _array(x, "expand_dims")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
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
