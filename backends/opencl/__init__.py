"""The OpenCL backend: a graph becomes one OpenCL program and a fixed list of launches.

`compile(graph, donate=(), name=...)` returns an `Executable` (codegen.py): call it with
one NumPy array per graph input; it uploads them, runs every kernel back to back on one
in-order queue, downloads the outputs and waits once. `.source` is the OpenCL C program,
`.profile(values)` times each kernel. The device is chosen once per process (device.py:
FUNCONV_OPENCL_DEVICE, PYOPENCL_CTX, else the first GPU, else the CPU); without pyopencl
or an OpenCL platform, compiling raises OpenCLUnavailable (a FuncConvError) saying what to
install. How each primitive is lowered: lowering.py.
"""

from __future__ import annotations

from funconv.backends.opencl.device import (OpenCLBuildError, OpenCLUnavailable,  # noqa: F401
                                            OpenCLUnsupported, default_device)
from funconv.ir import Graph

# Primitives this backend has no kernels for yet. jit's passes do not emit them for it (a
# convolution picks im2col, not FFT); a graph that holds one anyway (fc.fft, fc.linalg)
# fails to compile with OpenCLUnsupported, naming the node and the user's line.
LACKS = frozenset({"fft", "cholesky", "det", "eigh", "inv", "solve", "searchsorted"})


def compile(graph: Graph, donate=(), name: str = "jitted"):
    """Compile `graph` for the process's OpenCL device.

    Args:
        graph: the (optimised) graph.
        donate: indices of inputs the caller gives up. Inputs are copied into the
            executable's own device buffers at each call and the results come back as new
            arrays, so a caller's array is never written: donation changes nothing here.
        name: the function's name, for messages.

    Raises:
        OpenCLUnavailable: no pyopencl or no OpenCL device.
        OpenCLUnsupported: a node needs float64 on a device without it, or a primitive this
            backend does not lower yet (the message names the node and the user's line).
        OpenCLBuildError: the generated program failed to build (names the saved source).
    """
    from funconv.backends.opencl.codegen import Executable
    from funconv.backends.opencl.lowering import lowering

    return Executable(graph, default_device(), lowering, name)
