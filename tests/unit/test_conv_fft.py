"""FFT convolution (funconv/passes/conv.py, "fft"): the rewrite's shape of graph, shared
spectra in a training step (FFT nodes counted), the "auto" choice by the cost model
(funconv/passes/conv_cost.py) and its calibration cache. Accuracy against the definition
over random configurations is tests/property/test_conv.py's."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError
from funconv.ir import Const
from funconv.ops.conv import conv_general_p
from funconv.ops.fft import fft_p
from funconv.ops.linalg import dot_general_p
from funconv.ops.shape import concatenate_p
from funconv.passes import conv as conv_pass
from funconv.passes import conv_cost

rng = np.random.default_rng(0)


def _prims(graph, prim):
    return [n for n in graph.nodes() if getattr(n, "prim", None) is prim]


def _ffts(graph):
    kinds = [n.params["fft_type"] for n in _prims(graph, fft_p)]
    return kinds.count("rfft"), kinds.count("irfft")


def _train_graph(x, w, **kw):
    loss = lambda x, w: (fc.conv(x, w, **kw) ** 2).sum()
    f = fc.jit(fc.value_and_grad(loss, argnums=(0, 1)))
    return f, f.lower(x, w).graph


@pytest.fixture
def force_fft():
    fc.config.update("conv_force_algorithm", "fft")
    yield
    fc.config.update("conv_force_algorithm", None)


def test_smooth_size():
    assert [conv_pass.smooth_size(n) for n in (1, 11, 13, 17, 97, 138, 1025)] == \
        [1, 12, 14, 18, 98, 140, 1029]


def test_fft_size_prefers_fast_radices_from_128():
    """pocketfft runs 2s and 3s fastest (conv_cost.radix_factor): conv11's 138 samples get
    144 = 2^4 3^2, not 140 = 2^2 5 7; blur31's 542 get 576, not 560. Within 15% of n; below
    RADIX_MIN the least smooth length."""
    assert [conv_pass.fft_size(n) for n in (138, 542, 1000)] == [144, 576, 1024]
    for n in (3, 11, 75, 97, 127):
        assert conv_pass.fft_size(n) == conv_pass.smooth_size(n)
    for n in range(128, 3000, 37):
        m = conv_pass.fft_size(n)
        assert n <= m <= max(conv_pass.smooth_size(n), 1.15 * n)
        assert conv_pass.smooth_size(m) == m


@pytest.mark.parametrize("kw, shapes, want", [
    # "same" padding (k-1)/2: x, w and the cotangent once each, three inverses
    ({"padding": 2}, ((2, 3, 16, 16), (4, 3, 5, 5)), (3, 3)),
    # any non-negative padding, stride, dilation and groups share too (docstring of the rewrite)
    ({"padding": 0}, ((2, 3, 16, 16), (4, 3, 5, 5)), (3, 3)),
    ({"padding": ((1, 3), (0, 2)), "stride": 2}, ((2, 3, 17, 16), (4, 3, 5, 5)), (3, 3)),
    ({"padding": 2, "dilation": 2, "groups": 3}, ((2, 3, 16, 16), (6, 1, 3, 3)), (3, 3)),
    ({"padding": 1}, ((2, 2, 6, 7, 8), (2, 2, 3, 3, 3)), (3, 3)),
    # negative padding: the input gradient needs its own placement of the cotangent and kernel
    # (the kernel's pruned transform shares its row stage, an rfft along the last axis of
    # equal length: 4 rffts, where the unpruned 2-d transforms needed 5)
    ({"padding": (-1, 2)}, ((2, 3, 16, 16), (4, 3, 5, 5)), (4, 3)),
])
def test_training_step_shares_spectra(force_fft, kw, shapes, want):
    x, w = (rng.standard_normal(s) for s in shapes)
    f, graph = _train_graph(x, w, **kw)
    assert not _prims(graph, conv_general_p)  # every convolution was rewritten
    assert _ffts(graph) == want
    fc.config.update("conv_force_algorithm", "direct")
    ref = fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, **kw) ** 2).sum(),
                                   argnums=(0, 1)))(x, w)
    fc.config.update("conv_force_algorithm", "fft")
    for a, b in zip(fc.tree.leaves(f(x, w)), fc.tree.leaves(ref)):
        a, b = np.asarray(a), np.asarray(b)
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()


def test_auto_keeps_im2col_for_small_windows_and_picks_fft_for_large_ones():
    z = lambda *s: np.zeros(s, np.float32)
    cases = [((16, 64, 32, 32), (64, 64, 3, 3), 1, "im2col"),  # bench conv3x3
             ((64, 1, 28, 28), (16, 1, 5, 5), 0, "im2col"),  # LeNet's layers
             ((64, 16, 12, 12), (32, 16, 5, 5), 0, "im2col"),
             ((4, 8, 128, 128), (8, 8, 11, 11), 5, "fft"),  # bench conv11
             ((1, 16, 4096), (16, 16, 257), 128, "tiled_fft")]  # a long 1-d filter
    for xs, ws, pad, want in cases:
        _, graph = _train_graph(z(*xs), z(*ws), padding=pad)
        if want == "fft":
            assert not _prims(graph, conv_general_p) and _ffts(graph) == (3, 3), xs
            assert not _prims(graph, concatenate_p)
        elif want == "tiled_fft":
            # all three by tiles: rfft of x's tiles (shared by the forward and the weight
            # gradient), of the kernel (shared by the forward and the input gradient, in
            # convolution form), of the cotangent's disjoint and overlapping tiles; three
            # inverses
            assert not _prims(graph, conv_general_p) and _prims(graph, concatenate_p), xs
            assert _ffts(graph) == (4, 3), xs
        else:
            assert [n.params["algorithm"] for n in _prims(graph, conv_general_p)] == ["im2col"] * 3


def test_forced_fft_shows_in_the_printed_graph_and_profile_names_the_user_line():
    x, w = rng.standard_normal((1, 2, 20, 20)), rng.standard_normal((3, 2, 7, 7))
    f = fc.jit(lambda x, w: fc.conv(x, w, padding=3, algorithm="fft"))
    text = str(f.lower(x, w).graph)
    assert "fft_type='rfft'" in text and "fft_type='irfft'" in text and "conv_general" not in text
    # every emitted node carries the conv's source line
    assert all("test_conv_fft.py" in str(n.source) for n in f.lower(x, w).graph.nodes()
               if getattr(n, "prim", None) is not None)


def test_forced_fft_on_complex_operands_raises_saying_why():
    x = (rng.standard_normal((1, 1, 8)) + 1j).astype(np.complex64)
    w = (rng.standard_normal((1, 1, 3)) + 1j).astype(np.complex64)
    f = fc.jit(lambda x, w: fc.conv(x, w, algorithm="fft"))
    with pytest.raises(ArgumentError, match="algorithm='fft' cannot compute this convolution: "
                                            "its operands are complex"):
        f.lower(x, w)
    # "auto" falls back to im2col
    np.testing.assert_allclose(np.asarray(fc.jit(lambda x, w: fc.conv(x, w))(x, w)),
                               np.asarray(fc.conv(x, w, algorithm="direct")), rtol=1e-5)


def test_float64_computes_in_complex128():
    x, w = rng.standard_normal((1, 1, 30)), rng.standard_normal((1, 1, 9))
    graph = fc.jit(lambda x, w: fc.conv(x, w, algorithm="fft")).lower(x, w).graph
    assert {str(n.type.dtype) for n in _prims(graph, fft_p)} == {"complex128", "float64"}


# --- the cost model's rates: defaults, calibration, the cache ----------------------------------


@pytest.fixture
def calibration(tmp_path, monkeypatch):
    """Calibration on, into a temporary cache, with a fast fake measurement."""
    path = str(tmp_path / "sub" / "conv_rates.json")
    fake = conv_cost.Rates(gemm=1e10, mixing=2e10, fft=3e10, bandwidth=4e10)
    calls = []
    monkeypatch.setattr(conv_cost, "cache_path", lambda: path)
    monkeypatch.setattr(conv_cost, "measure", lambda: calls.append(1) or fake)
    monkeypatch.setattr(conv_cost, "_RATES", None)
    # an idle machine: at a load average >= the cores (a benchmark beside the suite) rates()
    # returns the defaults and measures nothing (test_busy_machine_defers_calibration)
    monkeypatch.setattr(conv_cost, "_busy", lambda: False)
    fc.config.update("conv_calibration", True)
    yield path, fake, calls
    fc.config.update("conv_calibration", False)


def test_calibration_off_uses_the_documented_defaults():
    assert conv_cost.rates() == conv_cost.DEFAULT_RATES


def test_busy_machine_defers_calibration(calibration, monkeypatch):
    _, fake, calls = calibration
    monkeypatch.setattr(conv_cost, "_busy", lambda: True)
    assert conv_cost.rates() == conv_cost.DEFAULT_RATES and calls == []
    monkeypatch.setattr(conv_cost, "_busy", lambda: False)
    assert conv_cost.rates() == fake and calls == [1]


def test_calibration_is_measured_once_and_cached_atomically(calibration):
    path, fake, calls = calibration
    assert conv_cost.rates() == fake and calls == [1]
    with open(path) as fh:
        data = json.load(fh)
    assert data["machine"] == conv_cost.machine() and data["rates"]["fft"] == 3e10
    conv_cost._RATES = None  # a new process: reads the file, measures nothing
    assert conv_cost.rates() == fake and calls == [1]
    import os

    assert [f for f in os.listdir(os.path.dirname(path))] == ["conv_rates.json"]  # no temp left


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 1, "rates": {}}),
                                     "foreign", json.dumps({"format": 1, "machine": {},
                                                            "rates": {"gemm": -1}})])
def test_corrupt_or_foreign_calibration_is_rebuilt_with_a_warning(calibration, content):
    path, fake, calls = calibration
    import os

    os.makedirs(os.path.dirname(path))
    if content == "foreign":
        content = json.dumps({"format": conv_cost.FORMAT, "machine": {"cpus": -1},
                              "rates": {"gemm": 1, "mixing": 1, "fft": 1, "bandwidth": 1}})
    with open(path, "w") as fh:
        fh.write(content)
    with pytest.warns(RuntimeWarning, match="measuring again"):
        assert conv_cost.rates() == fake
    assert calls == [1]
    conv_cost._RATES = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert conv_cost.rates() == fake  # the rebuilt file is good


def test_measure_is_quick_and_positive():
    import time

    t0 = time.perf_counter()
    r = conv_cost.measure()
    assert time.perf_counter() - t0 < 5
    assert all(v > 0 for v in (r.gemm, r.mixing, r.fft, r.bandwidth))


# --- pruned transforms, untransformed axes, folded spectra, costed separable --------------------


def _kinds(graph):
    return [(n.params["fft_type"], n.params["fft_lengths"], n.args[0].type.shape)
            for n in _prims(graph, fft_p)]


def _check(got, ref, dtype):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    tol = 1e-12 if dtype == np.float64 else 2e-6 + 5e-7 * np.log10(ref.size)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= tol * np.abs(ref).max()


@pytest.mark.parametrize("by_gemm", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_step_prunes_the_kernel_transform_and_the_weight_gradient_inverse(
        force_fft, dtype, by_gemm, monkeypatch):
    # conv11's shape class, smaller: an 11x11 kernel in a 48-point period
    x = rng.standard_normal((2, 3, 38, 38)).astype(dtype)
    w = rng.standard_normal((4, 3, 11, 11)).astype(dtype)
    if not by_gemm:  # (the model picks the DFT-matrix GEMM here; force the pruned FFTs)
        monkeypatch.setattr(conv_cost, "dft_by_gemm", lambda n, e: False)
    assert conv_cost.dft_by_gemm(48, 11) == by_gemm
    f, graph = _train_graph(x, w, padding=5)
    # (the leading axes' order is the layout's business: spectra are frequency-major)
    kinds = [(t, n, s[-1], tuple(sorted(s[:-1]))) for t, n, s in _kinds(graph)]
    # the kernel: rfft along the last axis of its 11 rows only, then the column transform;
    # the weight gradient: the complex inverse along the rows, then irfft of the 11 kept rows
    assert ("rfft", (48,), 48, (3, 4, 11)) in kinds
    assert ("irfft", (48,), 25, (3, 4, 11)) in kinds
    dft = sorted(n.args[0].type.shape for n in _prims(graph, dot_general_p)
                 if isinstance(n.args[0], Const))
    if by_gemm:  # both as one GEMM with a constant DFT matrix (48 x 11, and 11 x 48)
        assert dft == [(11, 48), (48, 11)]
        assert not any(t in ("fft", "ifft") for t, *_ in kinds)
    else:
        assert dft == []
        assert ("fft", (48,), 48, (3, 4, 25)) in kinds and ("ifft", (48,), 48, (3, 4, 25)) in kinds
    assert _ffts(graph) == (3, 3)  # still x, w and the cotangent once each; three inverses
    fc.config.update("conv_force_algorithm", "direct")
    ref = fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=5) ** 2).sum(),
                                   argnums=(0, 1)))(x.astype(np.float64), w.astype(np.float64))
    fc.config.update("conv_force_algorithm", "fft")
    for a, b in zip(fc.tree.leaves(f(x, w))[1:], fc.tree.leaves(ref)[1:]):
        _check(a, b, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_weight_gradient_mixes_by_a_summed_product(force_fft, dtype):
    """A depthwise training step (dw31's shape class): the weight gradient's mixing is a
    product summed over the batch, with no batched GEMM at all (each of its per-frequency
    products would be 1 x N x 1), and the three convolutions still share their spectra."""
    x = rng.standard_normal((3, 4, 20, 20)).astype(dtype)
    w = rng.standard_normal((4, 1, 7, 7)).astype(dtype)
    f, graph = _train_graph(x, w, padding=3, groups=4)
    assert _ffts(graph) == (3, 3)
    batched = [n for n in _prims(graph, dot_general_p) if n.params["dimension_numbers"][1][0]]
    assert batched == []
    fc.config.update("conv_force_algorithm", "direct")
    ref = fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=3, groups=4) ** 2).sum(),
                                   argnums=(0, 1)))(x.astype(np.float64), w.astype(np.float64))
    fc.config.update("conv_force_algorithm", "fft")
    for a, b in zip(fc.tree.leaves(f(x, w)), fc.tree.leaves(ref)):
        _check(a, b, dtype)


@pytest.mark.parametrize("ks", [(1, 9), (9, 1), (1, 1, 7), (5, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axes_of_one_tap_are_not_transformed(ks, dtype):
    """A 1 x k (row) or k x 1 (column) kernel: 1-d transforms along the kernel's long axis
    only; stride, padding (negative too), and input dilation along the one-tap axes are a
    placement and a subsample."""
    nd = len(ks)
    x = rng.standard_normal((2, 2) + (13,) * nd).astype(dtype)
    w = rng.standard_normal((3, 2) + ks).astype(dtype)
    params = {"window_strides": (2,) + (1,) * (nd - 1), "padding": ((-1, 3),) + ((4, 2),) * (nd - 1),
              "lhs_dilation": (1,) * (nd - 1) + (2,), "rhs_dilation": (1,) * nd}
    f = fc.jit(lambda x, w: conv_general_p(x, w, feature_group_count=1, algorithm="fft", **params))
    graph = f.lower(x, w).graph
    assert all(len(k[1]) == 1 for k in _kinds(graph))  # one transformed axis
    ref = conv_general_p(fc.asarray(x.astype(np.float64)), fc.asarray(w.astype(np.float64)),
                         feature_group_count=1,
                         algorithm="direct", **params)
    _check(f(x, w), ref, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_constant_kernels_spectrum_is_folded(dtype):
    k = rng.standard_normal((2, 3, 9, 9)).astype(dtype)  # full rank: no separable rewrite
    x = rng.standard_normal((1, 3, 40, 40)).astype(dtype)
    f = fc.jit(lambda x: fc.conv(x, k, padding=4, algorithm="fft"))
    graph = f.lower(x).graph
    assert _ffts(graph) == (1, 1) and [t[0] for t in _kinds(graph)] == ["rfft", "irfft"]
    _check(f(x), fc.conv(x.astype(np.float64), k.astype(np.float64), padding=4,
                         algorithm="direct"), dtype)
    # a spectrum over MAX_FOLDED_BYTES (8*8*n*(n/2+1) complex, n = fft_size(308) = 324) is
    # finished at run time: the kernel's row stage (9 rows) is folded, its column transform
    # (a DFT-matrix GEMM) is not
    big = rng.standard_normal((8, 8, 9, 9)).astype(dtype)
    xb = rng.standard_normal((1, 8, 300, 300)).astype(dtype)
    gb = fc.jit(lambda x: fc.conv(x, big, padding=4, algorithm="fft")).lower(xb).graph
    assert [t[0] for t in _kinds(gb)] == ["rfft", "irfft"]
    (col,) = _prims(gb, dot_general_p)[:1]
    n = conv_pass.fft_size(308)
    assert col.args[0].type.shape == (n, 9) and isinstance(col.args[1], Const)
    assert sorted(col.args[1].type.shape) == [8, 8, 9, n // 2 + 1]


def test_separable_competes_on_cost_with_the_whole_kernel():
    """"auto" on a constant rank-1 kernel: the rewrite is taken only where its two passes
    (each at its cheapest) are estimated faster than the whole kernel's cheapest lowering."""
    from funconv.passes import fold_constants

    g1 = np.exp(-0.5 * (np.arange(31) - 15) ** 2 / 25)
    for size, k in ((512, 31), (64, 31), (200, 9)):
        kern = np.outer(g1[:k], g1[:k]).astype(np.float32)[None, None]
        img = np.zeros((1, 1, size, size), np.float32)
        graph = fold_constants(fc.make_graph(lambda x: fc.conv(x, kern, padding=k // 2))(img))  # noqa: B023 (traced at once)
        node = _prims(graph, conv_general_p)[0]
        costs = {a.name: a.cost(node) for a in conv_pass.AUTO
                 if a.cost is not None and a.why_not(node) is None}
        assert set(costs) == {"separable", "fft", "tiled_fft", "im2col", "helix"}  # (Winograd: 3x3 only)
        assert conv_pass.choose(node).name == min(costs, key=costs.get)
        row, col = conv_pass.separable.hypothetical(node)
        assert costs["separable"] == pytest.approx(conv_pass._auto_seconds(row)
                                                   + conv_pass._auto_seconds(col))
