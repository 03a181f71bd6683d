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
    from funconv.backends.numpy.kernels import pool

    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    x[0, 0, 0, :3] = -np.inf
    p = {"window": (2, 2), "strides": (2, 2), "padding": ((0, 0), (1, 0))}
    out_shape = shape[:2] + (shape[2] // 2, (shape[3] + 1) // 2)
    ct = rng.standard_normal(out_shape).astype(np.float32)
    ct_inf = ct.copy()
    ct_inf[1, 1, 1, 1] = np.inf

    def run():
        return [pool.reduce_window_kernel(x, computation=c, base_dilation=(1, 1), **p) for c in ("max", "sum")] + [
            pool.select_and_scatter_add_kernel(c, x, **p) for c in (ct, ct_inf)] + [
            pool.select_and_gather_kernel(x * 2, x, **p)]

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


# --- ceil_mode, count_include_pad, adaptive pooling ------------------------------------------


def test_ceil_mode_by_hand():
    x = np.arange(5.0).reshape(1, 1, 5)
    # floor: windows [0,2) [2,4); ceil adds [4,6), hanging one past the end
    np.testing.assert_array_equal(np.asarray(fc.max_pool(x, 2)), [[[1, 3]]])
    np.testing.assert_array_equal(np.asarray(fc.max_pool(x, 2, ceil_mode=True)), [[[1, 3, 4]]])
    # the overhang is not counted in the divisor: 4 / 1
    np.testing.assert_allclose(np.asarray(fc.avg_pool(x, 2, ceil_mode=True)), [[[0.5, 2.5, 4.0]]])
    # padding 1 on 0..5: windows [-1,2) [1,4) [3,6) and, with ceil_mode, [5,8): its divisor
    # counts the input and the padding (5, 6) but not the overhang (7)
    y = np.arange(6.0).reshape(1, 1, 6)
    np.testing.assert_allclose(np.asarray(fc.avg_pool(y, 3, stride=2, padding=1, ceil_mode=True)),
                               [[[1 / 3, 6 / 3, 12 / 3, 5 / 2]]])
    np.testing.assert_allclose(np.asarray(fc.avg_pool(y, 3, stride=2, padding=1, ceil_mode=True,
                                                      count_include_pad=False)),
                               [[[1 / 2, 6 / 3, 12 / 3, 5 / 1]]])
    np.testing.assert_array_equal(np.asarray(fc.max_pool(y, 3, stride=2, padding=1, ceil_mode=True)),
                                  [[[1, 3, 5, 5]]])
    # ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the 4th would start at 6 >= 5 + 1: dropped
    assert fc.max_pool(x, 2, stride=2, padding=1, ceil_mode=True).shape == (1, 1, 3)
    # a window wider than the input: one window with ceil_mode (as PyTorch), an error without
    np.testing.assert_array_equal(np.asarray(fc.max_pool(np.arange(4.0).reshape(1, 1, 2, 2), 3,
                                                         stride=2, ceil_mode=True)), [[[[3.0]]]])
    with pytest.raises(ShapeError, match="larger than the padded input"):
        fc.max_pool(np.zeros((1, 1, 2, 2)), 3, stride=2)


def test_windows_wholly_in_the_padding_are_refused():
    # such a window has no input element: max_pool gave -inf and avg_pool 0, silently (PyTorch
    # refuses such pads too). The message names the call, the shapes and the largest valid pad
    x = np.array([[[2.0]]])
    with pytest.raises(ShapeError, match=r"max_pool\(f64\[1,1,1\].*whole window in the padding"):
        fc.max_pool(x, (1,), stride=1, padding=((0, 3),))
    for ceil_mode in (False, True):
        with pytest.raises(ShapeError, match="largest valid padding is 0"):
            fc.avg_pool(x, (1,), stride=1, padding=((0, 3),), ceil_mode=ceil_mode)
        # window 2 on a 1-wide input: [1, 3) lies in the high padding
        with pytest.raises(ShapeError, match="largest valid padding is 1"):
            fc.avg_pool(x, (2,), stride=1, padding=((0, 3),), ceil_mode=ceil_mode)
    x4 = np.zeros((1, 1, 4, 4), np.float32)
    for pool in (fc.max_pool, fc.avg_pool):
        with pytest.raises(ShapeError, match=r"f32\[1,1,4,4\].*padding \(2, 2\).*largest valid "
                                             r"padding is 1 on each side"):
            pool(x4, 2, padding=2)
        assert pool(x4, 2, padding=1).shape == (1, 1, 3, 3)  # a pad below the window is fine


def test_same_and_valid_with_ceil_mode():
    x = rng.standard_normal((2, 3, 7, 5))
    for k, s in [(2, 2), (3, 2), (1, 3), (4, 3)]:
        for pool in (fc.max_pool, fc.avg_pool):
            np.testing.assert_array_equal(np.asarray(pool(x, k, stride=s, padding="SAME", ceil_mode=True)),
                                          np.asarray(pool(x, k, stride=s, padding="SAME")))
            np.testing.assert_array_equal(np.asarray(pool(x, k, stride=s, padding="VALID", ceil_mode=True)),
                                          np.asarray(pool(x, k, stride=s, padding=0, ceil_mode=True)))


def test_count_include_pad_false_by_hand():
    ones = np.ones((1, 1, 3, 3))
    np.testing.assert_allclose(np.asarray(fc.avg_pool(ones, 2, stride=1, padding=1, count_include_pad=False)),
                               np.ones((1, 1, 4, 4)))
    inc = np.asarray(fc.avg_pool(ones, 2, stride=1, padding=1))
    np.testing.assert_allclose(inc[0, 0, 0], [0.25, 0.5, 0.5, 0.25])
    # flax's SAME with count_include_pad=False: divide by the real elements of each window
    np.testing.assert_allclose(np.asarray(fc.avg_pool(np.ones((1, 1, 3)), 2, stride=1, padding="SAME",
                                                      count_include_pad=False)), [[[1.0, 1.0, 1.0]]])
    x = np.arange(1.0, 4.0).reshape(1, 1, 3)
    np.testing.assert_allclose(np.asarray(fc.avg_pool(x, 3, stride=2, padding=1, count_include_pad=False)),
                               [[[1.5, 2.5]]])
    # the default keeps one scalar divisor (no constant array in the graph)
    graph = fc.make_graph(lambda x: fc.avg_pool(x, 2))(np.ones((1, 1, 4, 4)))
    assert "const" not in str(graph)


def test_adaptive_by_hand():
    x = np.arange(5.0).reshape(1, 1, 5)
    # windows [0,2) [1,4) [3,5)
    np.testing.assert_allclose(np.asarray(fc.adaptive_avg_pool(x, 3)), [[[0.5, 2.0, 3.5]]])
    np.testing.assert_array_equal(np.asarray(fc.adaptive_max_pool(x, 3)), [[[1.0, 3.0, 4.0]]])
    # larger than the input: windows [0,1) [0,2) [1,2) overlap
    y = np.array([[[1.0, 3.0]]])
    np.testing.assert_allclose(np.asarray(fc.adaptive_avg_pool(y, 3)), [[[1.0, 2.0, 3.0]]])
    np.testing.assert_array_equal(np.asarray(fc.adaptive_max_pool(y, 3)), [[[1.0, 3.0, 3.0]]])
    # global pooling, None keeping a dim, a tuple over the trailing dims of any array
    z = rng.standard_normal((2, 3, 4, 6))
    np.testing.assert_allclose(np.asarray(fc.adaptive_avg_pool(z, 1)), z.mean((2, 3), keepdims=True))
    np.testing.assert_array_equal(np.asarray(fc.adaptive_max_pool(z, (None, 1))), z.max(3, keepdims=True))
    np.testing.assert_allclose(np.asarray(fc.adaptive_avg_pool(z[0, 0], (2,))),
                               z[0, 0].reshape(4, 2, 3).mean(-1))
    assert fc.adaptive_avg_pool(z, (None, None)).shape == z.shape
    # integers: avg in float32, max keeps the dtype
    i = np.arange(10, dtype=np.int32).reshape(1, 1, 10)
    assert fc.adaptive_avg_pool(i, 3).dtype == np.float32
    out = fc.adaptive_max_pool(i, 3)
    assert out.dtype == np.int32 and np.asarray(out).tolist() == [[[3, 6, 9]]]


def test_adaptive_lowering():
    """Global pooling is one reduction; dividing sizes are one plain pool; other sizes
    contract with a 0/1 matrix (avg) or reduce a gathered table (max)."""
    x = np.ones((1, 2, 8, 6))

    def prims(f, size):
        graph = fc.make_graph(lambda x: f(x, size))(x)
        return [n.prim.name for n in graph.nodes() if hasattr(n, "prim") and n.prim.name != "broadcast_to"]

    assert prims(fc.adaptive_avg_pool, 1) == ["reduce_sum", "reshape", "div"]  # (keepdims)
    assert prims(fc.adaptive_max_pool, (1, None)) == ["reduce_max", "reshape"]
    assert prims(fc.adaptive_avg_pool, (4, 3)) == ["reduce_window", "div"]
    assert prims(fc.adaptive_max_pool, (2, 2)) == ["reduce_window"]
    assert prims(fc.adaptive_avg_pool, (3, 3)).count("dot_general") == 1  # 8 -> 3 only; 6 -> 3 divides
    assert prims(fc.adaptive_max_pool, (3, 6)) == ["transpose", "gather", "transpose", "reduce_max"]
    assert prims(fc.adaptive_max_pool, (3, 1)) == ["reduce_max", "reshape", "transpose", "gather",
                                                   "transpose", "reduce_max"]


def test_adaptive_max_ties_first_maximum_row_major():
    # a 3x3 box of equal values, pooled from 5x5 to 2x2 (windows [0,3) and [2,5)): the
    # cotangent goes to the box's first element in row-major order
    x = np.zeros((1, 1, 5, 5))
    g = fc.grad(lambda x: fc.adaptive_max_pool(x, 2)[0, 0, 1, 1])(x)
    expect = np.zeros_like(x)
    expect[0, 0, 2, 2] = 1
    np.testing.assert_array_equal(np.asarray(g), expect)
    x[0, 0, 3, 2] = x[0, 0, 2, 4] = 1.0  # two maxima: (2, 4) comes first in row-major order
    g = fc.grad(lambda x: fc.adaptive_max_pool(x, 2)[0, 0, 1, 1])(x)
    expect[0, 0, 2, 2], expect[0, 0, 2, 4] = 0, 1
    np.testing.assert_array_equal(np.asarray(g), expect)


@pytest.mark.parametrize("fn", [
    lambda x: fc.max_pool(x, 3, stride=2, padding=1, ceil_mode=True),
    lambda x: fc.avg_pool(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda x: fc.avg_pool(x, (2, 3), stride=(2, 2), padding="SAME", count_include_pad=False),
    lambda x: fc.adaptive_avg_pool(x, (3, 4)),
    lambda x: fc.adaptive_max_pool(x, (3, 4)),
    lambda x: fc.adaptive_max_pool(x, (7, None)),
])
def test_new_options_grads_and_jit(fn):
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) * 0.1  # no ties
    fc.testing.check_grads(lambda x: fn(x) ** 2, (x,), order=2)
    np.testing.assert_allclose(np.asarray(fc.jit(fn)(x)), np.asarray(fn(x)), rtol=1e-12, atol=1e-12)
    loss = lambda x: (fn(x) ** 2).sum()
    np.testing.assert_allclose(np.asarray(fc.jit(fc.grad(loss))(x)), np.asarray(fc.grad(loss)(x)),
                               rtol=1e-12, atol=1e-12)


def test_new_options_errors():
    x = np.zeros((2, 3, 5, 5), np.float32)
    with pytest.raises(ArgumentError, match=r"max_pool\(f32\[2,3,5,5\], \.\.\.\): ceil_mode must be True or False"):
        fc.max_pool(x, 2, ceil_mode=1)
    with pytest.raises(ArgumentError, match=r"avg_pool\(f32\[2,3,5,5\], \.\.\.\): count_include_pad must be"):
        fc.avg_pool(x, 2, count_include_pad="no")
    with pytest.raises(ShapeError, match=r"max_pool\(f32\[2,3,5,5\].*ceil_mode=True.*larger than the padded"):
        fc.max_pool(x, 7, stride=1, ceil_mode=True)
    with pytest.raises(ArgumentError, match=r"adaptive_avg_pool\(f32\[2,3,5,5\], output_size=0\).*>= 1"):
        fc.adaptive_avg_pool(x, 0)
    with pytest.raises(ArgumentError, match=">= 1"):
        fc.adaptive_max_pool(x, (2, -1))
    with pytest.raises(ArgumentError, match="ints or None, got True"):
        fc.adaptive_max_pool(x, (True, 2))
    with pytest.raises(ArgumentError, match="an int or a tuple"):
        fc.adaptive_avg_pool(x, True)
    with pytest.raises(ArgumentError, match="an int or a tuple"):
        fc.adaptive_avg_pool(x, 2.0)
    with pytest.raises(ArgumentError, match="ints or None"):
        fc.adaptive_avg_pool(x, (2, 2.5))
    with pytest.raises(ShapeError, match=r"one entry per pooled trailing dim \(1 to 4"):
        fc.adaptive_avg_pool(x, (1, 1, 1, 1, 1))
    with pytest.raises(ShapeError, match="one entry per pooled"):
        fc.adaptive_avg_pool(x, ())
    with pytest.raises(ShapeError, match=r"int output_size pools the spatial dims.*pass a tuple"):
        fc.adaptive_max_pool(np.zeros((4, 4)), 2)
    with pytest.raises(ShapeError, match="empty spatial dim"):
        fc.adaptive_avg_pool(np.zeros((1, 1, 0, 3)), 2)
    with pytest.raises(DTypeError, match="c64"):
        fc.adaptive_max_pool(np.zeros((1, 1, 5), np.complex64), 2)
    # allowed as in PyTorch: an output larger than the input, an empty batch
    assert fc.adaptive_max_pool(x, 8).shape == (2, 3, 8, 8)
    assert fc.adaptive_avg_pool(np.zeros((0, 3, 5, 5)), 2).shape == (0, 3, 2, 2)


def test_new_options_match_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for nd, shape in [(1, (2, 3, 11)), (2, (2, 3, 9, 8)), (3, (1, 2, 5, 6, 7))]:
        x = rng.standard_normal(shape)
        maxp = getattr(F, f"max_pool{nd}d")
        avgp = getattr(F, f"avg_pool{nd}d")
        for k, s, p in [(2, 2, 0), (3, 2, 1), (2, 3, 1), (3, 3, 0), (4, 3, 2)]:
            pairs = ((p, p),) * nd
            xt = torch.tensor(x, requires_grad=True)
            ref = maxp(xt, k, s, p, ceil_mode=True)
            ref.sum().backward()
            np.testing.assert_array_equal(np.asarray(fc.max_pool(x, k, stride=s, padding=pairs, ceil_mode=True)),
                                          ref.detach().numpy())
            g = fc.grad(lambda x, k=k, s=s, p=pairs: fc.max_pool(x, k, stride=s, padding=p, ceil_mode=True).sum())(x)
            np.testing.assert_array_equal(np.asarray(g), xt.grad.numpy())
            for ceil in (False, True):
                for inc in (False, True):
                    xt = torch.tensor(x, requires_grad=True)
                    ref = avgp(xt, k, s, p, ceil_mode=ceil, count_include_pad=inc)
                    ref.sum().backward()
                    fn = lambda x, k=k, s=s, p=p, c=ceil, i=inc: fc.avg_pool(
                        x, k, stride=s, padding=p, ceil_mode=c, count_include_pad=i)
                    np.testing.assert_allclose(np.asarray(fn(x)), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
                    np.testing.assert_allclose(np.asarray(fc.grad(lambda x, fn=fn: fn(x).sum())(x)),
                                               xt.grad.numpy(), rtol=1e-12, atol=1e-12)
        amax = getattr(F, f"adaptive_max_pool{nd}d")
        aavg = getattr(F, f"adaptive_avg_pool{nd}d")
        for o in [1, 2, 3, 4, 7, 12]:
            for osz in [o, (None,) * (nd - 1) + (o,)]:
                for ours, theirs in ((fc.adaptive_max_pool, amax), (fc.adaptive_avg_pool, aavg)):
                    xt = torch.tensor(x, requires_grad=True)
                    ref = theirs(xt, osz if isinstance(osz, int) else list(osz))
                    ct = rng.standard_normal(tuple(ref.shape))
                    (ref * torch.tensor(ct)).sum().backward()
                    np.testing.assert_allclose(np.asarray(ours(x, osz)), ref.detach().numpy(),
                                               rtol=1e-12, atol=1e-12)
                    g = fc.grad(lambda x, f=ours, o=osz, ct=ct: (f(x, o) * ct).sum())(x)
                    np.testing.assert_allclose(np.asarray(g), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
