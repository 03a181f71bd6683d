"""Constructors against NumPy, with funconv's (JAX's) default dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError


def same(got, want, dtype):
    got = np.asarray(got)
    assert got.dtype == dtype, got.dtype
    np.testing.assert_array_equal(got, want)


def test_filled_arrays():
    same(fc.zeros((2, 3)), np.zeros((2, 3)), np.float32)
    same(fc.zeros(3, None), np.zeros(3), np.float32)
    same(fc.ones(2, fc.int32), np.ones(2), np.int32)
    same(fc.full((2,), 7), [7, 7], np.int32)
    same(fc.full((2,), 7.5), [7.5, 7.5], np.float32)
    same(fc.full((2, 2), fc.array([1.0, 2.0])), [[1, 2], [1, 2]], np.float32)
    same(fc.full((2,), True), [True, True], np.bool_)
    same(fc.zeros_like(np.ones((2, 2), np.int64)), np.zeros((2, 2)), np.int64)
    same(fc.ones_like(fc.zeros(3), dtype=np.float64), np.ones(3), np.float64)
    same(fc.full_like(np.ones(2, np.float32), 3), [3, 3], np.float32)
    same(fc.empty((1, 2)), np.zeros((1, 2)), np.float32)
    same(fc.empty_like(np.ones(2, np.int32)), [0, 0], np.int32)


def test_ranges_and_matrices():
    same(fc.arange(5), np.arange(5), np.int32)
    same(fc.arange(1, 7, 2), np.arange(1, 7, 2), np.int32)
    same(fc.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25), np.float32)
    same(fc.arange(3, dtype=np.float64), np.arange(3.0), np.float64)
    same(fc.linspace(0, 1, 5), np.linspace(0, 1, 5), np.float32)
    same(fc.linspace(0, 1, 4, endpoint=False), np.linspace(0, 1, 4, endpoint=False), np.float32)
    same(fc.eye(3), np.eye(3), np.float32)
    same(fc.eye(2, 3, k=1, dtype=fc.int32), np.eye(2, 3, k=1), np.int32)
    same(fc.identity(2), np.identity(2), np.float32)
    same(fc.tri(3, 4, -1), np.tri(3, 4, -1), np.float32)


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_meshgrid(indexing, n):
    xs = [np.arange(k + 2, dtype=np.float32) for k in range(n)]
    for g, w in zip(fc.meshgrid(*xs, indexing=indexing), np.meshgrid(*xs, indexing=indexing)):
        same(g, w, np.float32)


def test_errors():
    with pytest.raises(ArgumentError, match="negative"):
        fc.zeros((2, -1))
    with pytest.raises(ArgumentError, match="shape"):
        fc.ones("ab")
    with pytest.raises(TypeError, match="dtype"):
        fc.zeros(2, "nonsense")
    with pytest.raises(ArgumentError, match="indexing"):
        fc.meshgrid(np.arange(2), indexing="yx")


def test_constructors_under_a_trace_are_constants_or_literals():
    g = fc.make_graph(lambda x: x + fc.ones(3) + fc.arange(3))(fc.zeros(3))
    assert all(n.prim.name in ("add", "broadcast_to", "convert_element_type") for n in g.applies())


def test_array_of_arrays_is_stacked_and_stays_differentiable():
    same(fc.array([fc.ones(2), [0.0, 0.0]]), [[1, 1], [0, 0]], np.float32)
    same(fc.array([fc.ones(2), np.zeros(2)]), [[1, 1], [0, 0]], np.float64)  # np.zeros is float64
    same(fc.asarray([[fc.array(1), 2], [3, 4]]), [[1, 2], [3, 4]], np.int32)
    same(fc.array([fc.ones(2), fc.zeros(2)], dtype=np.float64), [[1, 1], [0, 0]], np.float64)
    g = fc.grad(lambda x: (fc.array([x[0], x[1] * 2, 5.0]) ** 2).sum())(fc.array([1.0, 3.0]))
    same(g, [2.0, 24.0], np.float32)
    same(fc.jit(lambda x: fc.asarray([x, 2 * x, 3.0]))(fc.array(1.5)), [1.5, 3.0, 3.0], np.float32)
