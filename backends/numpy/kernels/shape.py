"""The NumPy backend's pad kernel: `pad_p` of a transposed view by a blocked transposing
copy.

FFT convolution pads its operands with their spatial axes moved first (passes/conv.py:
frequency-major spectra), so the operand is a view x = y.transpose(k, ..., r-1, 0, ...,
k-1) of a C-contiguous y (N, C, H, W) and the result is C-contiguous (H, W, N, C). NumPy
copies such a view element by element in the result's order: for every output row it
gathers N*C values from as many planes of y, whose strides are multiples of 4 KiB for
32x32 or 128x128 float32 planes, so they all fall into the same cache sets and the copy
runs 3-8x slower than a plain one. Copying at most `BLOCK` planes at a time keeps the lines
they read in cache (measured, 2-core EPYC, padding into (H', W', N, C):

    x                   np.pad    blocked
    f32[8,64,64,64]     6.5 ms    2.7 ms    (bench/run.py's dw31)
    f32[4,8,128,128]    1.04 ms   0.34 ms   (conv11)
    f32[64,3,32,32]     0.59 ms   0.32 ms

BLOCK 16 was the best of 4, 8, 16 and 32). A large view permuted otherwise (not such a
rotation) is padded into its own memory order (`_in_memory_order`). Small arrays, interior
padding or cropping go through the impl (`np.pad`). Imports numpy and the funconv core.
"""

from __future__ import annotations

import math

import numpy as np

from funconv.backends.numpy.kernels import memory_order, register
from funconv.ops.shape import _pad_impl, pad_p

BLOCK = 16  # planes copied at a time
MIN_BYTES = 1 << 20  # smaller operands: the impl's one copy (the loop would cost more)


def _rotated(x: np.ndarray) -> int:
    """k > 0 when x is y.transpose(k, ..., r-1, 0, ..., k-1) of a C-contiguous y (y's
    trailing axes moved first), else 0."""
    r = x.ndim
    perm = memory_order(x)
    for k in range(1, r):
        rot = tuple(range(r - k, r)) + tuple(range(r - k))
        if perm == rot and x.transpose(rot).flags.c_contiguous:
            return k
    return 0


@register(pad_p)
def pad_kernel(x: np.ndarray, v, *, config) -> np.ndarray:
    """`pad_p`'s impl: same signature, same values. The result is C-contiguous (np.pad's
    layout) for a C-contiguous or rotated x; for another permuted view it keeps x's memory
    order (`_in_memory_order`)."""
    k = _rotated(x) if x.nbytes >= MIN_BYTES and not x.flags.c_contiguous else 0
    r = x.ndim
    s = r - k  # x's leading s axes are y's trailing (contiguous) ones: its planes
    plain = all(i == 0 and lo >= 0 and hi >= 0 for lo, hi, i in config)
    if not k and plain and x.nbytes >= MIN_BYTES and not x.flags.c_contiguous:
        return _in_memory_order(x, v, config)
    if not k or any(c != (0, 0, 0) for c in config[s:]) or not plain:
        return _pad_impl(x, v, config=config)
    out = np.full([n + lo + hi for n, (lo, hi, _) in zip(x.shape, config)], v, x.dtype)
    inner = out[tuple(slice(lo, lo + n) for n, (lo, _, _) in zip(x.shape, config))].view()
    P = math.prod(x.shape[s:])
    inner.shape = x.shape[:s] + (P,)  # (raises rather than copy: the trailing axes merge)
    planes = x.transpose(tuple(range(s, r)) + tuple(range(s))).reshape((P,) + x.shape[:s])
    moved = tuple(range(1, s + 1)) + (0,)
    for j in range(0, P, BLOCK):
        inner[..., j:j + BLOCK] = planes[j:j + BLOCK].transpose(moved)
    return out


def _in_memory_order(x: np.ndarray, v, config) -> np.ndarray:
    """x padded into a fresh array laid out in x's memory order (a permuted view of it): a
    copy whose runs are as long as x's. NumPy's own copy into a C-ordered result loops over
    x's short strided runs instead: conv11's output cotangent, f32[128,128,4,8] laid out
    (128,128,8,4) by the mixing (lowering._batched_matmul computes a complex product
    swapped), took 330 us padded C-ordered, 79 us in its own order; the FFT that reads it
    works in any order (kernels/fft.py)."""
    perm = memory_order(x)
    xm = x.transpose(perm)
    shape = [n + lo + hi for n, (lo, hi, _) in zip(x.shape, config)]
    out = np.full([shape[a] for a in perm], v, x.dtype)
    out[tuple(slice(config[a][0], config[a][0] + x.shape[a]) for a in perm)] = xm
    return out.transpose(np.argsort(perm))
