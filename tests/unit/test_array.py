import numpy as np
import pytest

import funconv as fc
from funconv.errors import ImmutableError


def test_attributes_and_repr():
    x = fc.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == np.float32
    assert x.T.shape == (3, 2)
    assert len(x) == 2
    assert "Array(" in repr(x) and "float32" in repr(x)
    np.testing.assert_array_equal(np.asarray(x), [[1, 2, 3], [4, 5, 6]])


def test_immutable():
    x = fc.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"\.at\["):
        x[0] = 3.0
    with pytest.raises(ImmutableError):
        x[0] = 3.0
    v = np.asarray(x)
    assert not v.flags.writeable


def test_input_array_is_copied():
    a = np.ones(3, np.float32)
    x = fc.asarray(a)
    a[0] = 5
    assert float(x.sum()) == 3.0


def test_ops_do_not_mutate_inputs():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = fc.asarray(a)
    before = np.asarray(x).copy()
    _ = x + 1, x * x, fc.exp(x), x.T, x.reshape(3, 2), x.sum(0), x @ x.T
    np.testing.assert_array_equal(np.asarray(x), before)


def test_numpy_interop_defers_to_array():
    x = fc.array([1.0, 2.0])
    y = np.array([1.0, 1.0], np.float32) + x
    assert isinstance(y, fc.Array)
    np.testing.assert_allclose(np.asarray(y), [2.0, 3.0])


def test_scalar_conversions():
    x = fc.array(2.5)
    assert float(x) == 2.5 and x.item() == 2.5
    assert bool(fc.array(1.0) > 0)
    assert int(fc.array(3)) == 3


def test_unhashable():
    with pytest.raises(TypeError, match="unhashable"):
        hash(fc.array(1.0))
