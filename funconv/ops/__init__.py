"""The primitives and their NumPy-named wrappers, one module per family.

This package's namespace is what `Array`'s operators forward to.
"""

from funconv import array as _array_module
from funconv.ops._core import array, asarray, broadcast_shapes, broadcast_to, astype
from funconv.ops.creation import (arange, eye, full, full_like, identity, linspace, ones,
                                  ones_like, zeros, zeros_like)
from funconv.ops.elementwise import *  # noqa: F401,F403
from funconv.ops.elementwise import abs, absolute, where  # noqa: F401
from funconv.ops.shape import *  # noqa: F401,F403
from funconv.ops.reduce import (all, amax, amin, any, argmax, argmin, cumsum, logsumexp, max,  # noqa: F401
                                mean, min, prod, std, sum, var)
from funconv.ops.linalg import dot_general, matmul  # noqa: F401
from funconv.ops.indexing import *  # noqa: F401,F403
from funconv.ops.indexing import getitem, index_update  # noqa: F401

_array_module._ops = __import__("sys").modules[__name__]
