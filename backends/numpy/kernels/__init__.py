"""The NumPy backend's fast kernels, keyed by primitive.

A kernel computes exactly what its primitive's reference `impl` computes, with the
same signature `(*np.ndarray, **params) -> np.ndarray`, but fast: the im2col/GEMM
layouts of convolution, the pooling fast paths, cache- and page-aware buffers.
The generated code calls a primitive's kernel when it has one (else its impl), and
`funconv` registers this table as the eager kernels (`funconv.tracing.EAGER_KERNELS`),
so eager calls are fast too. Tests compare every kernel against its impl.
"""

from __future__ import annotations

from typing import Callable

KERNELS: dict = {}


def register(prim) -> Callable:
    """Decorator: register the decorated function as the NumPy kernel of `prim`."""

    def deco(fn: Callable) -> Callable:
        if prim in KERNELS:
            raise ValueError(f"a NumPy kernel for {prim.name} is registered twice")
        KERNELS[prim] = fn
        return fn

    return deco


def memory_order(x) -> tuple[int, ...]:
    """x's axes from the largest stride to the smallest (stable; size-1 axes sort as
    stride 0): `x.transpose(memory_order(x))` walks memory in order, C-contiguous when x
    is a permuted view of a C-contiguous array."""
    return tuple(sorted(range(x.ndim), key=lambda a: -abs(x.strides[a]) if x.shape[a] > 1 else 0))


# The kernel modules register themselves into KERNELS when imported; importing them here,
# after `register` exists, fills the table before funconv.backends.numpy copies it into
# the eager kernels. A new kernel module is one more name on this line.
from funconv.backends.numpy.kernels import conv, fft, pool, shape  # noqa: E402,F401
