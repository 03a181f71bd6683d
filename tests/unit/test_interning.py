"""One interner for traces and passes: literals that differ only in the sign of zero, in
dtype, or that are NaN are never merged with the wrong value (issue 10)."""

import numpy as np
import pytest

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.ir import Interner


def _three_ways(f, *args):
    """f's value eagerly, under jit, and by evaluating its traced graph (the oracle)."""
    graph = fc.make_graph(f)(*args)
    return [np.asarray(f(*args)), np.asarray(fc.jit(f)(*args)), np.asarray(evaluate(graph, args)[0])]


def _bits(a):
    return np.asarray(a).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_signed_zero_literals_stay_apart(dtype):
    x = np.asarray(2.0, dtype)
    for v in _three_ways(fc.grad(lambda x: x * -0.0 + x * 0.0), x):
        assert _bits(v) == _bits(np.asarray(0.0, dtype))
    # the other order, and a sum that must be -0.0
    for v in _three_ways(lambda x: (x * 0.0) + (x * -0.0), x):
        assert _bits(v) == _bits(np.asarray(0.0, dtype))
    for v in _three_ways(lambda x: -0.0 * x + -0.0 * x, x):
        assert _bits(v) == _bits(np.asarray(-0.0, dtype))


def test_literals_of_different_dtypes_stay_apart():
    x = np.asarray([1.5, 2.5], np.float32)

    def f(x):
        i = fc.asarray(3, fc.int32) // 2        # int32 literals
        return x * 3.0 + (x > 1).astype(fc.float32) * i.astype(fc.float32)

    for v in _three_ways(f, x):
        np.testing.assert_array_equal(v, x * 3.0 + 1.0)
        assert v.dtype == np.float32


def test_nan_literals():
    x = np.asarray([1.0, -1.0], np.float32)
    for v in _three_ways(lambda x: fc.where(x > 0, x * np.nan, x * 0.0), x):
        assert np.isnan(v[0]) and v[1] == 0.0


def test_interner_keys():
    it = Interner()
    assert it.literal(0.0, np.float32) is not it.literal(-0.0, np.float32)
    assert it.literal(0.0, np.float32) is it.literal(0, np.float32)
    assert it.literal(1, np.int32) is not it.literal(1, np.float32)
    assert it.literal(np.nan, np.float64) is it.literal(float("nan"), np.float64)
