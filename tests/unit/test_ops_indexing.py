"""Indexing against NumPy: x[idx] (basic and advanced), x.at[idx].set/add/multiply,
take, take_along_axis; traced index arrays under jit; gradients; immutability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import funconv as fc
from funconv.errors import ConcretizationError, ImmutableError, IndexingError
from funconv.testing import check_grads

X = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)

INDICES = [
    0, -1, 1, (1, 2), (-1, -2, 3), slice(None), slice(1, None), slice(None, None, -1),
    (slice(None), slice(None, None, 2)), (Ellipsis, 1), (0, Ellipsis, -1), (None,), (None, 0, None),
    (Ellipsis, None), (slice(None), None, slice(1, 3), None), (slice(5, 1, -2),), (slice(-1, -10, -1),),
    (0, slice(3, 0, -1), slice(None), slice(None, None, -3)), (slice(10, 20),), (),
    ([0, 1],), ([1, 0, 1],), (slice(None), [2, 0]), (slice(None), [[0, 1], [2, 2]]),
    ([0, 1], [1, 2]), ([0, 1], slice(None), [1, 2]), (0, slice(None), [1, 2]),
    (slice(None), [0, 2], [1, 3]), (slice(None), [0, 2], slice(None), [1, 3]),
    (Ellipsis, [0, -1]), ([1], None, [0, 2]), (None, [0, 1], [[0], [2]]),
    (np.array([-1, 0]), 2), (slice(None), 1, [0, 3], slice(None)), (1, [0, 2], 2, [4, 0]),
    ([[0]], [[1], [2]], slice(None, None, -1)), (np.array([], dtype=np.int64),),
    (np.array(1), np.array([0, 1])), (slice(None), np.array(2)),
]


@pytest.mark.parametrize("idx", INDICES, ids=repr)
def test_getitem_matches_numpy(idx):
    got = fc.asarray(X)[idx]
    want = X[idx]
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("idx", [
    (X[:, :, 0, 0] > 40,), (0, 0, X[0, 0] % 3 == 0), (slice(None), X[0, :, :, 0] > 7),
    (np.isin(X[..., 0], [5, 100]), [1, 2]), (np.zeros((2, 3, 4, 5), bool),), ([True, False],),
], ids=lambda i: "mask")
def test_bool_masks_match_numpy(idx):
    np.testing.assert_array_equal(np.asarray(fc.asarray(X)[idx]), X[idx])


@given(st.data())
def test_random_basic_and_advanced_indices(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    x = np.arange(int(np.prod(shape))).reshape(shape).astype(np.int32)
    idx = []
    for n in shape[:data.draw(st.integers(0, len(shape)))]:
        kind = data.draw(st.sampled_from(["int", "slice", "array", "none"]))
        if kind == "int":
            idx.append(data.draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            idx.append(slice(data.draw(st.none() | st.integers(-6, 6)), data.draw(st.none() | st.integers(-6, 6)),
                             data.draw(st.none() | st.sampled_from([-3, -2, -1, 1, 2, 3]))))
        elif kind == "array":
            idx.append(np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3))))
        else:
            idx.append(None)
            idx.append(slice(None))
    idx = tuple(idx)
    try:
        want = x[idx]
    except IndexError:  # arrays of different lengths: NumPy cannot broadcast them either
        with pytest.raises(IndexingError):
            fc.asarray(x)[idx]
        return
    got = fc.asarray(x)[idx]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)
    # the same index with its arrays traced (abstract under jit): same placement and values
    slots = [i for i, it in enumerate(idx) if isinstance(it, np.ndarray)]
    if slots:
        def f(a, *arrays):
            full = list(idx)
            for i, arr in zip(slots, arrays):
                full[i] = arr
            return a[tuple(full)]

        traced = fc.jit(f)(x, *[idx[i].astype(np.int32) for i in slots])
        np.testing.assert_array_equal(np.asarray(traced), want)


def test_traced_integer_arrays_under_jit():
    """The cross-entropy pattern: logits[arange(n), labels] with traced labels."""
    logits = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    labels = np.array([0, 4, 2, -1], np.int32)
    f = fc.jit(lambda l, y: l[fc.arange(l.shape[0]), y])
    np.testing.assert_array_equal(np.asarray(f(logits, labels)), logits[np.arange(4), labels])
    g = fc.jit(fc.grad(lambda l, y: l[fc.arange(4), y].sum()))(logits, labels)
    want = np.zeros_like(logits)
    want[np.arange(4), labels] = 1
    np.testing.assert_array_equal(np.asarray(g), want)
    # a traced 0-d index behaves like an int; traced index arrays anywhere in the tuple
    np.testing.assert_array_equal(np.asarray(fc.jit(lambda x, i: x[:, i])(X, np.int32(2))), X[:, 2])
    np.testing.assert_array_equal(
        np.asarray(fc.jit(lambda x, i: x[0, :, i, 1:])(X, np.array([[3, 0]], np.int32))),
        X[0, :, [[3, 0]], 1:])


def test_traced_bool_mask_raises_clearly():
    with pytest.raises(IndexingError, match="bool mask"):
        fc.jit(lambda x, m: x[m])(np.arange(5.0), np.arange(5) > 2)


def test_graph_of_traced_index_is_one_gather():
    g = fc.make_graph(lambda l, y: l[fc.arange(3), y])(fc.ones((3, 4)), fc.array([0, 2, 1]))
    assert [n.prim.name for n in g.applies()].count("gather") == 1


def test_getitem_errors():
    x = fc.asarray(X)
    with pytest.raises(IndexingError, match="out of bounds"):
        x[2]
    with pytest.raises(IndexingError, match="out of bounds"):
        x[0, -4]
    with pytest.raises(IndexingError, match="out of bounds"):
        x[:, [0, 3]]
    with pytest.raises(IndexingError, match="too many indices"):
        x[0, 0, 0, 0, 0]
    with pytest.raises(IndexingError, match="integers"):
        x[np.array([0.5, 1.0])]
    with pytest.raises(IndexingError, match="integers"):
        x[fc.array([0.0])]
    with pytest.raises(IndexingError, match="unsupported index"):
        x["a"]
    with pytest.raises(IndexingError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(IndexingError, match="broadcast"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError):  # the built-in still catches it
        x[5]


def test_getitem_gradients():
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    check_grads(lambda a: a[1:, ::-2, [0, 3, 3]] ** 2, (x,), order=2)
    check_grads(lambda a: a[[0, 0, 2], :, [1, 1, 4]], (x,))
    check_grads(lambda a: a[None, -1, ..., 2], (x,))


# --- x.at[idx] ---------------------------------------------------------------------------------


AT_CASES = [
    (1,), (slice(None), 2), ([0, 2, 0],), (slice(None), [1, 1, 3]), ([0, 1], [3, 3]), (Ellipsis, -1),
    ([[0, 0], [1, 1]], slice(1, 3)), (slice(None, None, -2), 0),
]


@pytest.mark.parametrize("idx", AT_CASES, ids=repr)
def test_at_add_accumulates_duplicates_like_np_add_at(idx):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    v = np.random.default_rng(3).standard_normal(x[idx].shape).astype(np.float32)
    want = x.copy()
    np.add.at(want, idx, v)
    np.testing.assert_allclose(np.asarray(fc.asarray(x).at[idx].add(v)), want, rtol=1e-6)


@pytest.mark.parametrize("idx", AT_CASES, ids=repr)
def test_at_set_last_write_wins_like_numpy(idx):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    v = np.arange(x[idx].size, dtype=np.float32).reshape(x[idx].shape) + 10
    want = x.copy()
    want[idx] = v
    np.testing.assert_array_equal(np.asarray(fc.asarray(x).at[idx].set(v)), want)


@pytest.mark.parametrize("idx", AT_CASES, ids=repr)
def test_at_multiply_applies_every_duplicate(idx):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    v = np.random.default_rng(4).uniform(0.5, 2, x[idx].shape).astype(np.float32)
    want = x.copy()
    np.multiply.at(want, idx, v)
    np.testing.assert_allclose(np.asarray(fc.asarray(x).at[idx].multiply(v)), want, rtol=1e-6)


def test_at_broadcasts_and_casts_values():
    x = fc.zeros((3, 4), fc.int32)
    np.testing.assert_array_equal(np.asarray(x.at[:, 1].set(7)), np.where(np.arange(4) == 1, 7, 0)[None].repeat(3, 0))
    y = x.at[1].add(fc.array([1.7, 2.2, 3.0, 4.9]))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(y)[1], [1, 2, 3, 4])
    assert np.asarray(x).sum() == 0  # x is unchanged
    np.testing.assert_array_equal(np.asarray(fc.array([True, False]).at[1].set(True)), [True, True])
    assert fc.asarray(X).at[0, 1].get().shape == (4, 5)


def test_at_under_jit_with_traced_indices():
    f = fc.jit(lambda x, i, v: x.at[i].add(v))
    np.testing.assert_array_equal(np.asarray(f(np.zeros(5, np.float32), np.array([1, 1, 3], np.int32),
                                              np.ones(3, np.float32))), [0, 2, 0, 1, 0])
    g = fc.jit(lambda x, i: x.at[i].set(5.0))
    np.testing.assert_array_equal(np.asarray(g(np.zeros(4, np.float32), np.array([0, -1], np.int32))),
                                  [5, 0, 0, 5])
    h = fc.jit(lambda x, i: x.at[i].multiply(3.0))
    np.testing.assert_array_equal(np.asarray(h(np.ones(4, np.float32), np.array([2], np.int32))),
                                  [1, 1, 3, 1])


def test_at_gradients():
    x = np.random.default_rng(5).standard_normal((4, 3))
    v = np.random.default_rng(6).standard_normal((3, 3))
    idx = np.array([0, 2, 0])
    check_grads(lambda a, b: a.at[idx].add(b) ** 2, (x, v), order=2)
    check_grads(lambda a, b: a.at[idx].set(b) ** 2, (x, v), order=2)
    check_grads(lambda a, b: a.at[idx].multiply(b), (x, v), order=2)
    # set: an overwritten duplicate gets no gradient, the winner gets it all
    g = fc.grad(lambda b: fc.zeros(4).at[np.array([1, 1])].set(b).sum())(fc.array([3.0, 4.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 1.0])


def test_at_errors():
    x = fc.zeros((3, 4))
    with pytest.raises(ValueError, match="broadcast"):
        x.at[0].set(fc.ones(3))
    with pytest.raises(IndexingError):
        x.at[3].set(1.0)
    with pytest.raises(TypeError):
        fc.array([True]).at[0].multiply(True)


# --- take, take_along_axis -------------------------------------------------------------------


@pytest.mark.parametrize("indices, axis", [([0, 2], None), (np.array([[1, -1]]), 2), (3, 3), ([1, 1, 0], 0),
                                           (np.array([], np.int32), 1), (-1, -1)])
def test_take_matches_numpy(indices, axis):
    np.testing.assert_array_equal(np.asarray(fc.take(X, indices, axis=axis)), np.take(X, indices, axis=axis))


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_take_along_axis_matches_numpy(axis):
    a = np.random.default_rng(7).standard_normal((3, 4, 5)).astype(np.float32)
    idx = np.argsort(a, axis=axis)
    if axis is not None:
        idx = np.take(idx, [0, 2], axis=axis)
    np.testing.assert_array_equal(np.asarray(fc.take_along_axis(a, idx, axis)),
                                  np.take_along_axis(a, idx, axis))
    # broadcasting index dims of size 1, as NumPy allows
    b = np.zeros((3, 1, 5), np.int64)
    np.testing.assert_array_equal(np.asarray(fc.take_along_axis(a, b, 1)), np.take_along_axis(a, b, 1))
    check_grads(lambda t: fc.take_along_axis(t, np.argsort(a, axis=-1)[..., :2], -1),
                (a.astype(np.float64),))


def test_take_errors():
    with pytest.raises(IndexingError):
        fc.take(X, [0.5])
    with pytest.raises(IndexingError):
        fc.take_along_axis(X, np.zeros((2, 3), np.int32), 0)
    with pytest.raises(IndexingError, match="out of bounds"):
        fc.take(X, [7], axis=1)


def test_iota():
    np.testing.assert_array_equal(np.asarray(fc.iota(np.int32, 4)), np.arange(4))
    np.testing.assert_array_equal(np.asarray(fc.broadcasted_iota(np.float32, (2, 3), 1)),
                                  np.broadcast_to(np.arange(3.0), (2, 3)))


# --- immutability --------------------------------------------------------------------------------


def test_setitem_raises_and_points_to_at():
    x = fc.zeros(3)
    with pytest.raises(TypeError, match=r"\.at"):
        x[0] = 1
    with pytest.raises(ImmutableError):
        x[1:] = fc.ones(2)


def test_indexing_does_not_mutate_inputs():
    base = np.arange(12.0).reshape(3, 4)
    keep = base.copy()
    idx = np.array([0, 2, 0])
    a = fc.asarray(base)
    _ = a[idx], a[::-1, 1], a.at[idx].add(5.0), a.at[idx].set(1.0), a.at[1:, idx % 3].multiply(2.0)
    _ = fc.take(a, idx), fc.take_along_axis(a, np.zeros((3, 1), int), 1)
    np.testing.assert_array_equal(base, keep)
    np.testing.assert_array_equal(np.asarray(a), keep)
    np.testing.assert_array_equal(idx, [0, 2, 0])


def test_concrete_values_required_for_masks_under_jit_is_not_a_concretization_leak():
    # a bool mask from a traced comparison is refused with IndexingError (not a bare failure)
    with pytest.raises((IndexingError, ConcretizationError)):
        fc.jit(lambda x: x[x > 0])(np.ones(3, np.float32))


@pytest.mark.parametrize("mode", ["wrap", "clip"])
def test_take_modes(mode):
    x = np.arange(10.0).reshape(2, 5)
    idx = np.array([7, -8, 2])
    np.testing.assert_array_equal(np.asarray(fc.take(x, idx, axis=1, mode=mode)), np.take(x, idx, axis=1, mode=mode))
    f = fc.jit(lambda a, i: fc.take(a, i, axis=1, mode=mode))
    np.testing.assert_array_equal(np.asarray(f(x, idx.astype(np.int32))), np.take(x, idx, axis=1, mode=mode))


# --- nonzero, sorting ----------------------------------------------------------------------------


def test_nonzero_where_argwhere():
    m = X[0, :, :, 0] % 3 == 0
    for g, w in zip(fc.nonzero(m), np.nonzero(m)):
        np.testing.assert_array_equal(np.asarray(g), w)
    for g, w in zip(fc.where(m), np.where(m)):
        np.testing.assert_array_equal(np.asarray(g), w)
    np.testing.assert_array_equal(np.asarray(fc.argwhere(m)), np.argwhere(m))
    with pytest.raises(ConcretizationError, match="nonzero"):
        fc.jit(lambda a: fc.nonzero(a > 0)[0])(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="both x and y"):
        fc.where(m, 1.0)


@pytest.mark.parametrize("axis", [-1, 0, 1, None])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort_match_numpy_and_are_stable(axis, descending):
    x = np.random.default_rng(8).integers(0, 3, (4, 5)).astype(np.float32)  # many ties
    got = np.asarray(fc.argsort(x, axis=axis, descending=descending))
    if descending:
        # NumPy has no stable descending sort: reverse-stable = stable sort of -x
        want = np.argsort(-x, axis=axis, kind="stable")
    else:
        want = np.argsort(x, axis=axis, kind="stable")
    np.testing.assert_array_equal(got, want)
    want_sorted = np.sort(x, axis=axis)
    if descending:
        want_sorted = np.flip(want_sorted, axis=-1 if axis is None else axis)
    np.testing.assert_array_equal(np.asarray(fc.sort(x, axis=axis, descending=descending)), want_sorted)


def test_sort_gradient_and_jit():
    x = np.random.default_rng(9).standard_normal((3, 4))
    check_grads(lambda a: fc.sort(a, axis=1) * np.arange(4.0), (x,), order=2)
    np.testing.assert_array_equal(np.asarray(fc.jit(fc.sort)(x)), np.sort(x))


def test_array_methods_forward_to_ops():
    a = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]], np.float32)
    x = fc.asarray(a)
    np.testing.assert_array_equal(np.asarray(x.sort()), np.sort(a))
    np.testing.assert_array_equal(np.asarray(x.argsort(axis=0)), np.argsort(a, axis=0, kind="stable"))
    np.testing.assert_array_equal(np.asarray(x.diagonal(1)), a.diagonal(1))
    assert float(x.trace()) == a.trace()
    np.testing.assert_array_equal(np.asarray(x.nonzero()[1]), a.nonzero()[1])
    np.testing.assert_array_equal(np.asarray(x.take([2, 0], axis=1)), a.take([2, 0], axis=1))
    np.testing.assert_array_equal(np.asarray(x.repeat(2, axis=0)), a.repeat(2, axis=0))
    np.testing.assert_array_equal(np.asarray(x.swapaxes(0, 1)), a.swapaxes(0, 1))
    np.testing.assert_array_equal(np.asarray(x.cumsum(axis=1)), a.cumsum(axis=1))
    np.testing.assert_array_equal(np.asarray(x.clip(0, 2)), a.clip(0, 2))
    np.testing.assert_array_equal(np.asarray(x.round()), a.round())
    assert bool(x.any()) and not bool(x.all())
    assert x.copy() is x and x.nbytes == a.nbytes and x.itemsize == 4


@pytest.mark.parametrize("idx", AT_CASES, ids=repr)
@pytest.mark.parametrize("mode, ufunc", [("min", np.minimum), ("max", np.maximum), ("divide", np.divide)])
def test_at_min_max_divide_like_ufunc_at(idx, mode, ufunc):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    v = np.random.default_rng(4).uniform(-2, 2, x[idx].shape).astype(np.float32)
    want = x.copy()
    ufunc.at(want, idx, v)
    got = getattr(fc.asarray(x).at[idx], mode)(v)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_at_min_max_divide_gradients_and_errors():
    x = np.random.default_rng(5).standard_normal((4, 3))
    v = np.random.default_rng(6).uniform(1, 2, (2, 3))
    idx = np.array([0, 2])
    check_grads(lambda a, b: a.at[idx].divide(b), (x, v), order=2)
    check_grads(lambda a, b: a.at[idx].max(b + 0.1), (x, v))
    with pytest.raises(TypeError, match="divide"):
        fc.arange(3).at[0].divide(2)


@pytest.mark.parametrize("rows, tail", [(5, (300,)), (40, (3, 100)), (7, (1,)), (5000, (256,))])
def test_scatter_add_matches_np_add_at(rows, tail):
    # few long slices add one by one, the rest through np.add.at: both accumulate duplicate
    # and clamped indices in index order, so the bits equal np.add.at's
    from funconv.ops.indexing import scatter_add_p

    r = np.random.default_rng(rows)
    x = r.standard_normal((6, 4) + tail).astype(np.float32)
    idx = r.integers(-2, 8, size=(rows, 2))  # duplicates, and out-of-range entries (clamped)
    upd = r.standard_normal((rows,) + tail).astype(np.float32)
    ref = x.copy()
    np.add.at(ref, (np.clip(idx[:, 0], 0, 5), np.clip(idx[:, 1], 0, 3)), upd)
    got = scatter_add_p(fc.asarray(x), fc.asarray(idx), fc.asarray(upd))
    np.testing.assert_array_equal(np.asarray(got), ref)
