"""Shared plumbing for the user-facing wrappers: operand conversion, dtype
promotion, broadcasting and axis normalisation, all with errors in the user's
terms. Imports array, tracing, types and errors.
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, AxisError, DTypeError, ShapeError
from funconv.tracing import current
from funconv.types import (ArrayType, canonical_dtype, result_type, DEFAULT_COMPLEX,
                           DEFAULT_FLOAT, DEFAULT_INT, bool_)

SCALAR_TYPES = (bool, int, float, complex)


def describe(x) -> str:
    """Short description of an operand for error messages."""
    if isinstance(x, Array):
        return x.aval.short()
    if isinstance(x, np.ndarray):
        return f"np.ndarray {ArrayType(x.shape, x.dtype).short()}"
    r = repr(x)
    if len(r) > 40:
        r = r[:37] + "..."
    return f"{type(x).__name__} {r}"


def _numpy_from_python(x, dtype=None) -> np.ndarray:
    """A NumPy array from a Python scalar/list/ndarray with funconv's default dtypes."""
    if dtype is not None:
        return np.array(x, dtype=canonical_dtype(dtype))
    v = np.array(x)  # a ragged list raises ValueError here; the callers turn it into ArgumentError
    if not isinstance(x, (np.ndarray, np.generic)):
        # Python scalars and lists: float -> f32, int -> i32, complex -> c64 (as JAX)
        if v.dtype == np.float64:
            v = v.astype(DEFAULT_FLOAT)
        elif v.dtype.kind in "iu":
            info = np.iinfo(DEFAULT_INT)
            # ints beyond int32 stay int64 rather than silently wrapping
            if v.size == 0 or (info.min <= v.min() and v.max() <= info.max):
                v = v.astype(DEFAULT_INT)
        elif v.dtype == np.complex128:
            v = v.astype(DEFAULT_COMPLEX)
    if v.dtype.kind not in "biufc":
        raise ArgumentError(f"cannot make an array from {describe(x)}: funconv arrays hold "
                            "numbers (bool, int, float, complex)")
    return v.astype(canonical_dtype(v.dtype), copy=False)


def _holds_array(x) -> bool:
    return isinstance(x, Array) or (isinstance(x, (list, tuple)) and builtins.any(map(_holds_array, x)))


def _stack_nested(x, dtype) -> Array:
    """A nested list holding Arrays, stacked with funconv ops, so traced elements stay traced
    (converting them through NumPy would cut the gradient or fail under jit)."""
    from funconv.ops.shape import stack

    if isinstance(x, (list, tuple)):
        if not x:
            return asarray(np.zeros((0,)), dtype)
        return stack([_stack_nested(e, dtype) for e in x])
    return asarray(operand(x, "array"), dtype) if not isinstance(x, Array) or dtype is not None else x


def check_device(device, opname: str) -> None:
    """The Array API's `device=` argument: funconv has one device, "cpu" (or None)."""
    if device is not None and device != "cpu":
        raise ArgumentError(f"{opname}: device must be None or 'cpu' (funconv's only device), "
                            f"got {device!r}")


def asarray(x, dtype=None, *, device=None, copy=None) -> Array:
    """Convert `x` (Array, NumPy array, Python scalar or nested list) to an Array.

    Python floats become float32 and ints int32 (as in JAX); NumPy arrays keep
    their dtype. Does not copy an Array that already has the dtype. A list of
    Arrays is stacked (it stays differentiable and traceable). `copy` (the Array API's) only
    matters with False: NumPy data is always copied, so that raises unless x is an Array of
    the dtype (an Array is immutable: sharing it is never observable).
    """
    check_device(device, "asarray")
    if copy is False and not (isinstance(x, Array) and (dtype is None or canonical_dtype(dtype) == x.dtype)):
        raise ValueError(f"asarray: copy=False, but {describe(x)} must be copied to become a funconv "
                         "Array (NumPy data is always copied); pass copy=None")
    if isinstance(x, Array):
        return x if dtype is None else astype(x, dtype)
    if isinstance(x, (list, tuple)) and _holds_array(x):
        return _stack_nested(x, dtype)
    if hasattr(x, "__jax_array__") or type(x).__module__.startswith("torch"):
        x = np.asarray(x)
    try:
        v = _numpy_from_python(x, dtype)
    except (ValueError, TypeError) as e:
        if isinstance(e, (ArgumentError, DTypeError)):
            raise
        raise ArgumentError(f"cannot make an array from {describe(x)}: {e}") from None
    return Array._from_value(v.copy() if v is x else v)


def array(x, dtype=None, copy: bool = True) -> Array:
    """Like `np.array`: an immutable Array from `x`.

    NumPy data is always copied (an Array never shares a caller's buffer), so
    `copy` only exists for NumPy's signature.
    """
    return asarray(x, dtype)


def operand(x, opname: str):
    """An Array, or a Python scalar left weak (so `f32 * 2.0` stays f32)."""
    if isinstance(x, Array) or isinstance(x, SCALAR_TYPES):
        return x
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        try:
            return asarray(x)
        except ArgumentError:
            pass
    raise ArgumentError(f"{opname}: expected an array or a number, got {describe(x)}; "
                        "convert it with fc.asarray(...) first")


def dtype_of(x):
    """A dtype for an Array, the Python scalar itself (weak) otherwise."""
    return x.dtype if isinstance(x, Array) else x


def astype(x: Array, dtype) -> Array:
    from funconv.ops.elementwise import convert_element_type_p

    dtype = canonical_dtype(dtype)
    if x.dtype == dtype:
        return x
    return convert_element_type_p(x, new_dtype=dtype)


def to_dtype(x, dtype: np.dtype) -> Array:
    """Array `x` converted to `dtype`, or a scalar made a literal of `dtype`."""
    if isinstance(x, Array):
        return astype(x, dtype)
    return current().literal(x, dtype)


def broadcast_shapes(opname: str, *shapes: tuple[int, ...], types=None) -> tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        size = 1
        for s in shapes:
            d = s[i] if -i <= len(s) else 1
            if d != 1:
                if size != 1 and d != size:
                    what = ", ".join(t.short() for t in types) if types else ", ".join(map(str, shapes))
                    raise ShapeError(f"{opname}: shapes {what} cannot be broadcast together "
                                     f"(axis {i}: {size} vs {d}); reshape or index with None "
                                     "so that trailing dimensions match or are 1")
                size = d
        out.append(size)
    return tuple(out)


def broadcast_to(x, shape) -> Array:
    """Broadcast `x` to `shape` (NumPy rules)."""
    from funconv.ops.shape import broadcast_to_p

    x = operand(x, "broadcast_to")
    if not isinstance(x, Array):
        x = asarray(x)
    try:
        if isinstance(shape, str):
            raise TypeError
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ArgumentError(f"broadcast_to: shape must be a tuple of ints, got {describe(shape)}") from None
    if x.shape == shape:
        return x
    if x.ndim > len(shape) or broadcast_shapes("broadcast_to", x.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast {x.aval.short()} to shape {shape}")
    return broadcast_to_p(x, shape=shape)


def promote(opname: str, *xs) -> list[Array]:
    """Convert operands to their common dtype and broadcast them to one shape."""
    xs = [operand(x, opname) for x in xs]
    dt = result_type(*[dtype_of(x) for x in xs])
    arrs = [to_dtype(x, dt) for x in xs]
    shape = broadcast_shapes(opname, *[a.shape for a in arrs], types=[a.aval for a in arrs])
    return [broadcast_to(a, shape) for a in arrs]


def normalize_axis(axis, ndim: int, opname: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ArgumentError(f"{opname}: axis must be an int, got {describe(axis)}")
    if not -ndim <= axis < ndim:
        raise AxisError(f"{opname}: axis {axis} is out of range for an array of rank {ndim} "
                        f"(valid: {-ndim}..{ndim - 1})")
    return int(axis) % ndim


def normalize_axes(axis, ndim: int, opname: str) -> tuple[int, ...]:
    """`None` -> all axes; an int or a sequence -> sorted unique non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    if not isinstance(axis, (tuple, list)):
        raise ArgumentError(f"{opname}: axis must be None, an int or a tuple of ints, got {describe(axis)}")
    axes = tuple(normalize_axis(a, ndim, opname) for a in axis)
    if len(set(axes)) != len(axes):
        raise AxisError(f"{opname}: repeated axis in {axis}")
    return tuple(sorted(axes))


def static_int(value, name: str, opname: str) -> int:
    """A Python int from a static argument (`k`, `offset`, `n`, ...), or an ArgumentError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, Array) and value.ndim == 0 and value.dtype.kind in "iu":
            return int(value)  # a concrete 0-d integer array (a traced one raises there)
        raise ArgumentError(f"{opname}: {name} must be an int, got {describe(value)}")
    return int(value)


def static_ints(values, name: str, opname: str) -> tuple[int, ...]:
    """A tuple of Python ints from an int or a sequence of them, or an ArgumentError."""
    if isinstance(values, (int, np.integer)) and not isinstance(values, (bool, np.bool_)):
        return (int(values),)
    if not isinstance(values, (tuple, list, np.ndarray)):
        raise ArgumentError(f"{opname}: {name} must be an int or a sequence of ints, got {describe(values)}")
    return tuple(static_int(v, name, opname) for v in values)


def is_scalar(x) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, Array)


def per_dim(value, nd: int, name: str, opname: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of `nd` ints (each >= minimum) as a tuple."""
    vals = (value,) * nd if isinstance(value, (int, np.integer)) else value
    try:
        vals = tuple(vals)
    except TypeError:
        vals = None
    if (vals is None or len(vals) != nd
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals)):
        raise ArgumentError(f"{opname}: {name} must be an int or {nd} ints (one per spatial "
                            f"dim), got {value!r}")
    if any(v < minimum for v in vals):
        raise ArgumentError(f"{opname}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


__all__ = ["asarray", "array", "operand", "promote", "broadcast_to", "broadcast_shapes",
           "normalize_axis", "normalize_axes", "to_dtype", "astype", "bool_"]
