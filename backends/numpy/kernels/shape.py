"""The NumPy backend's pad kernel: `pad_p` of a transposed view, without NumPy's slow
transposing copy.

`np.pad` writes a C-contiguous result by copying its operand into it. When the operand is
a permuted view whose large strides are multiples of 4 KiB (a transposed stack of 32 x 32
or 128 x 128 float32 planes), that copy gathers elements that all fall into the same cache
sets and runs 3-8x slower than a plain copy. Then this kernel pads in the operand's memory
order first (a plain copy) and transposes the padded array, whose strides no longer alias
(measured, 2-core EPYC: x f32[4,8,128,128] seen as (128,128,4,8) padded by 5/7: 0.98 ms
directly, 0.34 ms in two steps; f32[64,3,32,32]: 0.59 and 0.23 ms). Only then: at strides
that do not alias (f32[4,8,130,130]) the direct copy is faster, 0.22 against 0.35 ms, and
where the padded planes alias too (f32[8,64,64,64] padded to 96 x 96) two steps cost
17 ms against 7.
FFT convolution pads its operands this way (passes/conv.py: spatial axes first). Imports
numpy and the funconv core.
"""

from __future__ import annotations

import numpy as np

from funconv.backends.numpy.kernels import memory_order, register
from funconv.ops.shape import _pad_impl, pad_p

ALIASING_STRIDE = 4096  # bytes: strides that are multiples of this share cache sets


def _aliases(shape, strides, perm: tuple) -> bool:
    """Whether copying an array of this shape and these strides into C order gathers along
    an axis of an aliasing stride (one that moves: its memory position in perm is not its
    logical position)."""
    return any(perm[i] != i and shape[perm[i]] > 1 and strides[perm[i]] % ALIASING_STRIDE == 0
               for i in range(len(shape)))


def _padded_strides(x: np.ndarray, perm: tuple, config) -> tuple:
    """The strides (by logical axis) of x padded in its memory order `perm`."""
    mem_shape = [x.shape[a] + config[a][0] + config[a][1] + max(x.shape[a] - 1, 0) * config[a][2]
                 for a in perm]
    mem_strides = np.cumprod([1] + mem_shape[:0:-1])[::-1] * x.itemsize
    return tuple(int(mem_strides[perm.index(a)]) for a in range(x.ndim)), \
        tuple(mem_shape[perm.index(a)] for a in range(x.ndim))


@register(pad_p)
def pad_kernel(x: np.ndarray, v, *, config) -> np.ndarray:
    """`pad_p`'s impl (same signature, same values, a C-contiguous result like `np.pad`'s)."""
    if x.ndim > 1 and not x.flags.c_contiguous:
        perm = memory_order(x)
        if (perm != tuple(range(x.ndim)) and _aliases(x.shape, x.strides, perm)
                and not _aliases(*reversed(_padded_strides(x, perm, config)), perm)):
            y = _pad_impl(x.transpose(perm), v, config=tuple(config[a] for a in perm))
            return np.ascontiguousarray(y.transpose(np.argsort(perm)))
    return _pad_impl(x, v, config=config)
