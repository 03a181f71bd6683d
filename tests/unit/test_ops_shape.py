"""Shape wrappers against NumPy: pad, concatenate, stack, split, moveaxis, swapaxes, flip,
tile, repeat, roll, broadcast_arrays, reshape, transpose, expand_dims, squeeze; gradients."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, AxisError, ShapeError
from funconv.testing import check_grads

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def same(got, want):
    got = np.asarray(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("pad_width", [1, (1, 2), ((1, 2),), ((0, 1), (2, 0), (1, 1)), [[1, 1]] * 3, 0,
                                       ((0, 0), (0, 0), (3, 0))])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_pad_matches_numpy(pad_width, mode):
    kw = {"constant_values": 2.5} if mode == "constant" else {}
    same(fc.pad(X, pad_width, mode=mode, **kw), np.pad(X, pad_width, mode=mode, **kw))


def test_pad_dtypes_traced_value_and_gradients():
    same(fc.pad(np.arange(3, dtype=np.int32), 2, constant_values=-1), np.pad(np.arange(3), 2, constant_values=-1))
    assert fc.pad(np.arange(3, dtype=np.int32), 1).dtype == np.int32
    x = np.random.default_rng(0).standard_normal((2, 3))
    check_grads(lambda a, v: fc.pad(a, ((1, 0), (2, 1)), constant_values=v) ** 2, (x, np.float64(0.5)), order=2)
    check_grads(lambda a: fc.pad(a, 2, mode="reflect"), (x,))
    with pytest.raises(ArgumentError, match="negative"):
        fc.pad(X, -1)
    with pytest.raises(ArgumentError, match="pad_width"):
        fc.pad(X, ((1, 2), (1, 2)) * 2)
    with pytest.raises(NotImplementedError, match="mode"):
        fc.pad(X, 1, mode="median")


@pytest.mark.parametrize("axis", [0, 1, 2, -1, None])
def test_concatenate_stack(axis):
    ys = [X, X * 2, X + 1]
    same(fc.concatenate(ys, axis=axis), np.concatenate(ys, axis=axis))
    if axis is not None:
        same(fc.stack(ys, axis=axis), np.stack(ys, axis=axis))
    same(fc.concatenate([X[:, :1], X], axis=1), np.concatenate([X[:, :1], X], axis=1))


def test_concatenate_promotes_and_checks():
    out = fc.concatenate([np.array([1, 2], np.int32), np.array([0.5], np.float32)])
    assert out.dtype == np.float32
    same(out, [1, 2, 0.5])
    same(fc.vstack([np.ones(3), np.zeros(3)]), np.vstack([np.ones(3), np.zeros(3)]))
    same(fc.hstack([np.ones(3), np.zeros(2)]), np.hstack([np.ones(3), np.zeros(2)]))
    with pytest.raises(ShapeError, match=r"f32\[2,3,4\].*f32\[2,2,4\]|axis"):
        fc.concatenate([X, X[:, :2]], axis=0)
    with pytest.raises(ShapeError, match="same shape"):
        fc.stack([X, X[:1]])
    with pytest.raises(ShapeError, match="zero-dimensional"):
        fc.concatenate([fc.array(1.0), fc.array(2.0)])
    with pytest.raises(AxisError):
        fc.concatenate([X, X], axis=3)
    x = np.random.default_rng(1).standard_normal((2, 3))
    check_grads(lambda a, b: fc.concatenate([a, b * b, a], axis=1), (x, x[:, :1]), order=2)
    check_grads(lambda a: fc.stack([a, 2 * a], axis=-1), (x,))


@pytest.mark.parametrize("sections, axis", [(2, 0), (3, 1), ([1, 3], 2), ([0, 5], -1), ([2, 1], 1), (1, 0)])
def test_split_matches_numpy(sections, axis):
    got = fc.split(X, sections, axis=axis)
    want = np.split(X, sections, axis=axis)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        same(g, w)


def test_array_split_and_split_errors():
    for g, w in zip(fc.array_split(np.arange(7.0), 3), np.array_split(np.arange(7.0), 3)):
        same(g, w)
    with pytest.raises(ShapeError, match="equal"):
        fc.split(X, 2, axis=1)
    x = np.random.default_rng(2).standard_normal((4, 3))
    check_grads(lambda a: fc.split(a, [1, 3])[1] * fc.split(a, 2)[0][:1], (x,), order=2)


@pytest.mark.parametrize("src, dst", [(0, -1), (-1, 0), ((0, 1), (2, 0)), (1, 1), ([0, 2], [1, 0])])
def test_moveaxis(src, dst):
    same(fc.moveaxis(X, src, dst), np.moveaxis(X, src, dst))


def test_swapaxes_flip_transpose_reshape():
    same(fc.swapaxes(X, 0, -1), np.swapaxes(X, 0, -1))
    for axis in [None, 0, -1, (0, 2), ()]:
        same(fc.flip(X, axis), np.flip(X, axis))
    same(fc.fliplr(X), np.fliplr(X))
    same(fc.flipud(X), np.flipud(X))
    same(fc.transpose(X), X.T)
    same(fc.transpose(X, (1, 0, 2)), X.transpose(1, 0, 2))
    same(fc.asarray(X).transpose(2, 0, 1), X.transpose(2, 0, 1))
    same(fc.reshape(X, (4, -1)), X.reshape(4, -1))
    same(fc.asarray(X).reshape(-1), X.reshape(-1))
    same(fc.expand_dims(X, (0, -1)), np.expand_dims(X, (0, -1)))
    same(fc.squeeze(X[:1, :, :1]), np.squeeze(X[:1, :, :1]))
    same(fc.squeeze(X[:1, :, :1], axis=-1), np.squeeze(X[:1, :, :1], axis=-1))
    with pytest.raises(ShapeError, match="size"):
        fc.squeeze(X, 0)
    with pytest.raises(ShapeError, match="reshape"):
        fc.reshape(X, (5, -1))
    with pytest.raises(AxisError):
        fc.moveaxis(X, 3, 0)
    with pytest.raises(AxisError):
        fc.swapaxes(X, 0, -4)


@pytest.mark.parametrize("reps", [2, (2, 1), (1, 2, 3), (2, 1, 1, 2), 0])
def test_tile(reps):
    same(fc.tile(X, reps), np.tile(X, reps))


@pytest.mark.parametrize("repeats, axis", [(2, None), (2, 1), ([1, 0, 2], 1), (3, -1), (0, 0)])
def test_repeat(repeats, axis):
    same(fc.repeat(X, repeats, axis=axis), np.repeat(X, repeats, axis=axis))


@pytest.mark.parametrize("shift, axis", [(1, None), (-2, 1), (5, -1), ((1, 2), (0, 2)), (0, 0)])
def test_roll(shift, axis):
    same(fc.roll(X, shift, axis=axis), np.roll(X, shift, axis=axis))


def test_broadcast_arrays_and_atleast():
    a, b = fc.broadcast_arrays(np.ones((3, 1), np.int32), np.zeros(4, np.float32))
    assert a.shape == b.shape == (3, 4) and a.dtype == np.int32 and b.dtype == np.float32
    with pytest.raises(ShapeError, match="broadcast"):
        fc.broadcast_arrays(np.ones(3), np.ones(4))
    assert fc.atleast_1d(1.0).shape == (1,)
    assert fc.atleast_2d(np.ones(3)).shape == (1, 3)


def test_shape_gradients():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    check_grads(lambda a: fc.moveaxis(a, 0, -1) * fc.swapaxes(a, 0, 2).transpose(2, 1, 0)[..., :1, :, :].sum(),
                (x,), order=2)
    check_grads(lambda a: fc.tile(a, (2, 1, 3)), (x,))
    check_grads(lambda a: fc.repeat(a, [1, 0, 2], axis=1), (x,))
    check_grads(lambda a: fc.roll(a, 2, axis=-1) * a, (x,), order=2)
    check_grads(lambda a: fc.flip(a, (0, 2))[:, ::-1], (x,))


def test_shape_ops_do_not_mutate():
    base = X.copy()
    a = fc.asarray(base)
    _ = (fc.pad(a, 1), fc.concatenate([a, a]), fc.split(a, 2), fc.flip(a), fc.tile(a, 2), fc.repeat(a, 2),
         fc.roll(a, 1), fc.moveaxis(a, 0, 1))
    np.testing.assert_array_equal(base, X)


@pytest.mark.parametrize("n, axis", [(1, -1), (2, 0), (3, 2), (0, 1), (4, 1)])
def test_diff(n, axis):
    same(fc.diff(X, n, axis), np.diff(X, n, axis))
    b = X % 3 == 0
    same(fc.diff(b, 1, axis), np.diff(b, 1, axis))
    check_grads(lambda a: fc.diff(a, 2, -1), (X.astype(np.float64),))


def test_broadcast_shapes_has_numpys_signature():
    assert fc.broadcast_shapes((2, 1), (3,)) == np.broadcast_shapes((2, 1), (3,))
    assert fc.broadcast_shapes(3, (2, 1), ()) == (2, 3)
    with pytest.raises(ShapeError, match="broadcast"):
        fc.broadcast_shapes((2,), (3,))
