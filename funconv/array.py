"""The immutable Array.

An Array holds either a concrete read-only ndarray (`_value`, eager mode), or a
node of a trace (`_node`, `_trace`) whose value may also be known. Operators
and methods forward to the NumPy-named functions in `funconv.ops`. Nothing
here mutates: `x[i] = v` raises and points to `x.at[i].set(v)`.
Imports types and errors; `funconv.ops` is reached through the module-level
`_ops` set by `funconv/ops/__init__.py` (ops import this module).
"""

from __future__ import annotations

import numpy as np

from funconv.errors import ConcretizationError, DeletedArrayError, ImmutableError
from funconv.types import ArrayType

_ops = None  # funconv.ops, installed by funconv/ops/__init__.py


class _Donated:
    """The `_value` of an Array donated to a jitted call (`jit(..., donate_argnums=)`).

    The compiled code may have written a result into the array's buffer, so the Array is
    deleted, as in JAX. Rather than a flag checked on every access (which would slow
    `shape`, `dtype` and the jit call path), its value becomes this object: reading any
    attribute of it (`.shape`, `.dtype`, ...) raises a clear error, at no cost to live
    Arrays.
    """

    __slots__ = ()

    def __getattr__(self, name):
        raise _donated_error()

    def __repr__(self) -> str:
        return "<donated>"


DONATED = _Donated()


def _donated_error() -> DeletedArrayError:
    return DeletedArrayError(
        "this array was donated to a jitted call (donate_argnums) and deleted: its buffer "
        "may hold that call's result. Use the call's result instead, or do not donate an "
        "array you still need")


def _readonly(v: np.ndarray) -> np.ndarray:
    if v.flags.writeable:
        v.flags.writeable = False
    return v


# the Array API standard's versions, oldest first; funconv implements the last
_API_VERSIONS = ("2021.12", "2022.12", "2023.12", "2024.12", "2025.12")


class Array:
    """An immutable n-dimensional array (concrete, or a traced value).

    Supports NumPy-style operators, indexing, `.at[idx].set/add/multiply/divide/min/max`,
    reductions as methods, and `np.asarray(a)`.
    """

    __slots__ = ("_value", "_node", "_trace", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # make `ndarray op Array` defer to Array's reflected operators

    # -- construction (internal) -------------------------------------------------
    @classmethod
    def _from_value(cls, value) -> "Array":
        a = object.__new__(cls)
        a._value = _readonly(np.asarray(value))
        a._node = None
        a._trace = None
        return a

    @classmethod
    def _traced(cls, node, trace) -> "Array":
        a = object.__new__(cls)
        a._value = None
        a._node = node
        a._trace = trace
        return a

    def __init__(self, *args, **kwargs):
        raise TypeError("create arrays with fc.array(...) or fc.asarray(...)")

    # -- type ----------------------------------------------------------------------
    @property
    def aval(self) -> ArrayType:
        if self._node is not None:
            return self._node.type
        return ArrayType(self._value.shape, self._value.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._node.type.shape if self._node is not None else self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._node.type.dtype if self._node is not None else self._value.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self.aval.size

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    # -- concrete values -----------------------------------------------------------
    def _concrete_value(self) -> np.ndarray | None:
        if self._node is None:
            if self._value is DONATED:
                raise _donated_error()  # a clear error, not NumPy's
            return self._value
        return self._trace.values.get(self._node)

    def is_deleted(self) -> bool:
        """True once the array was donated to a jitted call (`donate_argnums`), as in JAX."""
        return self._value is DONATED

    def _delete(self) -> None:
        """Mark this concrete array deleted (donated): any later use raises."""
        self._value = DONATED

    def _require_value(self, what: str) -> np.ndarray:
        v = self._concrete_value()
        if v is None:
            raise ConcretizationError(
                f"{what} needs a concrete value, but this is an abstract traced value "
                f"{self.aval.short()} inside jit (or make_graph). Python control flow and "
                "conversions cannot depend on traced values: mark the argument static with "
                "jit(f, static_argnums=...), or compute both branches with fc.where(cond, a, b)")
        return v

    def __array__(self, dtype=None, copy=None):
        v = self._require_value("np.asarray(x)")
        if copy:
            v = v.copy()
        return v if dtype is None else v.astype(dtype)

    def __bool__(self) -> bool:
        return bool(self._require_value("bool(x) (an `if` or `while` on an array)"))

    def __float__(self) -> float:
        return float(self._require_value("float(x)"))

    def __int__(self) -> int:
        return int(self._require_value("int(x)"))

    def __complex__(self) -> complex:
        return complex(self._require_value("complex(x)"))

    def __index__(self) -> int:
        v = self._require_value("using an array as an index")
        if v.dtype.kind not in "iu" or v.ndim:
            raise TypeError(f"only integer scalar arrays can be used as an index, got {self.aval.short()}")
        return int(v)

    def item(self):
        return self._require_value("x.item()").item()

    def tolist(self):
        return self._require_value("x.tolist()").tolist()

    def __repr__(self) -> str:
        if self._node is not None:
            v = self._concrete_value()
            if v is None:
                return f"Traced<{self.aval.short()}>"
            body = np.array2string(v, separator=", ", prefix="Traced(")
            return f"Traced({body}, dtype={self.dtype})"
        if self._value is DONATED:
            return "Array(<deleted: donated to a jitted call>)"
        body = np.array2string(self._value, separator=", ", prefix="Array(")
        return f"Array({body}, dtype={self.dtype})"

    def __str__(self) -> str:
        if self._node is None and self._value is DONATED:
            return repr(self)
        v = self._concrete_value()
        return str(v) if v is not None else repr(self)

    def __hash__(self):
        raise TypeError("Array is unhashable (like np.ndarray); pass static values as "
                        "Python numbers or tuples")

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # -- immutability ----------------------------------------------------------------
    def __setitem__(self, idx, value):
        raise ImmutableError("funconv arrays are immutable: instead of `x[idx] = v` write "
                             "`x = x.at[idx].set(v)` (or .add(v), .multiply(v))")

    @property
    def at(self) -> "_IndexUpdateHelper":
        return _IndexUpdateHelper(self)

    # -- methods forwarding to ops -------------------------------------------------------
    @property
    def T(self) -> "Array":
        return _ops.transpose(self)

    @property
    def real(self):
        return _ops.real(self)

    @property
    def imag(self):
        return _ops.imag(self)

    def conj(self):
        return _ops.conj(self)

    def astype(self, dtype) -> "Array":
        return _ops.astype(self, dtype)

    def reshape(self, *shape, order="C") -> "Array":
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    def transpose(self, *axes) -> "Array":
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0]) if axes[0] is not None else None
        return _ops.transpose(self, axes or None)

    def flatten(self) -> "Array":
        return _ops.reshape(self, (-1,))

    ravel = flatten

    def squeeze(self, axis=None):
        return _ops.squeeze(self, axis)

    def sum(self, axis=None, dtype=None, keepdims=False):
        return _ops.sum(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, keepdims=False):
        return _ops.mean(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def var(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return _ops.var(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return _ops.std(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, keepdims=False):
        return _ops.prod(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _ops.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _ops.argmin(self, axis=axis, keepdims=keepdims)

    def dot(self, other):
        return _ops.dot(self, other)

    def any(self, axis=None, keepdims=False):
        return _ops.any(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return _ops.all(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None):
        return _ops.cumsum(self, axis=axis, dtype=dtype)

    def clip(self, min=None, max=None):  # noqa: A002 (NumPy's names)
        return _ops.clip(self, min, max)

    def round(self):
        return _ops.round(self)

    def take(self, indices, axis=None):
        return _ops.take(self, indices, axis=axis)

    def swapaxes(self, axis1, axis2):
        return _ops.swapaxes(self, axis1, axis2)

    def repeat(self, repeats, axis=None):
        return _ops.repeat(self, repeats, axis=axis)

    def sort(self, axis=-1, descending=False):
        """A sorted copy (as JAX: NumPy's in-place `x.sort()` has no immutable meaning)."""
        return _ops.sort(self, axis=axis, descending=descending)

    def argsort(self, axis=-1, descending=False):
        return _ops.argsort(self, axis=axis, descending=descending)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return _ops.diagonal(self, offset, axis1, axis2)

    def trace(self, offset=0, axis1=0, axis2=1):
        return _ops.trace(self, offset, axis1, axis2)

    def nonzero(self):
        return _ops.nonzero(self)

    def copy(self):
        """The array itself: it is immutable, so a copy could never differ."""
        return self

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __getitem__(self, idx):
        return _ops.getitem(self, idx)

    # -- operators ------------------------------------------------------------------------
    def __neg__(self): return _ops.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)
    def __invert__(self): return _ops.invert(self)
    def __add__(self, o): return _ops.add(self, o)
    def __radd__(self, o): return _ops.add(o, self)
    def __sub__(self, o): return _ops.subtract(self, o)
    def __rsub__(self, o): return _ops.subtract(o, self)
    def __mul__(self, o): return _ops.multiply(self, o)
    def __rmul__(self, o): return _ops.multiply(o, self)
    def __truediv__(self, o): return _ops.divide(self, o)
    def __rtruediv__(self, o): return _ops.divide(o, self)
    def __floordiv__(self, o): return _ops.floor_divide(self, o)
    def __rfloordiv__(self, o): return _ops.floor_divide(o, self)
    def __mod__(self, o): return _ops.remainder(self, o)
    def __rmod__(self, o): return _ops.remainder(o, self)
    def __pow__(self, o): return _ops.power(self, o)
    def __rpow__(self, o): return _ops.power(o, self)
    def __matmul__(self, o): return _ops.matmul(self, o)
    def __rmatmul__(self, o): return _ops.matmul(o, self)
    def __lt__(self, o): return _ops.less(self, o)
    def __le__(self, o): return _ops.less_equal(self, o)
    def __gt__(self, o): return _ops.greater(self, o)
    def __ge__(self, o): return _ops.greater_equal(self, o)
    def __eq__(self, o): return _ops.equal(self, o)  # noqa: E704
    def __ne__(self, o): return _ops.not_equal(self, o)
    def __and__(self, o): return _ops.bitwise_and(self, o)
    def __rand__(self, o): return _ops.bitwise_and(o, self)
    def __or__(self, o): return _ops.bitwise_or(self, o)
    def __ror__(self, o): return _ops.bitwise_or(o, self)
    def __xor__(self, o): return _ops.bitwise_xor(self, o)
    def __rxor__(self, o): return _ops.bitwise_xor(o, self)
    def __lshift__(self, o): return _ops.bitwise_left_shift(self, o)
    def __rlshift__(self, o): return _ops.bitwise_left_shift(o, self)
    def __rshift__(self, o): return _ops.bitwise_right_shift(self, o)
    def __rrshift__(self, o): return _ops.bitwise_right_shift(o, self)

    # -- the Array API standard's array object -----------------------------------------------
    def __array_namespace__(self, *, api_version=None):
        """funconv itself (the standard's namespace lookup). Earlier versions of the standard
        are served too (each is a subset of the next, as NumPy serves them); a later or
        unknown one raises ValueError."""
        import sys

        fc = sys.modules["funconv"]
        if api_version is not None and api_version not in _API_VERSIONS:
            raise ValueError(f"__array_namespace__: funconv implements Array API "
                             f"{fc.__array_api_version__} (and the earlier {_API_VERSIONS[:-1]}), "
                             f"not {api_version!r}; pass None")
        return fc

    @property
    def device(self) -> str:
        """Where the data lives: always "cpu" (eager values are NumPy arrays)."""
        return "cpu"

    def to_device(self, device, /, *, stream=None) -> "Array":
        if device != "cpu":
            raise ValueError(f"to_device: funconv arrays live on 'cpu' only, got {device!r}")
        return self

    @property
    def mT(self) -> "Array":
        """The transpose of the last two axes (a stack of matrices)."""
        return _ops.matrix_transpose(self)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        # exported through a read-only NumPy view of the eager value (NumPy refuses to export
        # a read-only buffer without copy=True, so that is asked for: the Array stays immutable)
        v = self._require_value("__dlpack__")
        return v.copy().__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU, device 0


class _IndexUpdateHelper:
    __slots__ = ("array",)

    def __init__(self, array: Array):
        self.array = array

    def __getitem__(self, idx) -> "_IndexUpdateRef":
        return _IndexUpdateRef(self.array, idx)


class _IndexUpdateRef:
    """`x.at[idx]`: functional updates that return a new array."""

    __slots__ = ("array", "idx")

    def __init__(self, array: Array, idx):
        self.array = array
        self.idx = idx

    def get(self) -> Array:
        return _ops.getitem(self.array, self.idx)

    def set(self, values) -> Array:
        return _ops.index_update(self.array, self.idx, values, "set")

    def add(self, values) -> Array:
        return _ops.index_update(self.array, self.idx, values, "add")

    def multiply(self, values) -> Array:
        return _ops.index_update(self.array, self.idx, values, "multiply")

    def divide(self, values) -> Array:
        return _ops.index_update(self.array, self.idx, values, "divide")

    def min(self, values) -> Array:
        return _ops.index_update(self.array, self.idx, values, "min")

    def max(self, values) -> Array:
        return _ops.index_update(self.array, self.idx, values, "max")
