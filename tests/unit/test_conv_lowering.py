"""The convolution pass (funconv/passes/conv.py): the algorithm of every conv_general node
is chosen once, recorded on the node (so the printed graph and the generated code show
it) or rewritten (a 1x1 convolution as dot_general); a forced choice is honoured, and an
impossible or unknown one raises in the user's terms."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import funconv as fc
from funconv import passes
from funconv.errors import ArgumentError
from funconv.ops.conv import ALGORITHMS, conv_general_p
from funconv.ops.linalg import dot_general_p
from funconv.passes import conv as conv_pass

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
w1 = rng.standard_normal((5, 3, 1, 1)).astype(np.float32)


def _convs(graph):
    return [n for n in graph.nodes() if getattr(n, "prim", None) is conv_general_p]


def _step(algorithm, **kw):
    loss = lambda x, w: (fc.conv(x, w, algorithm=algorithm, **kw) ** 2).sum()
    return fc.value_and_grad(loss, argnums=(0, 1))


def test_algorithm_param_shows_in_the_graph_before_and_after_the_pass():
    graph = fc.make_graph(_step("auto", padding=1))(x, w)
    assert [n.params["algorithm"] for n in _convs(graph)] == ["auto"] * 3
    assert "algorithm='auto'" in str(graph)
    lowered = passes.optimize(graph)
    assert [n.params["algorithm"] for n in _convs(lowered)] == ["im2col"] * 3
    assert str(lowered).count("algorithm='im2col'") == 3


def test_forced_algorithm_is_recorded_and_the_vjp_convolutions_inherit_it():
    f = fc.jit(_step("direct", padding=1, stride=2))
    lowered = f.lower(x, w)
    algos = sorted(n.params["algorithm"] for n in _convs(lowered.graph))
    assert algos == ["direct"] * 3  # "direct" applies to every convolution: the VJPs too
    assert "algorithm='direct'" in lowered.source
    (v, (gx, gw)), (rv, (rx, rw)) = f(x, w), _step("auto", padding=1, stride=2)(x, w)
    for a, b in ((v, rv), (gx, rx), (gw, rw)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_im2col_keeps_a_large_kernels_gradients_off_fft():
    """The escape hatch from FFT convolution's global rounding error holds for a training
    step: the gradients of an im2col convolution are im2col convolutions too, where "auto"
    would pick FFT for all three."""
    from funconv.ops.fft import fft_p

    xl = rng.standard_normal((4, 8, 64, 64)).astype(np.float32)
    wl = rng.standard_normal((8, 8, 11, 11)).astype(np.float32)

    def graph(algorithm):
        return fc.jit(_step(algorithm, padding=5)).lower(xl, wl).graph

    def prims(g, prim):
        return [n for n in g.nodes() if getattr(n, "prim", None) is prim]

    assert prims(graph("auto"), fft_p) and not _convs(graph("auto"))
    forced = graph("im2col")
    assert not prims(forced, fft_p)
    assert [n.params["algorithm"] for n in _convs(forced)] == ["im2col"] * 3


def test_a_shape_specific_forced_algorithm_leaves_the_vjp_convolutions_auto():
    xs = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    graph = fc.make_graph(_step("winograd", padding=1))(xs, w)
    assert sorted(n.params["algorithm"] for n in _convs(graph)) == ["auto", "auto", "winograd"]


def test_1x1_convolution_becomes_dot_general():
    f = fc.jit(_step("auto"))
    graph = f.lower(x, w1).graph
    # the forward and the input gradient are 1x1; the weight gradient (kernel as large as
    # the image) stays a convolution
    assert sum(n.prim is dot_general_p for n in graph.nodes() if hasattr(n, "prim")) == 2
    assert [n.params["algorithm"] for n in _convs(graph)] == ["im2col"]
    for a, b in zip(fc.tree.leaves(f(x, w1)), fc.tree.leaves(_step("auto")(x, w1))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [{"algorithm": "im2col"}, {"groups": 3}, {"padding": 1},
                                {"stride": 2}])
def test_1x1_convolution_stays_a_convolution(kw):
    # forced, grouped, padded or strided: the kernel's own pointwise / im2col paths
    w1g = w1[:3, :1] if "groups" in kw else w1
    kw = {"algorithm": "auto", **kw}
    graph = fc.jit(lambda x, w: fc.conv(x, w, **kw)).lower(x, w1g).graph
    assert [n.params["algorithm"] for n in _convs(graph)] == ["im2col"]


def test_every_accepted_name_has_a_lowering():
    assert set(ALGORITHMS) - {"auto"} == set(conv_pass.ALGORITHMS)
    # and "auto" always finds a candidate: the last one computes every convolution
    assert conv_pass.AUTO[-1].why_not is conv_pass.IM2COL.why_not


def test_impossible_forced_choice_raises_saying_why(monkeypatch):
    # no algorithm of today is impossible anywhere: give im2col a precondition to refuse
    refuse = attrs.evolve(conv_pass.IM2COL, why_not=lambda node: "it needs a 2x2 kernel")
    monkeypatch.setitem(conv_pass.ALGORITHMS, "im2col", refuse)
    f = fc.jit(lambda x, w: fc.conv(x, w, algorithm="im2col"))
    with pytest.raises(ArgumentError) as e:
        f.lower(x, w)
    msg = str(e.value)
    assert "conv_general(f32[2,3,6,6], f32[4,3,3,3])" in msg
    assert "algorithm='im2col' cannot compute this convolution: it needs a 2x2 kernel" in msg
    assert "test_conv_lowering.py" in msg  # the user's line that built it


def test_unknown_algorithm_on_the_primitive_raises():
    p = {"window_strides": (1, 1), "padding": ((0, 0), (0, 0)), "lhs_dilation": (1, 1),
         "rhs_dilation": (1, 1), "feature_group_count": 1, "algorithm": "winograd8"}
    with pytest.raises(ArgumentError, match=r"conv_general\(f32\[2,3,6,6\], f32\[4,3,3,3\].*"
                                            r"unknown algorithm 'winograd8'"):
        conv_general_p(fc.asarray(x), fc.asarray(w), **p)
    with pytest.raises(ArgumentError, match="unknown algorithm"):
        fc.make_graph(lambda x, w: conv_general_p(x, w, **p))(x, w)
    with pytest.raises(ArgumentError, match="unknown algorithm"):
        fc.conv_general_dilated(x, w, 1, "VALID", algorithm="nope")


def test_forced_algorithms_agree_eagerly_and_under_jit():
    xt = rng.standard_normal((2, 4, 5, 5))
    wt = rng.standard_normal((4, 3, 3, 3))
    outs = []
    # (every algorithm that computes any convolution; "separable" needs a constant kernel
    # and is tested in test_separable.py; Winograd a 3x3 stride-1 undilated one:
    # test_conv_accuracy.py)
    for a in [a for a in ALGORITHMS if a != "separable" and not a.startswith("winograd")]:
        kw = {"stride": 2, "padding": 1, "output_padding": 1, "algorithm": a}
        outs.append(np.asarray(fc.conv_transpose(xt, wt, **kw)))
        outs.append(np.asarray(fc.jit(lambda y, w, kw=kw: fc.conv_transpose(y, w, **kw))(xt, wt)))
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=1e-10, atol=1e-10)
