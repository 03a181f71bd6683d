"""funconv: a pure-functional array library for convolutional models.

Write a model as a pure function over immutable arrays; `grad`, `vjp`, `jvp`
and `jit` trace it into a graph, differentiate it symbolically and compile it.
"""

# ruff: noqa: F401  (this module re-exports; __all__ below is computed)

from funconv import config, errors, tree  # noqa: F401
from funconv.array import Array
from funconv.ops import *  # noqa: F401,F403
from funconv.ops import abs, all, any, max, min, sum  # noqa: A004,F401
from funconv.ops.conv import conv, conv_general_dilated, conv_transpose
from funconv.ops.pool import adaptive_avg_pool, adaptive_max_pool, avg_pool, max_pool
from funconv.autodiff import (custom_vjp, grad, hessian, jacfwd, jacrev, jvp, stop_gradient,
                              value_and_grad, vjp)
from funconv.io import load, save
from funconv.staging import make_graph
from funconv.jit import jit
from funconv import nn, optim, random, testing  # noqa: F401,E402
from funconv import fft  # noqa: F401,E402  (the module: fc.fft.rfftn, ...)
from funconv import linalg  # noqa: F401,E402  (the Array API's extension: fc.linalg.solve, ...)
import funconv.backends.numpy  # noqa: E402  (registers the NumPy kernels for eager mode)
from funconv.types import (ArrayType, bool_, complex64, complex128, float32, float64, int32,  # noqa: F401
                           int64)

float_ = float32

# The Array API standard's namespace: its version, inspection namespace and dtype names.
# `bool` and `pow` are attributes but not in __all__: `from funconv import *` must not
# shadow the builtins.
from funconv.ops.array_api import __array_api_version__, __array_namespace_info__  # noqa: E402
from funconv.ops.elementwise import pow  # noqa: E402,A004
from funconv.types import int8, int16, uint8, uint16, uint32, uint64  # noqa: E402
bool = bool_  # noqa: A001
e, pi, inf, nan = float(__import__("math").e), float(__import__("math").pi), float("inf"), float("nan")
newaxis = None
__version__ = "0.1.0"

from funconv import ops as _ops  # noqa: E402

__all__ = sorted(set(_ops.__all__) | {
    "Array", "ArrayType", "abs", "all", "any", "max", "min", "sum",
    "conv", "conv_general_dilated", "conv_transpose",
    "adaptive_avg_pool", "adaptive_max_pool", "avg_pool", "max_pool",
    "custom_vjp", "grad", "hessian", "jacfwd", "jacrev", "jvp", "stop_gradient", "value_and_grad", "vjp",
    "jit", "make_graph", "load", "save",
    "config", "errors", "tree", "nn", "optim", "random", "testing", "fft", "linalg",
    "bool_", "complex64", "complex128", "float32", "float64", "float_", "int32", "int64",
    "int8", "int16", "uint8", "uint16", "uint32", "uint64", "e", "pi", "inf", "nan", "newaxis",
})
