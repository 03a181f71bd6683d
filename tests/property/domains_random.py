"""Domain entries for the random primitives (random_bits, random_uniform,
random_fold_in, random_permutation) of funconv/ops/random.py.

Their NumPy meaning is written independently of the vectorised impl: a
scalar Threefry-2x32 on Python ints (checked against Random123's known
answers in tests/unit/test_random.py), applied element by element as the
stream layout documented in funconv/random.py prescribes. None of these
primitives is differentiable.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from domains import DOMAINS, Case, Domain, draw_shape

M32 = 0xFFFFFFFF


def _threefry(k0: int, k1: int, x0: int, x1: int) -> tuple[int, int]:
    """Threefry-2x32, 20 rounds, one block, in Python ints."""
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    rot = ((13, 15, 26, 6), (17, 29, 16, 24))
    x0, x1 = (x0 + k0) & M32, (x1 + k1) & M32
    for i in range(5):
        for r in rot[i % 2]:
            x0 = (x0 + x1) & M32
            x1 = ((x1 << r) | (x1 >> (32 - r))) & M32
            x1 ^= x0
        x0 = (x0 + ks[(i + 1) % 3]) & M32
        x1 = (x1 + ks[(i + 2) % 3] + i + 1) & M32
    return x0, x1


def _words(key) -> tuple[int, int]:
    return int(key[0]) & M32, int(key[1]) & M32


def _block(key, counter: int, tag: int) -> tuple[int, int]:
    return _threefry(*_words(key), (counter >> 32) | (tag << 30), counter & M32)


def _as_i32(u: int) -> int:
    return u - (1 << 32) if u >= 1 << 31 else u


def _ref_bits(key, *, shape, tag):
    n = int(np.prod(shape, dtype=np.int64))
    out = [_block(key, j // 2, tag)[j % 2] for j in range(n)]
    return np.array([_as_i32(u) for u in out], np.int32).reshape(shape)


def _ref_uniform(key, *, shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    if np.dtype(dtype) == np.float32:
        vals = [(_block(key, j // 2, 0)[j % 2] >> 8) / 2.0 ** 24 for j in range(n)]
    else:
        vals = []
        for j in range(n):
            hi, lo = _block(key, j, 0)
            vals.append((((hi << 32) | lo) >> 11) / 2.0 ** 53)
    return np.array(vals, dtype).reshape(shape)


def _ref_fold_in(key, data):
    y0, y1 = _threefry(*_words(key), 2 << 30, int(data) & M32)
    return np.array([_as_i32(y0), _as_i32(y1)], np.int32)


def _ref_permutation(key, *, n):
    blocks = [_block(key, j, 0) for j in range(n)]
    vals = [(hi << 32) | lo for hi, lo in blocks]
    return np.array(sorted(range(n), key=lambda j: (vals[j], j)), np.int32)


def _key(data) -> np.ndarray:
    words = data.draw(st.tuples(st.integers(0, M32), st.integers(0, M32)), label="key")
    return np.array(words, np.uint32).view(np.int32)


def _bits_sample(data, dtype):
    shape = draw_shape(data, min_dims=0, max_dims=3, max_side=4)
    return Case((_key(data),), {"shape": shape, "tag": data.draw(st.sampled_from([0, 1]), label="tag")})


def _uniform_sample(data, dtype):
    shape = draw_shape(data, min_dims=0, max_dims=3, max_side=4)
    return Case((_key(data),), {"shape": shape, "dtype": np.dtype(dtype)})


def _fold_in_sample(data, dtype):
    d = data.draw(st.integers(-2 ** 31, 2 ** 31 - 1), label="data")
    return Case((_key(data), np.array(d, np.int32)), {})


def _permutation_sample(data, dtype):
    return Case((_key(data),), {"n": data.draw(st.integers(0, 12), label="n")})


# Exact integers: zero tolerance. The uniforms are exact in their dtype too.
DOMAINS["random_bits"] = Domain(_bits_sample, numpy=_ref_bits, rtol=0, atol=0)
DOMAINS["random_uniform"] = Domain(_uniform_sample, numpy=_ref_uniform, rtol=0, atol=0)
DOMAINS["random_fold_in"] = Domain(_fold_in_sample, numpy=_ref_fold_in, rtol=0, atol=0)
DOMAINS["random_permutation"] = Domain(_permutation_sample, numpy=_ref_permutation, rtol=0, atol=0)
