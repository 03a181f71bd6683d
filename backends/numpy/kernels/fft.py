"""The NumPy backend's FFT kernel: `fft_p` through `scipy.fft` when SciPy is installed
(the `fast` extra), through `numpy.fft` otherwise.

`scipy.fft` (pocketfft) keeps single precision (float32 in, complex64 out), and
with `workers=` it splits the batch of transforms over threads: measured 6x
faster than `numpy.fft` for 32 planes of 140x140 on 2 cores (issue 11). Threads
only pay for large batches (one measurement on 2 cores: f32[4,8,32,32] took 73 us
with 1 worker and 165 us with 2; f32[32,140,140] 3.3 ms and 1.9 ms), so smaller
operands run on one. The result has the primitive's exact dtype: `numpy.fft`
before NumPy 2 computes single precision in double, and is cast back.

`USE_SCIPY` is a module-level switch: tests set it False to run the `numpy.fft`
path on a machine that has SciPy. Imports numpy, optionally scipy, and the
funconv core (for `fft_p`).
"""

from __future__ import annotations

import os

import numpy as np

from funconv.backends.numpy import lanes
from funconv.backends.numpy.kernels import memory_order, register
from funconv.ops.fft import fft_p, out_dtype

try:
    import scipy.fft as _scipy_fft
except ImportError:  # SciPy is the optional `fast` extra
    _scipy_fft = None

USE_SCIPY: bool = _scipy_fft is not None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (Linux)
    except AttributeError:
        return os.cpu_count() or 1


WORKERS: int = _usable_cores()
# operands smaller than this (elements) run on one thread; see the module docstring
THREAD_MIN_SIZE: int = 1 << 17


# OpenBLAS's complex GEMM kernels (the FFT convolution's channel mixing and DFT-matrix
# products) return with the upper halves of the AVX registers dirty (no `vzeroupper`; BLIS
# had the same bug, flame/blis#523), and the SSE code of scipy's pocketfft then runs 2.5x
# slower (measured: an irfft2 of 32 planes of 140 x 140 took 4.4 ms after a complex64
# matmul, 1.75 ms otherwise) until some AVX code clears them. NumPy's own SIMD loops end
# with `vzeroupper`, so one float32 add over 64 elements (~0.5 us) before each transform
# clears them (16 elements were too few to reach the vector loop). Its values never matter,
# so the two lanes may both write it.
_SCRATCH = np.zeros(64, np.float32)


@register(fft_p)
def fft_kernel(x: np.ndarray, *, fft_type: str, fft_lengths: tuple[int, ...]) -> np.ndarray:
    """`fft_p`'s impl, fast: same signature, same values (NumPy's "backward" norm).

    The transform runs in x's memory order and the result keeps that order: a transposed
    view in, a transposed view of a fresh array out (pocketfft reads and writes strided
    lines). So a graph that transposes an array (a view), transforms its trailing axes and
    transposes back reads and writes one layout throughout -- FFT convolution keeps its
    spectra frequency-major, (freqs..., N, C), the layout its per-frequency GEMMs read."""
    k = len(fft_lengths)
    logical = tuple(range(x.ndim - k, x.ndim))
    perm = tuple(range(x.ndim))
    if x.ndim > 1 and not x.flags.c_contiguous:
        mem = memory_order(x)
        if mem != perm:
            perm = mem
            x = x.transpose(perm)
    axes = tuple(perm.index(a) for a in logical)
    np.add(_SCRATCH, _SCRATCH, out=_SCRATCH)  # clears the AVX upper state (see above)
    if USE_SCIPY and _scipy_fft is not None:
        lib = _scipy_fft
        # (one worker while a node runs on the second lane: lanes.py)
        kw = {"workers": WORKERS if x.size >= THREAD_MIN_SIZE and not lanes.busy() else 1}
    else:
        lib, kw = np.fft, {}
    if fft_type == "fft":
        y = lib.fftn(x, axes=axes, **kw)
    elif fft_type == "ifft":
        y = lib.ifftn(x, axes=axes, **kw)
    elif fft_type == "rfft":
        y = lib.rfftn(x, axes=axes, **kw)
    else:
        y = lib.irfftn(x, s=fft_lengths, axes=axes, **kw)
    y = y.astype(out_dtype(x.dtype, fft_type), copy=False)
    if perm != tuple(range(x.ndim)):
        y = y.transpose(tuple(perm.index(a) for a in range(x.ndim)))
    return y
