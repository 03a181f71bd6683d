"""Array types (shape + dtype), their short form `f32[3,4]`, and dtype promotion.

Promotion follows JAX: bool < int < float < complex by kind; ints mixed with
floats take the float; Python scalars are *weak* and adopt the dtype of the
array they meet (`f32 * 2.0` stays f32). Imports only funconv.errors.
"""

from __future__ import annotations

import attrs
import numpy as np

from funconv.errors import DTypeError

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
uint64 = np.dtype("uint64")

# The Array API standard's dtypes. Any other (float16, longdouble, ...) is rejected rather
# than replaced: a silent substitution changes results (uint8 wraps at 256, int32 does not).
SUPPORTED = (bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64,
             complex64, complex128)
_SHORT = {bool_: "bool", int8: "i8", int16: "i16", int32: "i32", int64: "i64", uint8: "u8",
          uint16: "u16", uint32: "u32", uint64: "u64", float32: "f32", float64: "f64",
          complex64: "c64", complex128: "c128"}
# what to suggest for a dtype funconv does not carry
_NEAREST = {np.dtype("float16"): "float32", np.dtype("longdouble"): "float64",
            np.dtype("clongdouble"): "complex128"}

DEFAULT_FLOAT = float32
DEFAULT_INT = int32
DEFAULT_COMPLEX = complex64


def canonical_dtype(dtype) -> np.dtype:
    """The supported dtype for `dtype` (a NumPy dtype, a type, or a name)."""
    if dtype is float:
        return DEFAULT_FLOAT
    if dtype is int:
        return DEFAULT_INT
    if dtype is complex:
        return DEFAULT_COMPLEX
    if dtype is bool:
        return bool_
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{dtype!r} is not a dtype; use one of "
                         f"{', '.join(str(s) for s in SUPPORTED)}") from None
    if d in _SHORT:
        return d
    if d in _NEAREST:
        raise DTypeError(f"dtype {d} is not supported by funconv (it is not an Array API "
                         f"dtype); convert the data first, e.g. x.astype(np.{_NEAREST[d]})")
    raise DTypeError(f"dtype {d} is not supported by funconv; use one of "
                     f"{', '.join(str(s) for s in SUPPORTED)}")


def short_dtype(dtype: np.dtype) -> str:
    return _SHORT.get(dtype, str(dtype))


@attrs.frozen
class ArrayType:
    """The static type of an array: its shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def short(self) -> str:
        return f"{short_dtype(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __str__(self) -> str:
        return self.short()


# --- dtype kinds and promotion -------------------------------------------------

_KIND_RANK = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def kind_rank(dtype: np.dtype) -> int:
    return _KIND_RANK[dtype.kind]


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_complex(dtype) -> bool:
    return np.dtype(dtype).kind == "c"


def is_inexact(dtype) -> bool:
    return np.dtype(dtype).kind in "fc"


def is_integer(dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def real_dtype(dtype) -> np.dtype:
    """float32 for complex64, float64 for complex128; the dtype itself otherwise."""
    d = np.dtype(dtype)
    return {complex64: float32, complex128: float64}.get(d, d)


def complex_dtype(dtype) -> np.dtype:
    d = np.dtype(dtype)
    return complex128 if d in (float64, complex128) else complex64


def _join_strong(a: np.dtype, b: np.dtype) -> np.dtype:
    if a == b:
        return a
    ka, kb = kind_rank(a), kind_rank(b)
    if ka != kb:
        lo, hi = (a, b) if ka < kb else (b, a)
        if kind_rank(hi) == 3 and kind_rank(lo) == 2:  # float with complex: keep precision
            return complex128 if (hi == complex128 or lo == float64) else complex64
        return hi  # bool/int give way to the higher kind (i32 + f32 -> f32, as JAX)
    if a.kind != b.kind and a.kind in "iu" and b.kind in "iu":
        return _join_mixed_int(a, b)
    return a if a.itemsize >= b.itemsize else b


def _join_mixed_int(a: np.dtype, b: np.dtype) -> np.dtype:
    """A signed and an unsigned int, as JAX's lattice (and the Array API standard): the
    smallest signed type holding both (u8 + i8 -> i16); uint64 with a signed type has no
    integer joint and becomes float64, as in JAX."""
    u, s = (a, b) if a.kind == "u" else (b, a)
    if s.itemsize > u.itemsize:
        return s
    if u.itemsize < 8:
        return np.dtype(f"int{16 * u.itemsize}")
    return float64


def _weak_kind(x) -> int:
    if isinstance(x, (bool, np.bool_)):
        return 0
    if isinstance(x, int):
        return 1
    if isinstance(x, float):
        return 2
    return 3


_WEAK_DEFAULT = {0: bool_, 1: DEFAULT_INT, 2: DEFAULT_FLOAT, 3: DEFAULT_COMPLEX}


def result_type(*operands) -> np.dtype:
    """Promoted dtype of operands, each a dtype (strong) or a Python scalar (weak)."""
    strong = None
    weak = -1
    for op in operands:
        if isinstance(op, np.dtype):
            strong = op if strong is None else _join_strong(strong, op)
        else:
            weak = max(weak, _weak_kind(op))
    if strong is None:
        return _WEAK_DEFAULT[max(weak, 0)]
    if weak > kind_rank(strong):
        if weak == 3:
            return complex_dtype(strong)
        return _WEAK_DEFAULT[weak] if kind_rank(strong) < 2 else strong
    return strong
