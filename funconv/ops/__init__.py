"""The primitives and their NumPy-named wrappers, one module per family.

This package's namespace is what `Array`'s operators forward to. Each family
module declares an explicit `__all__` of user-facing functions, so
`from funconv.ops import *` (in funconv/__init__.py) exports only those.
"""

from funconv import array as _array_module
from funconv.ops._core import array, asarray, astype, broadcast_to  # noqa: F401
from funconv.ops.creation import *  # noqa: F401,F403
from funconv.ops.elementwise import *  # noqa: F401,F403
from funconv.ops.shape import *  # noqa: F401,F403
from funconv.ops.reduce import *  # noqa: F401,F403
from funconv.ops.linalg import *  # noqa: F401,F403
from funconv.ops.indexing import *  # noqa: F401,F403
from funconv.ops.indexing import getitem, index_update  # noqa: F401
from funconv.ops.array_api import *  # noqa: F401,F403
from funconv.ops import array_api as _array_api
from funconv.ops import creation as _creation, elementwise as _elementwise, indexing as _indexing
from funconv.ops import linalg as _linalg, reduce as _reduce, shape as _shape

__all__ = (["array", "asarray", "astype", "broadcast_to"]
           + _creation.__all__ + _elementwise.__all__ + _shape.__all__ + _reduce.__all__
           + _linalg.__all__ + _indexing.__all__ + _array_api.__all__)

_array_module._ops = __import__("sys").modules[__name__]
