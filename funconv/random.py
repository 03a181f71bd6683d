"""fc.random: explicit, splittable random keys (as in JAX), counter-based.

Every random number is a pure function of a *key*: the same key gives the
same numbers, on every run and every backend. There is no hidden global
state; to get fresh numbers, derive new keys with `split` or `fold_in`:

    key = fc.random.key(0)
    k_init, k_drop = fc.random.split(key)
    w = fc.random.normal(k_init, (3, 4))

The generator is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel
random numbers: as easy as 1, 2, 3", SC 2011), written here in NumPy uint32
arithmetic: a block cipher that maps (key, counter) to 64 random bits, so a
kernel on any device can reproduce the bits of element `j` from the key and
`j` alone.

Representation of a key: funconv has no uint32 dtype, so a key is an
`int32[2]` Array holding the *bit patterns* of the two uint32 key words
(`key(0)` is `[0, 0]`; a word >= 2**31 shows as a negative int32). An OpenCL
kernel reads the same 8 bytes as `uint2`.

Streams. Threefry is applied to 64-bit counters `(hi, lo)`; the top two bits
of `hi` say what the bits are for, so the streams never overlap:

* tag 0, sampling: element `j` of a 32-bit draw of any shape is word `j % 2`
  of `threefry(key, counter j // 2)`; a 64-bit draw (float64 uniforms) takes
  both words of block `j` (`hi << 32 | lo`). Bits are *prefix-stable*: the
  first `m` numbers of a draw of `n >= m` equal a draw of `m`.
* tag 1, `split(key, num)`: child key `i` is the block `threefry(key, (1<<30, i))`.
* tag 2, `fold_in(key, data)`: the new key is `threefry(key, (2<<30, data))`.

Samplers are primitives (`random_bits`, `random_uniform`, `random_fold_in`,
`random_permutation`, defined with Threefry in ops/random.py) whose NumPy
impls run Threefry, so they trace: a key passed as an argument to a jitted
function stays a traced value and the compiled code draws fresh numbers for
each key it is called with. They are not differentiable (their output does
not depend smoothly on the key); `normal(k, s) * sigma + mu` is
differentiable in `sigma` and `mu` as usual.

Imports types, errors and ops (the primitives from ops/random.py); nothing
imports this but funconv/__init__.py and nn.py.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops._core import asarray, broadcast_to, describe, operand, to_dtype
from funconv.ops.elementwise import floor, log, maximum, minimum, sqrt, where
from funconv.ops.indexing import getitem, take
from funconv.ops.reduce import cumsum, sum as _sum
from funconv.ops.random import (TAG_SAMPLE, TAG_SPLIT, _as_int32_bits, _check_key_type, random_bits_p,
                                random_fold_in_p, random_permutation_p, random_uniform_p, threefry2x32)
from funconv.ops.shape import reshape
from funconv.types import DEFAULT_FLOAT, canonical_dtype, int32, int64, is_float

# --- keys ------------------------------------------------------------------------------------


def key(seed) -> Array:
    """A key from an integer seed (as `jax.random.key` / `PRNGKey`).

    Args:
        seed: a Python or NumPy integer; taken modulo 2**64, split into the high
            and low 32-bit key words (so `key(0)` is `[0, 0]` and `key(1)` is `[0, 1]`).

    Returns:
        An `int32[2]` Array holding the two key words' bit patterns.
    """
    if isinstance(seed, Array):
        seed = seed._require_value("fc.random.key(seed)")
    if isinstance(seed, np.ndarray) and seed.ndim == 0:
        seed = seed.item()
    try:
        s = operator.index(seed)
    except TypeError:
        raise ArgumentError(f"key: the seed must be an integer, got {describe(seed)}") from None
    s %= 2 ** 64
    return Array._from_value(_as_int32_bits(np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint64)))


PRNGKey = key


def _key(k, opname: str) -> Array:
    """Accept a key: an int32[2] Array, or a NumPy uint32/int32 pair (e.g. from JAX)."""
    if isinstance(k, np.ndarray) and k.dtype == np.uint32:
        k = k.view(np.int32)
    if not isinstance(k, Array):
        if not isinstance(k, (np.ndarray, list, tuple)):
            raise ArgumentError(f"{opname}: expected a key from fc.random.key(seed), got {describe(k)}")
        k = asarray(np.asarray(k).astype(np.int64).astype(np.uint32).view(np.int32))
    _check_key_type(opname, k.aval)
    return k


def _shape(shape, opname: str) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise ArgumentError(f"{opname}: shape must be a tuple of ints, got {describe(shape)}") from None
    if any(s < 0 for s in shape):
        raise ShapeError(f"{opname}: negative dimension in shape {shape}")
    return shape


def split(key, num: int = 2) -> Array:
    """`num` new independent keys from `key`, as an `int32[num, 2]` Array.

    Unpack them as `k1, k2 = fc.random.split(key)`. Do not also draw numbers
    from `key` itself after splitting it; use one of the children.
    """
    num = operator.index(num)
    if num < 1:
        raise ArgumentError(f"split: num must be >= 1, got {num}")
    return random_bits_p(_key(key, "split"), shape=(num, 2), tag=TAG_SPLIT)


def fold_in(key, data) -> Array:
    """A new key from `key` and an integer `data` (a step number, a layer index, ...).

    `data` may be a Python int or an integer scalar Array (also a traced one);
    it is taken modulo 2**32.
    """
    k = _key(key, "fold_in")
    if isinstance(data, Array):
        d = data
    else:
        try:
            d = asarray(np.int64(operator.index(data) % 2 ** 32))
        except TypeError:
            raise ArgumentError(f"fold_in: data must be an integer, got {describe(data)}") from None
    return random_fold_in_p(k, d)


def bits(key, shape=()) -> Array:
    """Raw random bits: `int32[shape]` holding uint32 bit patterns."""
    return random_bits_p(_key(key, "bits"), shape=_shape(shape, "bits"), tag=TAG_SAMPLE)


def _float_dtype(dtype, opname):
    dt = canonical_dtype(dtype)
    if not is_float(dt):
        raise DTypeError(f"{opname}: dtype must be float32 or float64, got {dt}")
    return dt


def uniform(key, shape=(), dtype=DEFAULT_FLOAT, minval=0.0, maxval=1.0) -> Array:
    """Uniform floats on `[minval, maxval)`.

    Args:
        key: a key.
        shape: output shape; `minval` and `maxval` (numbers or arrays) broadcast to it.
        dtype: float32 (24 random bits per number) or float64 (53 bits).
    """
    shape, dt = _shape(shape, "uniform"), _float_dtype(dtype, "uniform")
    u = random_uniform_p(_key(key, "uniform"), shape=shape, dtype=dt)
    if isinstance(minval, (int, float)) and isinstance(maxval, (int, float)) and (minval, maxval) == (0, 1):
        return u
    lo, hi = to_dtype(operand(minval, "uniform"), dt), to_dtype(operand(maxval, "uniform"), dt)
    return broadcast_to(u * (hi - lo) + lo, shape)


# Coefficients of Giles' single-precision erfinv ("Approximating the erfinv
# function", GPU Computing Gems Jade Edition, 2011), central and tail branches.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                   -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _horner(coeffs, w):
    p = coeffs[0]
    for c in coeffs[1:]:
        p = p * w + c
    return p


def _erfinv(x: Array) -> Array:
    """erfinv on (-1, 1) in funconv ops (relative error about 1e-7; enough for sampling)."""
    w = -log((1 - x) * (1 + x))
    central = _horner(_ERFINV_CENTRAL, w - 2.5)
    tail = _horner(_ERFINV_TAIL, sqrt(w) - 3)
    return where(w < 5, central, tail) * x


def normal(key, shape=(), dtype=DEFAULT_FLOAT) -> Array:
    """Standard normal samples: `sqrt(2) erfinv(u)` for u uniform on (-1, 1) (as JAX).

    The inverse CDF is Giles' float32 polynomial, so float64 samples are
    accurate to about 1e-7 relative (the distribution, not the bits, is what
    that affects).
    """
    shape, dt = _shape(shape, "normal"), _float_dtype(dtype, "normal")
    u = random_uniform_p(_key(key, "normal"), shape=shape, dtype=dt)
    # map [0, 1) onto the open interval (-1, 1): the smallest u gives -1 + ulp, not -1
    lo = np.nextafter(np.array(-1, dt), np.array(0, dt)).item()
    v = u * (1 - lo) + lo
    return _erfinv(v) * math.sqrt(2)


def truncated_normal(key, lower, upper, shape=(), dtype=DEFAULT_FLOAT) -> Array:
    """Standard normal samples conditioned on `lower < x < upper` (inverse-CDF method)."""
    shape, dt = _shape(shape, "truncated_normal"), _float_dtype(dtype, "truncated_normal")
    a = math.erf(float(lower) / math.sqrt(2))
    b = math.erf(float(upper) / math.sqrt(2))
    u = random_uniform_p(_key(key, "truncated_normal"), shape=shape, dtype=dt)
    lo = np.nextafter(np.array(a, dt), np.array(b, dt)).item()
    v = u * (b - lo) + lo
    return _erfinv(v) * math.sqrt(2)


def bernoulli(key, p=0.5, shape=None) -> Array:
    """Booleans that are True with probability `p` (a number or an array).

    `shape` defaults to `p`'s shape.
    """
    p = operand(p, "bernoulli")
    if shape is None:
        shape = p.shape if isinstance(p, Array) else ()
    shape = _shape(shape, "bernoulli")
    dt = p.dtype if isinstance(p, Array) and is_float(p.dtype) else DEFAULT_FLOAT
    return random_uniform_p(_key(key, "bernoulli"), shape=shape, dtype=dt) < to_dtype(p, dt)


def randint(key, shape, minval, maxval, dtype=int32) -> Array:
    """Uniform integers on `[minval, maxval)` (numbers or arrays broadcasting to `shape`).

    Computed as `minval + floor(u * (maxval - minval))` with u a 53-bit
    float64 uniform, so the bias is at most `(maxval - minval) / 2**53`.
    """
    shape = _shape(shape, "randint")
    dt = canonical_dtype(dtype)
    if dt not in (int32, int64):
        raise DTypeError(f"randint: dtype must be int32 or int64, got {dt}")
    lo = to_dtype(operand(minval, "randint"), int64)
    hi = to_dtype(operand(maxval, "randint"), int64)
    span = (hi - lo).astype(np.float64)
    u = random_uniform_p(_key(key, "randint"), shape=shape, dtype=np.dtype(np.float64))
    # u * span can round up to span itself: clamp to the last valid offset; an empty
    # range (maxval <= minval) gives minval, as in JAX
    off = maximum(minimum(floor(u * span), span - 1), 0).astype(int64)
    return broadcast_to(lo + off, shape).astype(dt)


def permutation(key, x, axis: int = 0) -> Array:
    """A random permutation of `arange(x)` (int `x`), or of `x` along `axis` (array `x`)."""
    k = _key(key, "permutation")
    if isinstance(x, (int, np.integer)):
        n = operator.index(x)
        if n < 0:
            raise ArgumentError(f"permutation: n must be >= 0, got {n}")
        return random_permutation_p(k, n=n)
    x = asarray(operand(x, "permutation"))
    if x.ndim == 0:
        raise ShapeError(f"permutation: x must be an int or an array of rank >= 1, got {x.aval.short()}")
    perm = random_permutation_p(k, n=x.shape[axis])
    return take(x, perm, axis=axis)


def choice(key, a, shape=(), replace: bool = True, p=None) -> Array:
    """Random elements of `arange(a)` (int `a`) or of array `a` along axis 0.

    With `p`, element i is drawn with probability `p[i] / sum(p)` (with
    replacement only). Without replacement, `shape` may not hold more than `a`'s
    number of elements.
    """
    k = _key(key, "choice")
    shape = _shape(shape, "choice")
    n = operator.index(a) if isinstance(a, (int, np.integer)) else asarray(a).shape[0]
    size = math.prod(shape)
    if p is not None:
        if not replace:
            raise NotImplementedError("choice: replace=False together with p is not implemented")
        p = asarray(operand(p, "choice"))
        if p.shape != (n,):
            raise ShapeError(f"choice: p must have shape ({n},), got {p.aval.short()}")
        cdf = cumsum(p) / _sum(p)
        u = random_uniform_p(k, shape=shape + (1,), dtype=cdf.dtype)
        # the index is the number of cdf entries below u (inverse-CDF sampling)
        idx = minimum(_sum((cdf < u).astype(int32), axis=-1), n - 1)
    elif replace:
        idx = randint(k, shape, 0, n)
    else:
        if size > n:
            raise ShapeError(f"choice: cannot take {size} elements from {n} without replacement")
        idx = reshape(getitem(random_permutation_p(k, n=n), slice(0, size)), shape)
    if isinstance(a, (int, np.integer)):
        return idx
    return take(asarray(a), reshape(idx, (-1,)), axis=0).reshape(shape + asarray(a).shape[1:])


__all__ = ["key", "PRNGKey", "split", "fold_in", "bits", "uniform", "normal", "truncated_normal",
           "bernoulli", "randint", "permutation", "choice", "threefry2x32"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
