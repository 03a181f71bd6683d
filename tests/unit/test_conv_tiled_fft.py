"""Tiled FFT convolution (passes/tiled_fft.py): overlap-save for the forward and (in
convolution form) the input gradient, kernel tiles for the weight gradient; against the
direct definition."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError
from funconv.ir import Apply
from funconv.ops.conv import conv_general_p
from funconv.ops.fft import fft_p
from funconv.ops.shape import concatenate_p
from funconv.passes import tiled_fft

rng = np.random.default_rng(11)


@pytest.fixture
def force():
    def set_(name):
        fc.config.update("conv_force_algorithm", name)

    yield set_
    fc.config.update("conv_force_algorithm", None)


def _prims(graph, prim):
    return [n for n in graph.nodes() if isinstance(n, Apply) and n.prim is prim]


def _step(x, w, **kw):
    loss = lambda x, w: (conv_general_p(x, w, **kw) ** 2).sum()  # noqa: E731
    return fc.jit(fc.value_and_grad(loss, argnums=(0, 1)))


def _check(got, ref, dtype):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    tol = 1e-12 if dtype == np.float64 else 2e-6 + 5e-7 * np.log10(ref.size)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= tol * np.abs(ref).max()


# (x spatial, kernel spatial, stride, padding, lhs dilation, rhs dilation, groups); long
# enough along every axis for several tiles
CASES = [
    ((300,), (9,), (1,), ((4, 4),), (1,), (1,), 1),
    ((257,), (12,), (3,), ((5, 2),), (1,), (1,), 1),  # stride, uneven padding
    ((200,), (7,), (1,), ((-2, 6),), (1,), (2,), 2),  # negative padding, dilation, groups
    ((120,), (5,), (1,), ((3, 3),), (2,), (1,), 1),  # input dilation (conv_transpose-like)
    ((70, 64), (5, 7), (1, 1), ((2, 3), (3, 3)), (1, 1), (1, 1), 1),
    ((66, 80), (6, 4), (2, 1), ((1, 4), (0, 2)), (1, 1), (1, 2), 2),
    ((30, 26, 28), (4, 3, 5), (1, 1, 1), ((1, 2), (1, 1), (2, 2)), (1, 1, 1), (1, 1, 1), 1),
    # the kernel longer than the output along one axis: that axis is one tile
    ((60, 6), (3, 9), (1, 1), ((1, 1), (0, 4)), (1, 1), (1, 1), 1),
    ((1, 1, 1), (1, 1, 2), (1, 1, 1), ((0, 0), (0, 0), (0, 1)), (1, 1, 1), (1, 1, 1), 1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{len(c[0])}d-{c[0]}-{c[1]}")
def test_training_step_matches_the_direct_definition(force, dtype, case):
    xs, ks, s, pad, ld, rd, G = case
    N, C, O = 2, 2 * G, 3 * G
    x = rng.standard_normal((N, C) + xs).astype(dtype)
    w = rng.standard_normal((O, C // G) + ks).astype(dtype)
    kw = dict(window_strides=s, padding=pad, lhs_dilation=ld, rhs_dilation=rd,
              feature_group_count=G)
    force("tiled_fft")
    f = _step(x, w, **kw)
    graph = f.lower(x, w).graph
    assert not _prims(graph, conv_general_p)
    got = fc.tree.leaves(f(x, w))
    force("direct")
    ref = fc.tree.leaves(_step(x, w, **kw)(x.astype(np.float64), w.astype(np.float64)))
    for a, b in zip(got, ref):
        _check(a, b, dtype)


def test_tiles_are_used_and_input_tile_spectra_are_shared(force):
    """A long 1-d filter: the three convolutions by tiles; the overlapping input tiles built
    (a concatenation) and transformed once for the forward and the weight gradient; the
    cotangent's overlapping tiles for the input gradient, its disjoint ones for the weight
    gradient; the kernel transformed once (the input gradient in convolution form)."""
    x = rng.standard_normal((1, 4, 3000)).astype(np.float32)
    w = rng.standard_normal((4, 4, 101)).astype(np.float32)
    force("tiled_fft")
    graph = _step(x, w, window_strides=(1,), padding=((50, 50),), lhs_dilation=(1,),
                  rhs_dilation=(1,), feature_group_count=1).lower(x, w).graph
    assert len(_prims(graph, concatenate_p)) == 2  # x's tiles (once) and the cotangent's
    tiled = [n for n in _prims(graph, fft_p)
             if n.params["fft_type"] == "rfft" and n.type.ndim == 4]  # (tiles, N, C, freqs)
    assert len({id(n) for n in tiled}) == 3  # x's tiles (shared), the cotangent's two kinds
    kernel = [n for n in _prims(graph, fft_p) if n.params["fft_type"] == "rfft" and n.type.ndim == 3]
    assert len({id(n) for n in kernel}) == 1
    n_t, = tiled_fft.tile_sizes(1, 4, 4, (101,), (3000,))
    assert n_t < 3000 and all(n.params["fft_lengths"] == (n_t,) for n in tiled)


def test_auto_picks_tiles_for_a_long_filter_only():
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    g = _step(z(1, 16, 4096), z(16, 16, 257), window_strides=(1,), padding=((128, 128),),
              lhs_dilation=(1,), rhs_dilation=(1,), feature_group_count=1).lower(
        z(1, 16, 4096), z(16, 16, 257)).graph
    assert _prims(g, concatenate_p)
    g = _step(z(4, 8, 128, 128), z(8, 8, 11, 11), window_strides=(1, 1),
              padding=((5, 5), (5, 5)), lhs_dilation=(1, 1), rhs_dilation=(1, 1),
              feature_group_count=1).lower(z(4, 8, 128, 128), z(8, 8, 11, 11)).graph
    assert not _prims(g, concatenate_p)  # conv11: the whole-image FFT


def test_forced_tiles_say_why_not():
    xc = np.zeros((1, 1, 40), np.complex64)
    with pytest.raises(ArgumentError, match="tiled_fft.*complex"):
        fc.jit(lambda x, w: fc.conv(x, w, algorithm="tiled_fft"))(xc, xc[:, :, :5])
