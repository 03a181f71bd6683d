"""Unit tests of fc.conv / fc.conv_transpose: hand-checked values, derivatives to second
order, the graph of a training step, error messages, and PyTorch parity when torch is
importable (never the only check: tests/property/test_conv.py compares with float64
definitions)."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops.conv import conv_general_p

rng = np.random.default_rng(0)


def test_1d_by_hand():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    w = np.array([[[1.0, 0.0, -1.0]]])
    # cross-correlation, not convolution: out[i] = x[i] - x[i+2]
    np.testing.assert_allclose(np.asarray(fc.conv(x, w)), [[[-2.0, -2.0]]])
    np.testing.assert_allclose(np.asarray(fc.conv(x, w, padding=1)), [[[-2.0, -2.0, -2.0, 3.0]]])
    np.testing.assert_allclose(np.asarray(fc.conv(x, w, padding=1, stride=2)), [[[-2.0, -2.0]]])
    np.testing.assert_allclose(np.asarray(fc.conv(x, w[:, :, :2], dilation=2)), [[[1.0, 2.0]]])


def test_conv_transpose_by_hand():
    y = np.array([[[1.0, 2.0]]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    # scatter: out[i*stride + k] += y[i] * w[k]
    np.testing.assert_allclose(np.asarray(fc.conv_transpose(y, w, stride=2)),
                               [[[1.0, 10.0, 102.0, 20.0, 200.0]]])
    np.testing.assert_allclose(np.asarray(fc.conv_transpose(y, w, stride=2, padding=1)),
                               [[[10.0, 102.0, 20.0]]])
    np.testing.assert_allclose(np.asarray(fc.conv_transpose(y, w, stride=2, output_padding=1)),
                               [[[1.0, 10.0, 102.0, 20.0, 200.0, 0.0]]])


def test_same_padding_puts_the_odd_pad_high():
    x = rng.standard_normal((1, 1, 5))
    w = rng.standard_normal((1, 1, 4))
    np.testing.assert_allclose(np.asarray(fc.conv(x, w, padding="SAME")),
                               np.asarray(fc.conv(x, w, padding=[(1, 2)])))
    assert fc.conv(np.zeros((1, 1, 7, 8)), np.zeros((1, 1, 3, 3)), stride=(2, 3),
                   padding="same").shape == (1, 1, 4, 3)
    assert fc.conv_transpose(np.zeros((1, 1, 4, 3)), np.zeros((1, 1, 3, 3)), stride=2,
                             padding="SAME").shape == (1, 1, 8, 6)


def test_dtypes():
    x32 = rng.standard_normal((1, 2, 5)).astype(np.float32)
    assert fc.conv(x32, np.ones((1, 2, 3), np.float32)).dtype == np.float32
    assert fc.conv(x32, np.ones((1, 2, 3))).dtype == np.float64
    assert fc.conv(np.ones((1, 2, 5), np.int32), np.ones((1, 2, 3), np.int32)).dtype == np.float32


@pytest.mark.parametrize("kw", [
    {},
    {"stride": 2, "padding": 1},
    {"stride": (1, 2), "padding": [(0, 1), (2, 0)], "dilation": (2, 1)},
    {"groups": 2, "padding": "SAME"},
    {"groups": 4, "stride": 2, "padding": "VALID"},  # depthwise
])
def test_conv_grads_second_order(kw):
    g = kw.get("groups", 1)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 4 // g, 3, 2))
    fc.testing.check_grads(lambda x, w: fc.conv(x, w, **kw), (x, w), order=2, modes=("rev", "fwd"))


@pytest.mark.parametrize("kw", [
    {},
    {"stride": 2, "padding": 1, "output_padding": 1},
    {"stride": (2, 1), "dilation": (1, 2), "groups": 2},
])
def test_conv_transpose_grads_second_order(kw):
    g = kw.get("groups", 1)
    y = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((4, 6 // g, 3, 2))
    fc.testing.check_grads(lambda y, w: fc.conv_transpose(y, w, **kw), (y, w), order=2,
                           modes=("rev",))


def test_complex_operands():
    x = rng.standard_normal((2, 4, 6)) + 1j * rng.standard_normal((2, 4, 6))
    w = rng.standard_normal((4, 2, 3)) + 1j * rng.standard_normal((4, 2, 3))
    out = np.asarray(fc.conv(x, w, groups=2, padding=1))
    real = lambda a, b: np.asarray(fc.conv(a, b, groups=2, padding=1))
    ref = real(x.real, w.real) - real(x.imag, w.imag) + 1j * (real(x.real, w.imag) + real(x.imag, w.real))
    assert out.dtype == np.complex128
    np.testing.assert_allclose(out, ref, atol=1e-12)
    fc.testing.check_grads(lambda x, w: fc.conv(x, w, groups=2, stride=2), (x, w), order=2)


def test_3d_grads():
    x = rng.standard_normal((1, 2, 4, 3, 5))
    w = rng.standard_normal((2, 1, 2, 2, 3))
    fc.testing.check_grads(lambda x, w: fc.conv(x, w, stride=(1, 2, 1), padding=1, groups=2),
                           (x, w), order=2, modes=("rev",))


def test_training_step_graph_is_three_conv_nodes():
    """Forward, input gradient and weight gradient are all conv_general nodes (what the
    later rewrite pass re-implements); the backward pass adds no other heavy op."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    loss = lambda x, w: (fc.conv(x, w, padding=1, stride=2) ** 2).sum()
    g = fc.make_graph(fc.value_and_grad(loss, argnums=(0, 1)))(x, w)
    convs = [n for n in g.nodes() if getattr(n, "prim", None) is conv_general_p]
    assert len(convs) == 3
    assert sorted(n.params["lhs_dilation"] for n in convs) == [(1, 1), (1, 1), (2, 2)]


def test_eager_gradient_values():
    # d/dw sum(conv(x, w)) = sum over windows of x; d/dx = sum of the kernel taps that see x
    x = rng.standard_normal((2, 1, 5))
    w = rng.standard_normal((1, 1, 3))
    gx, gw = fc.grad(lambda x, w: fc.conv(x, w).sum(), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(np.asarray(gw)[0, 0], [x[:, 0, k:k + 3].sum() for k in range(3)])
    taps = np.array([w[0, 0, :1].sum(), w[0, 0, :2].sum(), w[0, 0].sum(), w[0, 0, 1:].sum(),
                     w[0, 0, 2:].sum()])
    np.testing.assert_allclose(np.asarray(gx), np.broadcast_to(taps, (2, 1, 5)))


def test_algorithm_argument():
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    for a in ("auto", "direct", "im2col", "fft", "tiled_fft"):
        np.testing.assert_allclose(np.asarray(fc.conv(x, w, algorithm=a)), [[[2.0, 2.0, 2.0]]])
        jitted = fc.jit(lambda x, w, a=a: fc.conv(x, w, algorithm=a))
        np.testing.assert_allclose(np.asarray(jitted(x, w)), [[[2.0, 2.0, 2.0]]])
    with pytest.raises(ArgumentError, match="unknown algorithm"):
        fc.conv(x, w, algorithm="winograd9")


def _msg(exc_info):
    return str(exc_info.value)


def test_errors_name_both_operands_and_parameters():
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(ShapeError) as e:
        fc.conv(x, np.zeros((4, 2, 3, 3), np.float32))
    assert "f32[2,3,8,8]" in _msg(e) and "f32[4,2,3,3]" in _msg(e) and "groups" in _msg(e)
    with pytest.raises(ShapeError, match="does not divide") as e:
        fc.conv(np.zeros((2, 4, 8, 8)), np.zeros((6, 1, 3, 3)), groups=4)
    assert "f64[6,1,3,3]" in _msg(e)
    with pytest.raises(ShapeError, match="kernel spans 9") as e:
        fc.conv(x, np.zeros((4, 3, 5, 5), np.float32), dilation=2, padding=(0, 1))
    assert "dilation=2" in _msg(e) and "f32[2,3,8,8]" in _msg(e) and "swapped" not in _msg(e)
    with pytest.raises(ShapeError, match="swapped"):  # conv(w, x): a hint
        fc.conv(np.zeros((4, 3, 3, 3), np.float32), x)
    with pytest.raises(ShapeError, match="padding") as e:
        fc.conv(x, np.zeros((4, 3, 3, 3), np.float32), padding="FULL")
    assert "f32[4,3,3,3]" in _msg(e)
    with pytest.raises(ShapeError):
        fc.conv(x, np.zeros((4, 3, 3, 3), np.float32), padding=(1, 2, 3))
    with pytest.raises(ShapeError, match="same rank"):
        fc.conv(x[0], np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ArgumentError, match="stride"):
        fc.conv(x, np.zeros((4, 3, 3, 3), np.float32), stride=0)
    with pytest.raises(ArgumentError, match="groups"):
        fc.conv(x, np.zeros((4, 3, 3, 3), np.float32), groups=0)
    with pytest.raises(ShapeError, match="output would have size") as e:
        fc.conv_transpose(np.zeros((1, 4, 1, 1)), np.zeros((4, 2, 1, 1)), padding=1)
    assert "f64[1,4,1,1]" in _msg(e)
    with pytest.raises(ShapeError, match="channels"):
        fc.conv_transpose(np.zeros((1, 3, 4, 4)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ArgumentError, match="output_padding"):
        fc.conv_transpose(np.zeros((1, 4, 4, 4)), np.zeros((4, 2, 3, 3)), stride=2,
                          output_padding=2)


def test_primitive_rule_errors():
    t = fc.ArrayType
    p = {"window_strides": (1,), "padding": ((0, 0),), "lhs_dilation": (1,), "rhs_dilation": (1,),
             "feature_group_count": 1}
    f32 = np.dtype("float32")
    with pytest.raises(DTypeError):
        conv_general_p.shape_rule(t((1, 1, 4), f32), t((1, 1, 2), np.dtype("float64")), **p)
    with pytest.raises(DTypeError):
        conv_general_p.shape_rule(t((1, 1, 4), np.dtype("int32")), t((1, 1, 2), np.dtype("int32")), **p)
    with pytest.raises(ShapeError, match="only 4"):
        conv_general_p.shape_rule(t((1, 1, 4), f32), t((1, 1, 5), f32), **p)
    with pytest.raises(ShapeError, match="feature_group_count"):
        conv_general_p.shape_rule(t((1, 2, 4), f32), t((3, 1, 2), f32), **{**p, "feature_group_count": 2})


def test_under_jit_if_available():
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    f = fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=1) ** 2).sum(), argnums=(0, 1))
    try:
        jf = fc.jit(f)
        v, (gx, gw) = jf(x, w)
    except NotImplementedError:
        pytest.skip("fc.jit is not written yet")
    v0, (gx0, gw0) = f(x, w)
    np.testing.assert_allclose(float(v), float(v0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(gx), np.asarray(gx0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(gw), np.asarray(gw0), rtol=1e-4, atol=1e-4)


# --- PyTorch parity (skipped when torch is absent, as in CI) -------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_matches_pytorch(nd):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    conv_t = [F.conv1d, F.conv2d, F.conv3d][nd - 1]
    convT_t = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][nd - 1]
    r = np.random.default_rng(nd)
    for groups, stride, pad, dil, opad in [(1, 1, 0, 1, 0), (2, 2, 1, 1, 1), (3, 2, 2, 2, 1),
                                          (6, 3, 1, 1, 2)]:
        x = r.standard_normal((2, 6) + (7,) * nd)
        w = r.standard_normal((6, 6 // groups) + (3,) * nd)
        kw = {"stride": stride, "padding": pad, "dilation": dil, "groups": groups}
        ref = conv_t(torch.tensor(x), torch.tensor(w), **kw).numpy()
        np.testing.assert_allclose(np.asarray(fc.conv(x, w, **kw)), ref, rtol=1e-10, atol=1e-10)
        y = r.standard_normal(ref.shape)
        ref = convT_t(torch.tensor(y), torch.tensor(w), output_padding=opad, **kw).numpy()
        np.testing.assert_allclose(np.asarray(fc.conv_transpose(y, w, output_padding=opad, **kw)),
                                   ref, rtol=1e-10, atol=1e-10)


def test_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 3))
    kw = {"stride": 2, "padding": 1, "dilation": (1, 2), "groups": 2}
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    (torch.nn.functional.conv2d(xt, wt, **kw) ** 2).sum().backward()
    gx, gw = fc.grad(lambda x, w: (fc.conv(x, w, **kw) ** 2).sum(), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(np.asarray(gx), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(gw), wt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk_elems", [1, 2, 3])
def test_chunked_im2col_paths(monkeypatch, chunk_elems):
    """Chunks of 1, 2 and 3 images (or input channels), with a partial last chunk,
    agree with one big chunk, in both column layouts."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    r = np.random.default_rng(1)
    cases = [  # (x, w, kwargs, bytes of one image's / one channel's columns)
        # output larger than the kernel: chunks over the batch (G * Cg * K * P * 8 bytes)
        (r.standard_normal((5, 4, 6, 7)), r.standard_normal((6, 2, 3, 2)),
         {"groups": 2, "padding": 1}, 2 * 2 * 6 * 6 * 8 * 8),
        # kernel larger than the output (a weight-gradient-shaped conv): chunks over channels
        (r.standard_normal((3, 5, 9, 8)), r.standard_normal((2, 5, 8, 7)),
         {"padding": 0}, 1 * 3 * 4 * 56 * 8),
    ]
    for x, w, kw, one in cases:
        monkeypatch.setattr(conv_mod, "_COLS_CHUNK_BYTES", 1 << 40)
        ref = np.asarray(fc.conv(x, w, **kw))
        monkeypatch.setattr(conv_mod, "_COLS_CHUNK_BYTES", chunk_elems * one)
        np.testing.assert_allclose(np.asarray(fc.conv(x, w, **kw)), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("budget", [1, 3000, 20000])
def test_slabs_of_output_rows_match_the_direct_definition(monkeypatch, budget):
    """A call whose column matrix would exceed MAX_COLUMNS_BYTES computes its output in
    slabs of rows, each from the input rows it reads: strides, kernel dilation, groups,
    negative and uneven padding, slabs of padding only, input dilation (the polyphase
    phases slab in turn), 1-3 spatial dims; budgets down to one row per slab (1 byte)."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    r = np.random.default_rng(2)
    cases = [((2, 3, 50), (4, 3, 7), {"padding": 3}),
             ((2, 3, 50), (4, 3, 7), {"padding": [(5, 1)], "stride": 2}),
             ((1, 2, 12), (2, 2, 3), {"padding": [(9, 9)]}),  # slabs wholly in the padding
             ((1, 2, 40), (2, 2, 9), {"padding": -2, "dilation": 3}),
             ((2, 4, 20, 18), (6, 2, 3, 5), {"padding": 2, "groups": 2, "dilation": 2}),
             ((1, 2, 9, 8, 7), (3, 2, 3, 2, 3), {"padding": 1, "stride": (2, 1, 1)}),
             # kernels larger than the output (weight-gradient shapes: both such layouts)
             ((3, 5, 9, 8), (2, 5, 8, 7), {"padding": 0}),
             ((3, 5, 40, 6), (2, 5, 30, 5), {"padding": 1})]
    for xs, ws, kw in cases:
        x, w = r.standard_normal(xs), r.standard_normal(ws)
        ref = np.asarray(fc.conv(x, w, algorithm="direct", **kw))
        monkeypatch.setattr(conv_mod, "MAX_COLUMNS_BYTES", budget)
        np.testing.assert_allclose(np.asarray(fc.conv(x, w, algorithm="im2col", **kw)), ref,
                                   rtol=1e-12, atol=1e-12)
        wt = r.standard_normal((xs[1], 2) + ws[2:])  # conv_transpose: input dilation
        kt = {"stride": 2, "padding": 1}
        got = np.asarray(fc.conv_transpose(x, wt, algorithm="im2col", **kt))
        monkeypatch.setattr(conv_mod, "MAX_COLUMNS_BYTES", 256 << 20)
        np.testing.assert_allclose(got, np.asarray(fc.conv_transpose(x, wt, algorithm="direct", **kt)),
                                   rtol=1e-12, atol=1e-12)


def test_forced_im2col_stays_im2col_in_slabs_and_phases(monkeypatch):
    """A forced im2col whose columns run in slabs (or whose input dilation splits it into
    phases) computes every part by im2col: no part becomes an "auto" call that the eager
    planner could send to FFT (whose global rounding error im2col is the escape from)."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    monkeypatch.setattr(conv_mod, "EAGER_MIN_S", 0.0)
    monkeypatch.setattr(conv_mod, "MAX_COLUMNS_BYTES", 4096)
    conv_mod._EAGER.clear()
    r = np.random.default_rng(5)
    x = r.standard_normal((1, 3, 40, 40))
    w = r.standard_normal((4, 3, 11, 11))
    wt = r.standard_normal((3, 2, 11, 11))
    got = np.asarray(fc.conv(x, w, padding=5, algorithm="im2col"))
    got_t = np.asarray(fc.conv_transpose(x, wt, stride=2, padding=5, algorithm="im2col"))
    assert not conv_mod._EAGER
    np.testing.assert_allclose(got, np.asarray(fc.conv(x, w, padding=5, algorithm="direct")),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_t, np.asarray(fc.conv_transpose(
        x, wt, stride=2, padding=5, algorithm="direct")), rtol=1e-12, atol=1e-12)


def test_the_eager_plan_cache_is_bounded_and_thread_safe(monkeypatch):
    import threading

    import funconv.backends.numpy.kernels.conv as conv_mod

    monkeypatch.setattr(conv_mod, "EAGER_MIN_S", 0.0)
    monkeypatch.setattr(conv_mod, "EAGER_CACHE_SIZE", 3)
    conv_mod._EAGER.clear()
    r = np.random.default_rng(6)
    w = r.standard_normal((2, 2, 9))
    errors = []

    def work(k):
        try:
            for n in range(40 + 8 * k, 48 + 8 * k):  # eight signatures per thread
                x = r.standard_normal((1, 2, n))
                got = np.asarray(fc.conv(x, w, padding=4))
                np.testing.assert_allclose(got, np.asarray(fc.conv(x, w, padding=4,
                                                                   algorithm="direct")),
                                           rtol=1e-10, atol=1e-10)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(conv_mod._EAGER) <= 3


def test_a_long_filter_eagerly_stays_within_the_column_budget(monkeypatch):
    """Eager im2col of a long 1-d filter (one image: the per-image chunks cannot split it)
    allocates about MAX_COLUMNS_BYTES, not the whole column matrix (x f32[1,16,65536] with
    1025 taps needed 4.3 GB)."""
    import tracemalloc

    import funconv.backends.numpy.kernels.conv as conv_mod

    monkeypatch.setattr(conv_mod, "MAX_COLUMNS_BYTES", 8 << 20)
    r = np.random.default_rng(3)
    x = r.standard_normal((1, 4, 8192)).astype(np.float32)
    w = r.standard_normal((4, 4, 257)).astype(np.float32)  # columns: 4 * 257 * 8192 * 4 = 34 MB
    tracemalloc.start()
    y = fc.conv(x, w, padding=128)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20
    ref = fc.conv(x.astype(np.float64), w.astype(np.float64), padding=128, algorithm="direct")
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-4, atol=1e-4)


def test_eager_auto_runs_a_large_kernel_as_jit_would(monkeypatch):
    """Eagerly, "auto" with a large kernel takes the convolution pass's choice (FFT here),
    compiled once per signature and cached; values and gradients match im2col. Small
    windows, and calls whose im2col would take under EAGER_MIN_S, stay with the kernel's
    im2col and compile nothing."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    conv_mod._EAGER.clear()
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 3, 300))
    w = r.standard_normal((4, 3, 65))
    fc.conv(x, w, padding=32)
    assert not conv_mod._EAGER  # (about 1 Mflop: below EAGER_MIN_S)
    monkeypatch.setattr(conv_mod, "EAGER_MIN_S", 0.0)
    loss = lambda x, w, a: (fc.conv(x, w, padding=32, algorithm=a) ** 2).sum()
    (v, g), (rv, rg) = (fc.value_and_grad(loss, argnums=(0, 1))(x, w, a) for a in ("auto", "im2col"))
    np.testing.assert_allclose(np.asarray(v), np.asarray(rv), rtol=1e-12)
    for a, b in zip(g, rg):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)
    compiled = [e for e in conv_mod._EAGER.values() if e is not None]
    assert compiled and all("fft_kernel" in e.source for e in compiled)
    assert len(conv_mod._EAGER) <= 3  # the forward and its two gradients, once each
    fc.conv(x, w, padding=32)
    assert len(conv_mod._EAGER) <= 3  # (cached)
    conv_mod._EAGER.clear()
    fc.conv(x, w[:, :, :5], padding=2)
    assert not conv_mod._EAGER


def test_small_cnn_hessian_vector_product_under_jit():
    """conv -> tanh -> max_pool -> conv_transpose -> avg_pool: jit(grad) equals eager grad,
    and a jitted Hessian-vector product (forward over reverse) matches finite differences."""
    r = np.random.default_rng(3)
    x = r.standard_normal((2, 3, 8, 8))
    w = r.standard_normal((4, 3, 3, 3))
    v = r.standard_normal(w.shape)

    def loss(w, x):
        h = fc.max_pool(fc.tanh(fc.conv(x, w, padding="SAME")), 2)
        h = fc.conv_transpose(h, w[:, :, :2, :2], stride=2)
        return (fc.avg_pool(h, 2, stride=1, padding=1) ** 2).sum()

    g = fc.grad(loss)
    try:
        jg = fc.jit(g)
        jg(w, x)
    except NotImplementedError:
        pytest.skip("fc.jit is not written yet")
    np.testing.assert_allclose(np.asarray(jg(w, x)), np.asarray(g(w, x)), rtol=1e-10, atol=1e-10)
    hvp = fc.jit(lambda w, v, x: fc.jvp(lambda w: g(w, x), (w,), (v,))[1])
    eps = 1e-5
    fd = (np.asarray(g(w + eps * v, x)) - np.asarray(g(w - eps * v, x))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(hvp(w, v, x)), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_impl_algorithm_choice(monkeypatch):
    """The NumPy impl's choice on the benchmark shapes (scaled down in batch), and the
    values of every path against float64 im2col forced for all: short rows (LeNet's
    second layer) take the batch-last layouts, the full correlation of its input
    gradient the scatter; long rows (conv3x3, LeNet's first layer) and groups the
    batch-first im2col."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    names = ("_conv_batch_first", "_conv_batch_last", "_conv_scatter_batch_last",
             "_conv_wgrad_batch_last")
    calls, short_row = [], conv_mod._SHORT_ROW
    for name in names:
        f = getattr(conv_mod, name)
        monkeypatch.setattr(conv_mod, name,
                            lambda *a, _f=f, _n=name, **k: (calls.append(_n), _f(*a, **k))[1])
    r = np.random.default_rng(2)
    cases = [  # (x, w, conv kwargs, algorithms of forward, input gradient, weight gradient)
        ((4, 16, 12, 12), (32, 16, 5, 5), {},
         ["_conv_batch_last", "_conv_scatter_batch_last", "_conv_wgrad_batch_last"]),
        ((2, 8, 20, 20), (8, 8, 3, 3), {"padding": 1}, ["_conv_batch_first"] * 3),
        ((2, 4, 6, 6), (4, 2, 3, 3), {"groups": 2}, ["_conv_batch_first"] * 3),
    ]
    for xs, ws, kw, expected in cases:
        x, w = r.standard_normal(xs), r.standard_normal(ws)
        loss = lambda x, w, kw=kw: (fc.conv(x, w, **kw) ** 2).sum()
        calls.clear()
        gx, gw = fc.grad(loss, argnums=(0, 1))(x, w)
        assert sorted(calls) == sorted(expected)
        monkeypatch.setattr(conv_mod, "_SHORT_ROW", 0)  # batch-first everywhere
        rx, rw = fc.grad(loss, argnums=(0, 1))(x, w)
        monkeypatch.setattr(conv_mod, "_SHORT_ROW", short_row)
        np.testing.assert_allclose(np.asarray(gx), np.asarray(rx), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(np.asarray(gw), np.asarray(rw), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_column_buffers_sit_half_a_page_from_their_source(dtype):
    # the column buffers avoid 4K aliasing with the input they copy (see conv_mod._scratch)
    from funconv.backends.numpy.kernels import conv as conv_mod

    for offset in (0, 4, 64, 2048, 4092):
        raw = np.zeros(9000, np.uint8)
        start = (offset - raw.ctypes.data) % 4096
        src = raw[start:start + 4096].view(np.float32)
        buf = conv_mod._scratch((3, 5, 7), dtype, src)
        assert buf.shape == (3, 5, 7) and buf.dtype == dtype and buf.flags.c_contiguous
        assert buf.ctypes.data % 64 == 0
        assert (buf.ctypes.data - (src.ctypes.data & ~63)) % 4096 == 2048
        assert not buf.any()


# --- layouts (JAX's dimension_numbers) and PyTorch's padding_mode -------------------------

_LAYOUTS = [("NHWC", "HWIO", "NHWC"), ("NHWC", "HWIO", "NCHW"), ("NWHC", "HWIO", "NHWC"),
            ("CNHW", "IOHW", "HNWC"), ("NHWC", "WHIO", "NHWC")]


def _to_layout(a, canonical, spec):
    return np.transpose(a, [canonical.index(c) for c in spec])


@pytest.mark.parametrize("dn", _LAYOUTS)
def test_dimension_numbers_match_transposed_nchw(dn):
    x = rng.standard_normal((2, 3, 7, 9))  # NCHW
    w = rng.standard_normal((5, 3, 3, 2))  # OIHW
    spatial = "".join(c for c in dn[1] if c not in "OI")  # stride etc. follow the kernel spec
    kw = {"stride": (2, 1), "padding": ((1, 0), (2, 2)), "dilation": (1, 2)}
    ref_kw = {k: v if spatial == "HW" else v[::-1] for k, v in kw.items()}
    ref = np.asarray(fc.conv(x, w, **ref_kw))  # NOHW
    got = fc.conv(_to_layout(x, "NCHW", dn[0]), _to_layout(w, "OIHW", dn[1]),
                  dimension_numbers=dn, **kw)
    np.testing.assert_allclose(np.asarray(got), _to_layout(ref, "NCHW", dn[2]), rtol=1e-12)


@pytest.mark.parametrize("dn", _LAYOUTS)
def test_dimension_numbers_match_jax(dn):
    jax = pytest.importorskip("jax")
    x = rng.standard_normal((2, 7, 9, 3)).astype(np.float32)  # NHWC
    w = rng.standard_normal((3, 2, 3, 5)).astype(np.float32)  # HWIO
    lx, lw = _to_layout(x, "NHWC", dn[0]), _to_layout(w, "HWIO", dn[1])
    ref = jax.lax.conv_general_dilated(lx, lw, (2, 1), ((1, 0), (2, 2)), rhs_dilation=(1, 2),
                                       dimension_numbers=dn)
    got = fc.conv(lx, lw, stride=(2, 1), padding=((1, 0), (2, 2)), dilation=(1, 2),
                  dimension_numbers=dn)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode, np_mode", [("zeros", "constant"), ("reflect", "reflect"),
                                           ("replicate", "edge"), ("circular", "wrap")])
def test_padding_mode_is_np_pad_then_valid(mode, np_mode):
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 2))
    got = fc.conv(x, w, padding=((1, 2), (0, 1)), stride=(1, 2), padding_mode=mode)
    ref = fc.conv(np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)), mode=np_mode), w, stride=(1, 2))
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12)
    # "SAME" pads the same way
    got = fc.conv(x, w, padding="same", padding_mode=mode)
    ref = fc.conv(np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 1)), mode=np_mode), w)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_mode_matches_pytorch(mode):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    layer = torch.nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode=mode, bias=False).double()
    layer.weight.data = torch.tensor(w)
    ref = layer(torch.tensor(x)).detach().numpy()
    got = fc.conv(x, w, padding=(1, 2), padding_mode=mode)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10, atol=1e-10)


def test_layout_and_padding_mode_gradients():
    x = rng.standard_normal((2, 5, 6, 3))  # NHWC
    w = rng.standard_normal((3, 3, 3, 2))  # HWIO
    f = lambda x, w: fc.conv(x, w, padding=1, padding_mode="reflect",
                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
    fc.testing.check_grads(f, (x, w), order=2)


def test_layout_and_padding_mode_errors():
    x, w = np.ones((1, 5, 5, 2)), np.ones((3, 3, 2, 4))
    with pytest.raises(ArgumentError, match="three layout strings"):
        fc.conv(x, w, dimension_numbers="NHWC")
    with pytest.raises(ArgumentError, match="'NHWC'.*'HWIO'|must have 4 distinct letters"):
        fc.conv(x, w, dimension_numbers=("NHWC", "HWOO", "NHWC"))
    with pytest.raises(ArgumentError, match="spatial letters 'HW'"):
        fc.conv(x, w, dimension_numbers=("NHXC", "HWIO", "NHWC"))
    with pytest.raises(ArgumentError, match="unknown padding_mode 'mirror'"):
        fc.conv(np.ones((1, 2, 5, 5)), np.ones((4, 2, 3, 3)), padding=1, padding_mode="mirror")
    with pytest.raises(ArgumentError, match="non-negative"):
        fc.conv(np.ones((1, 2, 5, 5)), np.ones((4, 2, 3, 3)), padding=((1, -1), (0, 0)),
                padding_mode="reflect")
    with pytest.raises(ShapeError, match="channels"):  # the NCHW checks still run, in NCHW terms
        fc.conv(x, np.ones((3, 3, 3, 4)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # a channels-last input without dimension_numbers: the error says how to pass it
    with pytest.raises(ShapeError, match=r"channels-last: pass dimension_numbers=\('NHWC', 'OIHW'"):
        fc.conv(np.ones((2, 8, 8, 3)), np.ones((4, 3, 3, 3)))


# --- conv_general_dilated: JAX's signature ----------------------------------------------

_CGD_CASES = [  # x shape, w shape, window_strides, padding, lhs_dilation, rhs_dilation, dn, groups
    ((2, 3, 7, 8), (4, 3, 3, 2), (1, 1), ((2, 1), (0, 3)), (2, 1), None, None, 1),
    ((2, 3, 7, 8), (4, 3, 3, 2), (2, 3), "SAME_LOWER", None, (2, 1), None, 1),
    ((2, 3, 7, 8), (4, 3, 3, 2), (2, 3), "SAME", None, (2, 1), None, 1),
    ((2, 6, 7, 8), (3, 2, 3, 3), (2, 1), ((0, 0), (0, 0)), (1, 3), (1, 2), None, 3),
    ((2, 7, 8, 3), (3, 3, 3, 4), (1, 2), ((1, 2), (0, -1)), (2, 2), None,
     ("NHWC", "HWIO", "NHWC"), 1),
    ((2, 5, 3), (3, 3, 4), (2,), ((2, 2),), (3,), None, ("NWC", "WIO", "NCW"), 1),
]


@pytest.mark.parametrize("case", _CGD_CASES)
def test_conv_general_dilated_matches_jax(case):
    jax = pytest.importorskip("jax")
    xs, ws, strides, padding, lhs_d, rhs_d, dn, groups = case
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    ref = jax.lax.conv_general_dilated(x, w, strides, padding, lhs_d, rhs_d, dn, groups)
    got = fc.conv_general_dilated(x, w, strides, padding, lhs_d, rhs_d, dn, groups)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-4, atol=1e-4)


def test_conv_general_dilated_is_the_primitive():
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2))
    # lhs_dilation without the kernel flip: the general primitive itself
    got = fc.conv_general_dilated(x, w, (1, 2), ((2, 1), (1, 1)), (2, 1), (1, 2),
                                  feature_group_count=2)
    ref = conv_general_p(fc.asarray(x), fc.asarray(w), window_strides=(1, 2),
                         padding=((2, 1), (1, 1)), lhs_dilation=(2, 1), rhs_dilation=(1, 2),
                         feature_group_count=2)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    # without input dilation it is fc.conv; SAME_LOWER puts the odd pad low
    np.testing.assert_allclose(np.asarray(fc.conv_general_dilated(x, w, 2, "SAME", rhs_dilation=2,
                                                                  feature_group_count=2)),
                               np.asarray(fc.conv(x, w, stride=2, padding="SAME", dilation=2,
                                                  groups=2)), rtol=1e-12)
    low = fc.conv_general_dilated(x, w, 1, "SAME_LOWER", feature_group_count=2)
    np.testing.assert_allclose(np.asarray(low), np.asarray(fc.conv(
        x, w, padding=((1, 1), (1, 0)), groups=2)), rtol=1e-12)
    assert fc.conv_general_dilated(x.astype(np.float32), w.astype(np.float32), 1, "VALID",
                                   feature_group_count=2,
                                   preferred_element_type=np.float64).dtype == np.float64


def test_conv_general_dilated_grads_and_errors():
    x, w = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 2, 3, 4))
    f = lambda x, w: fc.conv_general_dilated(x, w, (2, 1), ((1, 1), (2, 0)), (2, 1), None,
                                             ("NHWC", "HWIO", "NHWC"))
    fc.testing.check_grads(f, (x, w), order=2)
    with pytest.raises(ArgumentError, match="string padding with lhs_dilation"):
        fc.conv_general_dilated(x, w, 1, "SAME", (2, 1), None, ("NHWC", "HWIO", "NHWC"))
    with pytest.raises(NotImplementedError, match="batch_group_count"):
        fc.conv_general_dilated(x, w, 1, "VALID", batch_group_count=2)
    with pytest.raises(ShapeError, match="NHWC.*channels"):
        fc.conv_general_dilated(x, np.ones((3, 2, 4, 4)), 1, "VALID", None, None,
                                ("NHWC", "HWIO", "NHWC"))


def test_impl_algorithm_choice_with_input_dilation():
    """Input-dilated convolutions (conv_transpose, the input gradient of a strided conv):
    the scatter when it writes less data than the phases' columns and its adds run
    along a batch of at least _SHORT_ROW; the polyphase form otherwise."""
    from funconv.backends.numpy.kernels import conv as conv_mod

    def choice(xs, ws, pad, ld):
        osp = tuple((xs[2 + i] - 1) * ld[i] + 1 + 2 * pad - ws[2 + i] + 1 for i in range(2))
        return conv_mod._algorithm(xs, ws, osp, (1, 1), ((pad, pad),) * 2, ld, 1).__name__

    short = conv_mod._SHORT_ROW
    assert choice((short, 64, 8, 8), (3, 64, 4, 4), 2, (2, 2)) == "_conv_scatter_batch_last"
    assert choice((short // 2, 64, 8, 8), (3, 64, 4, 4), 2, (2, 2)) == "_conv_polyphase"
    assert choice((short, 64, 8, 8), (3, 64, 1, 1), 1, (2, 2)) == "_conv_polyphase"  # 1 tap/phase
    assert choice((short, 64, 8, 8), (64, 64, 3, 3), 1, (2, 2)) == "_conv_polyphase"  # as much data
    # without input dilation the same data rule: LeNet's input gradient scatters, a full
    # correlation into more channels than it reads gathers
    assert choice((short, 32, 8, 8), (16, 32, 5, 5), 4, (1, 1)) == "_conv_scatter_batch_last"
    assert choice((short, 8, 24, 24), (32, 8, 5, 5), 4, (1, 1)) == "_conv_batch_first"
