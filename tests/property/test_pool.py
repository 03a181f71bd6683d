"""Property tests of fc.max_pool / fc.avg_pool and the pooling primitives against float64
definitions (domains_conv.py): 1-d/2-d/3-d, strides, every padding form; derivatives to
second order; the max cotangent lands on the first maximum of each window."""

from __future__ import annotations

import numpy as np
from domains_conv import (
    direct_pool,
    direct_select_and_gather,
    direct_select_and_scatter_add,
    distinct,
    draw_pool_geometry,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.ops.pool import select_and_gather_p, select_and_scatter_add_p


def _draw(data):
    nd = data.draw(st.integers(1, 3), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 4 if nd == 3 else 7), min_size=nd, max_size=nd),
                          label="in"))
    window, strides, pairs = draw_pool_geometry(data, nd, ins)
    form = data.draw(st.sampled_from(["pairs", "int", "per_dim", "SAME", "VALID", "default"]),
                     label="form")
    if form == "int":
        p = min(min(window) - 1, 1)
        pairs, padding = ((p, p),) * nd, p
    elif form == "per_dim":
        padding = tuple(min(w - 1, 1) for w in window)
        pairs = tuple((p, p) for p in padding)
    elif form == "VALID" or form == "default":
        padding, pairs = ("VALID" if form == "VALID" else 0), ((0, 0),) * nd
    elif form == "SAME":
        padding = "SAME"
        pairs = []
        for size, win, s in zip(ins, window, strides):
            total = max((-(-size // s) - 1) * s + win - size, 0)
            pairs.append((total // 2, total - total // 2))
        pairs = tuple(pairs)
    else:
        padding = pairs
    stride = None if form == "default" else strides
    strides = window if stride is None else strides
    if any(ins[i] + pairs[i][0] + pairs[i][1] < window[i] for i in range(nd)):
        return None
    return nd, ins, window, stride, strides, padding, pairs


@settings(deadline=None)
@given(st.data())
def test_pools_match_direct_definition(data):
    drawn = _draw(data)
    if drawn is None:
        return
    _nd, ins, window, stride, strides, padding, pairs = drawn
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    batch = data.draw(st.sampled_from([(1, 1), (2, 3)]), label="batch")
    x = distinct(r, batch + ins, np.float64)
    for pool, comp in ((fc.max_pool, "max"), (fc.avg_pool, "mean")):
        ref = direct_pool(x, window, strides, pairs, comp)
        out = pool(x, window, stride=stride, padding=padding)
        assert out.shape == ref.shape
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-12, atol=1e-12)
        out32 = pool(x.astype(np.float32), window, stride=stride, padding=padding)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(np.asarray(out32), ref, rtol=1e-5, atol=1e-5)


@settings(deadline=None, max_examples=20)
@given(st.data())
def test_pool_grads_second_order(data):
    drawn = _draw(data)
    if drawn is None:
        return
    _nd, ins, window, stride, _strides, padding, _pairs = drawn
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    # distinct values (gap 0.25 >> the finite-difference step): the max is smooth there
    x = distinct(r, (1, 2) + ins, np.float64)
    for pool in (fc.max_pool, fc.avg_pool):
        fc.testing.check_grads(lambda x, pool=pool: pool(x, window, stride=stride, padding=padding) ** 2,
                               (x,), order=2, modes=("rev",))


@settings(deadline=None)
@given(st.data())
def test_select_primitives_first_maximum(data):
    """Ties included: the cotangent goes to the FIRST maximum (row-major within the window)."""
    nd = data.draw(st.integers(1, 2), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 6), min_size=nd, max_size=nd), label="in"))
    window, strides, pairs = draw_pool_geometry(data, nd, ins)
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.integers(0, 3, size=(2, 1) + ins).astype(np.float64)  # many ties
    osp = tuple((ins[i] + pairs[i][0] + pairs[i][1] - window[i]) // strides[i] + 1
                for i in range(nd))
    ct = r.standard_normal((2, 1) + osp)
    t = r.standard_normal(x.shape)
    p = {"window": window, "strides": strides, "padding": pairs}
    np.testing.assert_allclose(np.asarray(select_and_scatter_add_p(fc.asarray(ct), fc.asarray(x), **p)),
                               direct_select_and_scatter_add(ct, x, **p), atol=1e-12)
    np.testing.assert_allclose(np.asarray(select_and_gather_p(fc.asarray(t), fc.asarray(x), **p)),
                               direct_select_and_gather(t, x, **p), atol=1e-12)
    # the two are each other's transpose
    a = np.vdot(np.asarray(select_and_scatter_add_p(fc.asarray(ct), fc.asarray(x), **p)), t)
    b = np.vdot(ct, np.asarray(select_and_gather_p(fc.asarray(t), fc.asarray(x), **p)))
    assert abs(a - b) <= 1e-10 * (1 + abs(a))
    # and max_pool's gradient is the scatter of the cotangent
    g = fc.grad(lambda x: (fc.max_pool(x, window, stride=strides, padding=pairs) * ct).sum())(x)
    np.testing.assert_allclose(np.asarray(g), direct_select_and_scatter_add(ct, x, **p), atol=1e-12)


@settings(deadline=None)
@given(st.data())
def test_non_overlapping_fast_path(data):
    """stride == window (the fast path): ties, -inf, padding, sizes that are not multiples of
    the window, 1-wide window dims; max and sum forward, the scatter and the gather."""
    nd = data.draw(st.integers(1, 3), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 4 if nd == 3 else 7), min_size=nd, max_size=nd),
                          label="in"))
    window = tuple(data.draw(st.integers(1, min(3, n + 1)), label="window") for n in ins)
    pairs = tuple(data.draw(st.tuples(st.integers(0, w - 1), st.integers(0, w - 1)), label="pad")
                  for w in window)
    pairs = tuple((lo, hi + max(0, w - (n + lo + hi))) for (lo, hi), w, n in zip(pairs, window, ins))
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.integers(-1, 2, size=(2, 3) + ins).astype(np.float32)  # many ties
    x[r.random(x.shape) < 0.2] = -np.inf
    p = {"window": window, "strides": window, "padding": pairs}
    ref = direct_pool(x, window, window, pairs, "max")
    np.testing.assert_array_equal(np.asarray(fc.max_pool(x, window, padding=pairs)), ref)
    np.testing.assert_allclose(np.asarray(fc.avg_pool(np.where(np.isinf(x), 0.5, x), window, padding=pairs)),
                               direct_pool(np.where(np.isinf(x), 0.5, x), window, window, pairs, "mean"),
                               rtol=1e-6, atol=1e-6)
    ct = r.standard_normal(ref.shape).astype(np.float32)
    if data.draw(st.booleans(), label="inf cotangent"):
        ct.flat[-1] = np.inf  # lands on one position, zeros elsewhere (no 0 * inf = nan)
    t = r.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(select_and_scatter_add_p(fc.asarray(ct), fc.asarray(x), **p)),
                                  direct_select_and_scatter_add(ct, x, **p).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(select_and_gather_p(fc.asarray(t), fc.asarray(x), **p)),
                                  direct_select_and_gather(t, x, **p).astype(np.float32))
