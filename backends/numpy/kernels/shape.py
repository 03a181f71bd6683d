"""The NumPy backend's pad kernel: `pad_p` in its operand's memory order.

`np.pad` writes a C-contiguous result, so padding a transposed view is a transposing copy,
which NumPy does slowly when the source strides are powers of two (cache-set conflicts):
padding x f32[4,8,128,128] seen as (128,128,4,8) took 0.96 ms, the same pad in x's own
order 0.13 ms (measured, 2-core EPYC). FFT convolution pads its operands in the
frequency-major order (passes/conv.py) and its FFT kernel transforms in memory order, so
keeping the operand's order here leaves the one transposition to the small complex
spectrum (numpy's matmul operands, `lowering._blasable`). Imports numpy and the core.
"""

from __future__ import annotations

import numpy as np

from funconv.backends.numpy.kernels import memory_order, register
from funconv.ops.shape import _pad_impl, pad_p


@register(pad_p)
def pad_kernel(x: np.ndarray, v, *, config) -> np.ndarray:
    """`pad_p`'s impl (same signature, same values); the result keeps x's memory order (a
    permuted view in, the same permutation of a fresh array out)."""
    if x.ndim > 1 and not x.flags.c_contiguous:
        perm = memory_order(x)
        if perm != tuple(range(x.ndim)):
            y = _pad_impl(x.transpose(perm), v, config=tuple(config[a] for a in perm))
            return y.transpose(np.argsort(perm))
    return _pad_impl(x, v, config=config)
