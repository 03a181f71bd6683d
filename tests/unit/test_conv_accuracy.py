"""Accuracy of every convolution algorithm (funconv/passes/conv.py's ALGORITHMS) over random
configurations, against the reference impl evaluated by the interpreter (the oracle), and
every algorithm's applicability rules (forcing one that cannot compute a convolution raises
an ArgumentError saying why).

Tolerances (max |got - ref| / max |ref|, ref in float64): float64 1e-12; float32
2e-6 + 5e-7 log10(N) (N: the output's size; the FFT issue's, ../shared/notes/fft-conv.md
section 7); Winograd F(4x4,3x3) in float32 `WINOGRAD4_FLOAT32_FACTOR` times that (its error
is 7-9x im2col's, passes/winograd.py). "tiled_fft" is tested when it exists."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.errors import ArgumentError
from funconv.ops.conv import conv_general_p
from funconv.passes import conv as conv_pass
from funconv.passes import winograd

ALL = ("im2col", "fft", "tiled_fft", "helix", "separable", "winograd", "winograd4")


def _tolerance(algorithm: str, dtype, size: int) -> float:
    if dtype == np.float64:
        return 1e-12
    tol = 2e-6 + 5e-7 * np.log10(size)
    return tol * (winograd.WINOGRAD4_FLOAT32_FACTOR if algorithm == "winograd4" else 1)


def _reference(x, w, params):
    """The reference impl through the interpreter, in float64."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    graph = fc.make_graph(lambda x, w: conv_general_p(x, w, algorithm="direct", **params))(x, w)
    return evaluate(graph, [x, w])[0]


def _draw(data, algorithm, rng):
    """A random configuration `algorithm` applies to: (x, w, params, constant kernel?)."""
    d = lambda s, label: data.draw(s, label=label)  # noqa: E731
    if algorithm.startswith("winograd"):
        nd, ks = 2, (3, 3)
    else:
        nd = d(st.integers(1 if algorithm not in ("helix", "separable") else 2, 3), "nd")
        ks = tuple(d(st.integers(2 if algorithm == "separable" else 1, 4 if nd < 3 else 3), f"k{i}")
                   for i in range(nd))
    G = d(st.integers(1, 2), "groups")
    Cg, Og, N = d(st.integers(1, 3), "cg"), d(st.integers(1, 3), "og"), d(st.integers(1, 2), "n")
    plain = algorithm.startswith("winograd")
    stride = (1,) * nd if plain else tuple(d(st.integers(1, 2), f"s{i}") for i in range(nd))
    rdil = (1,) * nd if plain else tuple(d(st.integers(1, 2), f"rd{i}") for i in range(nd))
    ldil = (1,) * nd if plain or algorithm == "separable" else \
        tuple(d(st.integers(1, 2), f"ld{i}") for i in range(nd))
    ins = tuple(d(st.integers(1, 12 if nd < 3 else 6), f"in{i}") for i in range(nd))
    pad = tuple((d(st.integers(-1, 3), f"lo{i}"), d(st.integers(-1, 3), f"hi{i}")) for i in range(nd))
    for i in range(nd):  # at least one output per axis
        span = (ins[i] - 1) * ldil[i] + 1 + pad[i][0] + pad[i][1]
        if span < (ks[i] - 1) * rdil[i] + 1:
            return None
    dtype = d(st.sampled_from([np.float32, np.float64]), "dtype")
    x = rng.standard_normal((N, Cg * G) + ins).astype(dtype)
    if algorithm == "separable":  # a constant kernel of rank 1 or 2 along its last axis
        r = d(st.integers(1, min(2, ks[-1] - 1)), "rank")
        w = np.tensordot(rng.standard_normal((Og * G, Cg) + ks[:-1] + (r,)),
                         rng.standard_normal((r, ks[-1])), axes=(-1, 0)).astype(dtype)
    else:
        w = rng.standard_normal((Og * G, Cg) + ks).astype(dtype)
    params = dict(window_strides=stride, padding=pad, lhs_dilation=ldil, rhs_dilation=rdil,
                  feature_group_count=G)
    return x, w, params


@pytest.mark.parametrize("algorithm", ALL)
@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_every_algorithm_matches_the_reference(algorithm, data):
    if algorithm not in conv_pass.ALGORITHMS:
        pytest.skip(f"{algorithm!r} is not implemented on this branch")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16), label="seed"))
    drawn = _draw(data, algorithm, rng)
    if drawn is None:
        return
    x, w, params = drawn
    if algorithm == "separable":  # the kernel closed over: a compile-time constant
        wc = fc.asarray(w)
        f = fc.jit(lambda x: conv_general_p(x, wc, algorithm=algorithm, **params))
        got = np.asarray(f(x))
    else:
        f = fc.jit(lambda x, w: conv_general_p(x, w, algorithm=algorithm, **params))
        got = np.asarray(f(x, w))
    ref = _reference(x, w, params)
    assert got.shape == ref.shape and got.dtype == x.dtype
    err = np.abs(got.astype(np.float64) - ref).max() / (np.abs(ref).max() or 1.0)  # (all padding: 0)
    assert err <= _tolerance(algorithm, x.dtype, ref.size), (algorithm, err)


def test_winograd4_float32_error_is_several_times_im2cols_and_within_its_tolerance():
    """The documented claim (passes/winograd.py): F(4x4,3x3) in float32 is several times
    less accurate than im2col; F(2x2,3x3) is not."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 32, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 32, 3, 3)).astype(np.float32)
    params = dict(window_strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
                  rhs_dilation=(1, 1), feature_group_count=1)
    ref = _reference(x, w, params)
    errs = {}
    for alg in ("im2col", "winograd", "winograd4"):
        got = np.asarray(fc.jit(lambda x, w: conv_general_p(x, w, algorithm=alg, **params))(x, w))
        errs[alg] = np.abs(got - ref).max() / np.abs(ref).max()
    assert errs["winograd"] < 3 * errs["im2col"]
    assert 3 * errs["im2col"] < errs["winograd4"] <= _tolerance("winograd4", np.float32, ref.size)


# --- applicability: forcing an algorithm that cannot compute the convolution -----------------------

# (algorithm, x shape, w shape, conv keywords, constant kernel?, what the error says)
INAPPLICABLE = [
    ("winograd", (1, 2, 8, 8), (3, 2, 5, 5), {}, False, "kernel is 5x5, not 3x3"),
    ("winograd", (1, 2, 8, 8), (3, 2, 3, 3), {"stride": 2}, False, "it is strided"),
    ("winograd", (1, 2, 8, 8), (3, 2, 3, 3), {"dilation": 2}, False, "it is dilated"),
    ("winograd", (1, 2, 8), (3, 2, 3), {}, False, "it is 1-d"),
    ("winograd4", (1, 2, 6, 6, 6), (3, 2, 3, 3, 3), {}, False, "it is 3-d"),
    ("helix", (1, 2, 30), (3, 2, 5), {}, False, "one-dimensional already"),
    ("separable", (1, 1, 8, 8), (1, 1, 3, 3), {}, False, "not a compile-time constant"),
    ("separable", (1, 1, 8, 8), "full rank", {}, True, "full rank"),
    ("separable", (1, 1, 8), (1, 1, 3), {}, True, "one-dimensional already"),
]


@pytest.mark.parametrize("algorithm, xs, ws, kw, constant, why", INAPPLICABLE)
def test_forcing_an_inapplicable_algorithm_raises_saying_why(algorithm, xs, ws, kw, constant, why):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal((1, 1, 3, 3)) if ws == "full rank" else np.ones(ws)).astype(np.float32)
    if constant:
        f, args = fc.jit(lambda x: fc.conv(x, w, algorithm=algorithm, **kw)), (x,)
    else:
        f, args = fc.jit(lambda x, w: fc.conv(x, w, algorithm=algorithm, **kw)), (x, w)
    with pytest.raises(ArgumentError, match=f"algorithm={algorithm!r} cannot compute this "
                                            f"convolution: .*{why}"):
        f.lower(*args)


def test_fft_on_complex_operands_and_the_universal_ones():
    """"fft" needs real operands; "direct" and "im2col" compute every convolution (complex,
    3-d, strided, input-dilated), and Winograd and helix take complex operands too."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((1, 2, 7, 6)) + 1j * rng.standard_normal((1, 2, 7, 6))).astype(np.complex128)
    w = (rng.standard_normal((2, 2, 3, 3)) + 1j).astype(np.complex128)
    with pytest.raises(ArgumentError, match="its operands are complex"):
        fc.jit(lambda x, w: fc.conv(x, w, algorithm="fft")).lower(x, w)
    ref = np.asarray(fc.conv(x, w, padding=1, algorithm="direct"))
    for alg in ("im2col", "winograd", "winograd4", "helix"):
        got = np.asarray(fc.jit(lambda x, w: fc.conv(x, w, padding=1, algorithm=alg))(x, w))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max(), err_msg=alg)


def test_every_forceable_name_is_accepted_by_the_wrappers_and_unknown_ones_are_not():
    from funconv.ops.conv import ALGORITHMS

    assert set(conv_pass.ALGORITHMS) | {"auto"} == set(ALGORITHMS)
    with pytest.raises(ArgumentError, match="unknown algorithm 'winograd8'"):
        fc.conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), algorithm="winograd8")
