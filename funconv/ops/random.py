"""The random-bit primitives of fc.random: Threefry-2x32 and the samplers built on it.

Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011) in NumPy uint32 arithmetic, and the primitives whose
impls run it: `random_bits`, `random_uniform`, `random_fold_in`,
`random_permutation`. None is differentiable. A key is an `int32[2]` holding
the bit patterns of the two uint32 key words; the stream layout (the tag in
the counter's top two bits) is documented in funconv/random.py, which holds
the user-facing functions (`fc.random.key`, `split`, `normal`, ...).

Imports types, errors and primitive.
"""

from __future__ import annotations

import math

import numpy as np

from funconv.errors import ArgumentError, DTypeError
from funconv.primitive import Primitive
from funconv.types import ArrayType, int32, is_float

# --- Threefry-2x32 in NumPy uint32 arithmetic -------------------------------------

# Rotation constants and key-schedule parity of Threefry-2x32 (Random123, threefry.h).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)

TAG_SAMPLE, TAG_SPLIT, TAG_FOLD_IN = 0, 1, 2
_TAG_SHIFT = 30  # the tag sits in the top two bits of the counter's high word


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(key_words, x0, x1) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 (20 rounds): encrypt counters `(x0, x1)` under `key_words`.

    Args:
        key_words: the two uint32 key words (anything `np.uint32` accepts).
        x0, x1: uint32 arrays of one shape, the high and low counter words.

    Returns:
        Two uint32 arrays of that shape. Matches Random123's known-answer vectors.
    """
    k0, k1 = (np.asarray(w, dtype=np.uint32) for w in key_words)
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = np.array(x0, dtype=np.uint32) + ks[0]
    x1 = np.array(x1, dtype=np.uint32) + ks[1]
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps by design
        for i in range(5):  # 5 x 4 = 20 rounds, a key injection after every 4
            for r in _ROTATIONS[i % 2]:
                x0 = x0 + x1
                x1 = _rotl(x1, r) ^ x0
            x0 = x0 + ks[(i + 1) % 3]
            x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _key_words(key: np.ndarray) -> tuple[np.uint32, np.uint32]:
    k = np.asarray(key).astype(np.int64) & 0xFFFFFFFF
    return np.uint32(k[0]), np.uint32(k[1])


def _blocks(key: np.ndarray, n: int, tag: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Both output words of the `n` blocks with counters first..first+n-1 of stream `tag`."""
    c = np.arange(first, first + n, dtype=np.uint64)
    hi = (c >> np.uint64(32)).astype(np.uint32) | np.uint32(tag << _TAG_SHIFT)
    lo = (c & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return threefry2x32(_key_words(key), hi, lo)


def _bits32(key: np.ndarray, n: int, tag: int) -> np.ndarray:
    """`n` uint32 words of stream `tag`: word j is word j % 2 of block j // 2."""
    y0, y1 = _blocks(key, (n + 1) // 2, tag)
    return np.stack([y0, y1], axis=-1).reshape(-1)[:n]


def _bits64(key: np.ndarray, n: int) -> np.ndarray:
    """`n` uint64 values of the sampling stream: value j is block j, `hi << 32 | lo`."""
    y0, y1 = _blocks(key, n, TAG_SAMPLE)
    return (y0.astype(np.uint64) << np.uint64(32)) | y1.astype(np.uint64)


def _as_int32_bits(u: np.ndarray) -> np.ndarray:
    return u.astype(np.uint32).view(np.int32)


# --- primitives ----------------------------------------------------------------------


def _check_key_type(name: str, key: ArrayType) -> None:
    if key.shape != (2,) or key.dtype != int32:
        raise ArgumentError(f"{name}: expected a key, an i32[2] made by fc.random.key(seed) or "
                            f"split from one, got {key.short()}")


def _bits_rule(key: ArrayType, *, shape, tag) -> ArrayType:
    _check_key_type("random_bits", key)
    return ArrayType(tuple(shape), int32)


def _bits_impl(key, *, shape, tag):
    n = math.prod(shape)
    return _as_int32_bits(_bits32(key, n, tag)).reshape(shape)


# Raw uint32 bit patterns (as int32) of stream `tag`; `split` is this with tag 1.
random_bits_p = Primitive("random_bits", _bits_rule, _bits_impl, differentiable=False)


def _uniform_rule(key: ArrayType, *, shape, dtype) -> ArrayType:
    _check_key_type("random_uniform", key)
    if not is_float(dtype):
        raise DTypeError(f"random_uniform: dtype must be a float dtype, got {dtype}")
    return ArrayType(tuple(shape), dtype)


def _uniform_impl(key, *, shape, dtype):
    n = math.prod(shape)
    if dtype == np.float32:
        # the top 24 bits of each word, scaled by 2**-24: exact in float32, in [0, 1)
        u = (_bits32(key, n, TAG_SAMPLE) >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    else:
        # the top 53 bits of each 64-bit block: exact in float64, in [0, 1)
        u = (_bits64(key, n) >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    return u.astype(dtype, copy=False).reshape(shape)


# Uniform floats on [0, 1): float32 from one word per element, float64 from one block.
random_uniform_p = Primitive("random_uniform", _uniform_rule, _uniform_impl, differentiable=False)


def _fold_in_rule(key: ArrayType, data: ArrayType) -> ArrayType:
    _check_key_type("random_fold_in", key)
    if data.shape != () or data.dtype.kind not in "iu":
        raise ArgumentError(f"fold_in: data must be an integer scalar, got {data.short()}")
    return key


def _fold_in_impl(key, data):
    lo = np.asarray(np.asarray(data).astype(np.int64) & 0xFFFFFFFF, dtype=np.uint32)
    hi = np.uint32(TAG_FOLD_IN << _TAG_SHIFT)
    y0, y1 = threefry2x32(_key_words(key), hi, lo)
    return _as_int32_bits(np.stack([y0, y1]))


random_fold_in_p = Primitive("random_fold_in", _fold_in_rule, _fold_in_impl, differentiable=False)


def _permutation_rule(key: ArrayType, *, n) -> ArrayType:
    _check_key_type("random_permutation", key)
    return ArrayType((n,), int32)


def _permutation_impl(key, *, n):
    # sort indices by 64 random bits each: ties (probability ~ n**2 / 2**65) keep index order
    return np.argsort(_bits64(key, n), kind="stable").astype(np.int32)


random_permutation_p = Primitive("random_permutation", _permutation_rule, _permutation_impl,
                                 differentiable=False)
