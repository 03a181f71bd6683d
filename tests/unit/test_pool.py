"""Unit tests of fc.max_pool / fc.avg_pool: values by hand, the first-maximum rule,
derivatives to second order, errors, and PyTorch parity when torch is importable."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops.pool import reduce_window_p, select_and_scatter_add_p

rng = np.random.default_rng(0)


def test_values_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(np.asarray(fc.max_pool(x, 2)), [[[[5, 7], [13, 15]]]])
    np.testing.assert_allclose(np.asarray(fc.avg_pool(x, 2)), [[[[2.5, 4.5], [10.5, 12.5]]]])
    np.testing.assert_allclose(np.asarray(fc.max_pool(x, (3, 3), stride=1)), [[[[10, 11], [14, 15]]]])
    # padding counts as -inf for max and as 0 (in the divisor too) for avg
    np.testing.assert_allclose(np.asarray(fc.max_pool(-x, 2, padding=1))[0, 0, 0], [0, -1, -3])
    np.testing.assert_allclose(np.asarray(fc.avg_pool(np.ones((1, 1, 3)), 2, stride=1, padding="SAME")),
                               [[[1.0, 1.0, 0.5]]])


def test_tuple_window_pools_trailing_dims_of_any_array():
    x = rng.standard_normal((5, 6))
    np.testing.assert_allclose(np.asarray(fc.max_pool(x, (2,))), x.reshape(5, 3, 2).max(-1))
    np.testing.assert_allclose(np.asarray(fc.avg_pool(x, (1, 3))), x.reshape(5, 2, 3).mean(-1))


def test_first_maximum_gets_the_cotangent():
    x = np.array([[[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 3.0, 3.0]]]])
    g = fc.grad(lambda x: fc.max_pool(x, 2).sum())(x)
    np.testing.assert_array_equal(np.asarray(g), [[[[0, 1, 0, 0], [0, 0, 1, 0]]]])
    # overlapping windows add up
    g = fc.grad(lambda x: fc.max_pool(x, (1, 2), stride=1).sum())(np.array([[[[0.0, 5.0, 1.0]]]]))
    np.testing.assert_array_equal(np.asarray(g), [[[[0, 2, 0]]]])


@pytest.mark.parametrize("kw", [{"window": 2}, {"window": 3, "stride": 2, "padding": 1},
                                {"window": (2, 3), "stride": (1, 2), "padding": "SAME"}])
def test_grads_second_order(kw):
    x = rng.permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) * 0.1  # no ties
    for pool in (fc.max_pool, fc.avg_pool):
        fc.testing.check_grads(lambda x, pool=pool: pool(x, **kw) ** 2, (x,), order=2, modes=("rev",))


def test_sum_vjp_is_a_windowed_sum_with_base_dilation():
    ct_graph = fc.make_graph(fc.value_and_grad(lambda x: fc.avg_pool(x, 2, stride=2).sum()))(np.ones((1, 1, 4, 4)))
    rw = [n for n in ct_graph.nodes() if getattr(n, "prim", None) is reduce_window_p]
    assert [n.params["base_dilation"] for n in rw] == [(1, 1), (2, 2)]
    mx = fc.make_graph(fc.grad(lambda x: fc.max_pool(x, 2).sum()))(np.ones((1, 1, 4, 4)))
    assert any(getattr(n, "prim", None) is select_and_scatter_add_p for n in mx.nodes())


def test_integer_inputs():
    x = np.arange(8, dtype=np.int32).reshape(1, 1, 8)
    out = fc.max_pool(x, 2)
    assert out.dtype == np.int32 and np.asarray(out).tolist() == [[[1, 3, 5, 7]]]
    assert fc.avg_pool(x, 2).dtype == np.float32


def test_errors():
    x = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(ShapeError, match="larger than the padded input") as e:
        fc.max_pool(x, 5)
    assert "f32[2,3,4,4]" in str(e.value)
    with pytest.raises(ShapeError, match="padding"):
        fc.avg_pool(x, 2, padding="FULL")
    with pytest.raises(ShapeError, match="non-negative"):
        fc.max_pool(x, 2, padding=-1)
    with pytest.raises(ArgumentError, match="stride"):
        fc.max_pool(x, 2, stride=0)
    with pytest.raises(ArgumentError, match="window"):
        fc.max_pool(x, (2, 2.5))
    with pytest.raises(ShapeError, match="spatial"):
        fc.max_pool(np.zeros((4, 4)), 2)
    with pytest.raises(DTypeError):
        fc.max_pool(np.zeros((1, 1, 4), np.complex64), 2)


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 3, 9, 8))
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 0))]:
        xt = torch.tensor(x, requires_grad=True)
        ref = F.max_pool2d(xt, k, s, p)
        ref.sum().backward()
        pairs = [(q, q) for q in ((p, p) if isinstance(p, int) else p)]
        out = fc.max_pool(x, k, stride=s, padding=pairs)
        np.testing.assert_allclose(np.asarray(out), ref.detach().numpy())
        g = fc.grad(lambda x, k=k, s=s, pairs=pairs: fc.max_pool(x, k, stride=s, padding=pairs).sum())(x)
        np.testing.assert_allclose(np.asarray(g), xt.grad.numpy())
        ref = F.avg_pool2d(torch.tensor(x), k, s, p, count_include_pad=True).numpy()
        np.testing.assert_allclose(np.asarray(fc.avg_pool(x, k, stride=s, padding=pairs)), ref,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 3, 7, 9)])
def test_non_overlapping_fast_path_matches_general_path(shape, monkeypatch):
    """The fast path (stride == window) and the per-tap general path agree exactly, on
    relu-like inputs (many tied zeros), with -inf entries and non-finite cotangents."""
    from funconv.ops import pool

    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    x[0, 0, 0, :3] = -np.inf
    p = {"window": (2, 2), "strides": (2, 2), "padding": ((0, 0), (1, 0))}
    out_shape = shape[:2] + (shape[2] // 2, (shape[3] + 1) // 2)
    ct = rng.standard_normal(out_shape).astype(np.float32)
    ct_inf = ct.copy()
    ct_inf[1, 1, 1, 1] = np.inf

    def run():
        return [pool._reduce_window_impl(x, computation=c, base_dilation=(1, 1), **p) for c in ("max", "sum")] + [
            pool._select_and_scatter_add_impl(c, x, **p) for c in (ct, ct_inf)] + [
            pool._select_and_gather_impl(x * 2, x, **p)]

    fast = run()
    monkeypatch.setattr(pool, "_non_overlapping", lambda window, strides: False)
    general = run()
    for f, g in zip(fast, general):
        assert f.dtype == g.dtype and f.shape == g.shape
        np.testing.assert_allclose(f, g, rtol=1e-6)  # sums may round differently
    np.testing.assert_array_equal(fast[2], general[2])
    np.testing.assert_array_equal(fast[3], general[3])
    assert np.isinf(fast[3]).sum() == 1 and not np.isnan(fast[3]).any()  # no 0 * inf


def test_fast_path_wide_window_and_empty_batch():
    # more than 256 taps: the tap index no longer fits uint8; ties (integers) everywhere
    x = np.zeros((1, 1, 610))
    x[0, 0, [5, 17, 299, 300, 450, 599]] = [1, 2, 2, 7, 7, 3]
    out = fc.max_pool(x, (300,))
    np.testing.assert_array_equal(np.asarray(out), [[[2, 7]]])
    g = fc.grad(lambda x: (fc.max_pool(x, (300,)) * np.array([1.0, 10.0])).sum())(x)
    expect = np.zeros_like(x)
    expect[0, 0, [17, 300]] = [1, 10]  # first of the tied maxima; 600..609 lie outside
    np.testing.assert_array_equal(np.asarray(g), expect)
    empty = np.zeros((0, 3, 4, 4), np.float32)
    assert fc.max_pool(empty, 2).shape == (0, 3, 2, 2)
    assert fc.grad(lambda x: fc.max_pool(x, 2).sum())(empty).shape == empty.shape
