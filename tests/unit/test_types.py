import numpy as np
import pytest

import funconv as fc
from funconv.errors import DTypeError
from funconv.types import ArrayType, canonical_dtype, result_type

f32, f64, i32, i64, b, c64, c128 = (np.dtype(t) for t in
                                    ["float32", "float64", "int32", "int64", "bool", "complex64", "complex128"])


def test_short_form():
    assert ArrayType((16, 3, 32, 32), f32).short() == "f32[16,3,32,32]"
    assert ArrayType((), i64).short() == "i64[]"
    assert str(ArrayType((2,), c128)) == "c128[2]"


@pytest.mark.parametrize("ops,expected", [
    ((f32, 2.0), f32), ((f32, 2), f32), ((i32, 2.0), f32), ((i32, 2), i32), ((b, 1), i32),
    ((f32, f64), f64), ((i32, f32), f32), ((i64, f32), f32), ((i32, i64), i64), ((f32, 1j), c64),
    ((f64, 1j), c128), ((f32, c64), c64), ((f64, c64), c128), ((b, b), b), ((2.0,), f32), ((2,), i32),
    ((True,), b),
])
def test_promotion(ops, expected):
    assert result_type(*ops) == expected


def test_weak_scalars_keep_array_dtype():
    x = fc.ones((3,), fc.float32)
    assert (x * 2.0).dtype == np.float32
    assert (2 * x).dtype == np.float32
    assert (fc.ones((3,), fc.int32) * 2.5).dtype == np.float32
    assert (fc.ones((3,), fc.float64) + 1).dtype == np.float64


def test_defaults():
    assert fc.array([1.0]).dtype == np.float32
    assert fc.array([1]).dtype == np.int32
    assert fc.array(np.zeros(2)).dtype == np.float64  # NumPy arrays keep their dtype
    assert fc.array([1j]).dtype == np.complex64


def test_canonical_dtype_errors():
    assert canonical_dtype(np.uint8) == np.uint8  # every Array API dtype is carried as is
    with pytest.raises(DTypeError, match=r"float16 is not supported.*astype\(np.float32\)"):
        canonical_dtype(np.float16)  # never silently replaced by float32
    with pytest.raises(DTypeError, match="not a dtype"):
        canonical_dtype("bogus")
    with pytest.raises(DTypeError, match="not supported"):
        canonical_dtype(np.dtype("datetime64[s]"))


def test_big_python_ints_do_not_wrap():
    assert fc.array(2**40).dtype == np.int64 and int(fc.array(2**40)) == 2**40
    assert fc.array([1, 2**40]).dtype == np.int64
    assert fc.array([1, 2]).dtype == np.int32
