"""Array constructors: zeros, ones, full, *_like, empty, arange, linspace, eye, tri, meshgrid.

Constants are concrete arrays (captured as constants under a trace); `full`
of a scalar is a broadcast literal, so passes can fold it.
"""

from __future__ import annotations

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError
from funconv.ops._core import asarray, broadcast_to, check_device, describe, operand, static_int
from funconv.tracing import current
from funconv.types import DEFAULT_FLOAT, canonical_dtype, result_type


def _shape(shape, opname) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ArgumentError(f"{opname}: shape must be an int or a tuple of ints, got {describe(shape)}") from None
    if any(s < 0 for s in shape):
        raise ArgumentError(f"{opname}: negative dimension in shape {shape}")
    return shape


def full(shape, fill_value, dtype=None, *, device=None) -> Array:
    """An array of `shape` filled with `fill_value` (a scalar or broadcastable array)."""
    check_device(device, "full")
    shape = _shape(shape, "full")
    operand(fill_value, "full")  # a string or an arbitrary object is refused here
    if isinstance(fill_value, Array) or isinstance(fill_value, (np.ndarray, list)):
        v = asarray(fill_value, dtype)
        return broadcast_to(v, shape)
    dt = canonical_dtype(dtype) if dtype is not None else result_type(operand(fill_value, "full"))
    return broadcast_to(current().literal(fill_value, dt), shape)


def _dtype_or_float(dtype):
    # dtype=None means the default float (as jnp.zeros), not NumPy's float64
    return DEFAULT_FLOAT if dtype is None else canonical_dtype(dtype)


def zeros(shape, dtype=DEFAULT_FLOAT, *, device=None) -> Array:
    check_device(device, "zeros")
    """Zeros of `shape` (float32 by default)."""
    return full(shape, 0, _dtype_or_float(dtype))


def ones(shape, dtype=DEFAULT_FLOAT, *, device=None) -> Array:
    check_device(device, "ones")
    """Ones of `shape` (float32 by default)."""
    return full(shape, 1, _dtype_or_float(dtype))


def empty(shape, dtype=DEFAULT_FLOAT, *, device=None) -> Array:
    check_device(device, "empty")
    """Zeros: an immutable array has no use for uninitialised memory."""
    return zeros(shape, dtype)


def empty_like(x, dtype=None, shape=None, *, device=None) -> Array:
    check_device(device, "empty_like")
    """`zeros_like` (see `empty`)."""
    return zeros_like(x, dtype, shape)


def _like(x, dtype, shape):
    x = operand(x, "zeros_like")
    x = x if isinstance(x, Array) else asarray(x)
    return (x.dtype if dtype is None else canonical_dtype(dtype)), (x.shape if shape is None else shape)


def zeros_like(x, dtype=None, shape=None, *, device=None) -> Array:
    check_device(device, "zeros_like")
    dt, sh = _like(x, dtype, shape)
    return full(sh, 0, dt)


def ones_like(x, dtype=None, shape=None, *, device=None) -> Array:
    check_device(device, "ones_like")
    dt, sh = _like(x, dtype, shape)
    return full(sh, 1, dt)


def full_like(x, fill_value, dtype=None, shape=None, *, device=None) -> Array:
    check_device(device, "full_like")
    dt, sh = _like(x, dtype, shape)
    return full(sh, fill_value, dt)


def arange(start, stop=None, step=1, dtype=None, *, device=None) -> Array:
    """`np.arange`; int32 for int arguments, float32 for float ones (as JAX)."""
    check_device(device, "arange")
    bounds = []
    for v in (start, stop, step):
        if isinstance(v, Array):
            v = v._require_value("arange with an array bound")
            if v.ndim:
                raise ArgumentError(f"arange: bounds must be scalars, got an array of shape {v.shape}")
            v = v.item()
        if v is not None and (not isinstance(v, (int, float, np.integer, np.floating))
                              or isinstance(v, bool)):
            raise ArgumentError(f"arange: bounds must be numbers, got {describe(v)}")
        bounds.append(v)
    start, stop, step = bounds
    if start is None:
        raise ArgumentError("arange: start must be a number")
    if step == 0:
        raise ArgumentError("arange: step must not be 0")
    if dtype is None:
        dtype = result_type(*[operand(v, "arange") for v in (start, stop, step) if v is not None])
    return Array._from_value(np.arange(start, stop, step, dtype=canonical_dtype(dtype)))


def linspace(start, stop, num=50, endpoint=True, dtype=None, *, device=None) -> Array:
    """`np.linspace` (float32 unless `dtype`)."""
    check_device(device, "linspace")
    dt = canonical_dtype(dtype) if dtype is not None else DEFAULT_FLOAT
    ends = []
    for v in (start, stop):
        if isinstance(v, Array) and v.ndim == 0:
            v = v._require_value("linspace with an array bound").item()
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
            raise ArgumentError(f"linspace: start and stop must be numbers, got {describe(v)}")
        ends.append(v)
    start, stop = ends
    num = static_int(num, "num", "linspace")
    if num < 0:
        raise ArgumentError(f"linspace: num must be non-negative, got {num}")
    return Array._from_value(np.linspace(start, stop, num, endpoint=endpoint).astype(dt))


def eye(N, M=None, k=0, dtype=DEFAULT_FLOAT, *, device=None) -> Array:
    """`np.eye` (float32 by default)."""
    check_device(device, "eye")
    N, k = static_int(N, "N", "eye"), static_int(k, "k", "eye")
    M = N if M is None else static_int(M, "M", "eye")
    if N < 0 or M < 0:
        raise ArgumentError(f"eye: negative dimension ({N}, {M})")
    return Array._from_value(np.eye(N, M, k, dtype=_dtype_or_float(dtype)))


identity = eye


def tri(N, M=None, k=0, dtype=DEFAULT_FLOAT) -> Array:
    """`np.tri`: ones at and below the k-th diagonal (float32 by default)."""
    N, k = static_int(N, "N", "tri"), static_int(k, "k", "tri")
    M = N if M is None else static_int(M, "M", "tri")
    if N < 0 or M < 0:
        raise ArgumentError(f"tri: negative dimension ({N}, {M})")
    return Array._from_value(np.tri(N, M, k, dtype=_dtype_or_float(dtype)))


def meshgrid(*xs, indexing="xy") -> tuple[Array, ...]:
    """`np.meshgrid` of 1-d arrays ("xy": Cartesian, "ij": matrix indexing)."""
    from funconv.ops.shape import reshape

    if indexing not in ("xy", "ij"):
        raise ArgumentError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    arrs = [reshape(asarray(operand(x, "meshgrid")), (-1,)) for x in xs]
    shape = [a.shape[0] for a in arrs]
    if indexing == "xy" and len(arrs) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, a in enumerate(arrs):
        axis = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and len(arrs) >= 2 else i
        view = reshape(a, tuple(-1 if d == axis else 1 for d in range(len(arrs))))
        out.append(broadcast_to(view, tuple(shape)))
    return tuple(out)  # a tuple, as the Array API (and NumPy 2) return


__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "empty", "empty_like",
           "arange", "linspace", "eye", "identity", "tri", "meshgrid"]
