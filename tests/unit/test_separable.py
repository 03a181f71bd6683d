"""Separable (low-rank) convolution: constant kernels of low numerical rank become a row
pass and a column pass (funconv/passes/separable.py), exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.passes import separable


def _convs(graph):
    return [n for n in graph.applies() if n.prim.name == "conv_general"]


def _gaussian(k, sigma):
    g = np.exp(-0.5 * (np.arange(k) - (k - 1) / 2) ** 2 / sigma ** 2)
    return g / g.sum()


KERNELS = {
    "gaussian": np.outer(_gaussian(7, 1.5), _gaussian(7, 1.5)),
    "box": np.full((5, 5), 1 / 25),
    "sobel": np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_one_kernels_become_two_passes(name, dtype):
    k = KERNELS[name].astype(dtype)[None, None]
    x = np.random.default_rng(0).standard_normal((2, 1, 20, 23)).astype(dtype)
    pad = k.shape[-1] // 2
    f = fc.jit(lambda x: fc.conv(x, k, padding=pad))
    convs = _convs(f.lower(x).graph)
    assert [c.args[1].shape[2:] for c in convs] == [(1, k.shape[-1]), (k.shape[-2], 1)]
    want = np.asarray(fc.conv(x, k, padding=pad, algorithm="direct"))
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(np.asarray(f(x)), want, atol=tol * np.abs(want).max())


def test_forced_on_a_learned_kernel_raises():
    x = np.ones((1, 1, 8, 8), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    f = fc.jit(lambda x, w: fc.conv(x, w, algorithm="separable"))
    with pytest.raises(fc.errors.ArgumentError, match="not a compile-time constant"):
        f(x, w)


def test_forced_on_a_full_rank_kernel_raises_and_auto_keeps_it_whole():
    k = np.random.default_rng(1).standard_normal((1, 1, 5, 5)).astype(np.float32)
    x = np.ones((1, 1, 12, 12), np.float32)
    with pytest.raises(fc.errors.ArgumentError, match="full rank \\(5\\)"):
        fc.jit(lambda x: fc.conv(x, k, algorithm="separable"))(x)
    convs = _convs(fc.jit(lambda x: fc.conv(x, k)).lower(x).graph)
    assert len(convs) == 1 and convs[0].params["algorithm"] == "im2col"


def test_gradient_through_a_separable_blur():
    k = KERNELS["gaussian"].astype(np.float64)[None, None]
    x = np.random.default_rng(2).standard_normal((1, 1, 16, 16))
    loss = lambda x: fc.sum(fc.conv(x, k, padding=3) ** 2)
    g = fc.jit(fc.grad(loss))
    # the forward and the input gradient's convolution are both factored (its kernel, the
    # flipped constant, is constant too); the weight gradient is not needed
    assert len(_convs(g.lower(x).graph)) == 4
    np.testing.assert_allclose(np.asarray(g(x)), np.asarray(fc.grad(loss)(x)), rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_matches_the_direct_definition(data):
    """Random low-rank kernels in 2-d and 3-d, with channels, groups, strides, padding
    (negative too) and dilation, in float64, against the reference impl."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    nd = data.draw(st.sampled_from([2, 3]))
    G = data.draw(st.sampled_from([1, 2]))
    Cg, Og = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    ksp = tuple(data.draw(st.integers(2, 4)) for _ in range(nd))
    r = data.draw(st.integers(1, min(2, ksp[-1] - 1)))
    # W = sum_i A_i (x) V_i along the last axis, rank r
    a = rng.standard_normal((Og * G, Cg) + ksp[:-1] + (r,))
    v = rng.standard_normal((r, ksp[-1]))
    w = np.tensordot(a, v, axes=(-1, 0))
    insp = tuple(data.draw(st.integers(k + 2, k + 7)) for k in ksp)
    x = rng.standard_normal((2, Cg * G) + insp)
    stride = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    dil = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    pad = tuple((data.draw(st.integers(-1, 2)), data.draw(st.integers(0, 2))) for _ in range(nd))
    if any(i + lo + hi < (k - 1) * d + 1 for i, (lo, hi), k, d in zip(insp, pad, ksp, dil)):
        return
    f = lambda x, alg: fc.conv(x, w, stride=stride, padding=pad, dilation=dil, groups=G,
                               algorithm=alg)
    jitted = fc.jit(lambda x: f(x, "separable"))
    assert len(_convs(jitted.lower(x).graph)) >= 2
    want = np.asarray(f(x, "direct"))
    np.testing.assert_allclose(np.asarray(jitted(x)), want, atol=1e-11 * max(1, np.abs(want).max()))


def test_factor_is_exact_to_rounding_and_finds_the_rank():
    rng = np.random.default_rng(3)
    w = np.tensordot(rng.standard_normal((4, 3, 5, 2)), rng.standard_normal((2, 6)), axes=(-1, 0))
    a, v = separable.factor(w.astype(np.float32))
    assert v.shape == (2, 6)
    np.testing.assert_allclose(np.tensordot(a, v, axes=(-1, 0)), w, rtol=0, atol=1e-5 * np.abs(w).max())
