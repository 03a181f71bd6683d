"""Property tests of fc.conv, fc.conv_transpose and the conv_general primitive against
float64 definitions (domains_conv.py), over hypothesis-drawn configurations: 1-d/2-d/3-d,
strides, every padding form, dilation, groups (depthwise included), batch 1, non-square.

The convolution's definition is the primitive's reference impl evaluated by the
interpreter (`direct_conv`); what is tested against it is the NumPy backend: its kernel
eagerly (`fc.conv` calls it) and the generated code under `fc.jit` (after the
convolution pass chose the algorithm or rewrote the node)."""

from __future__ import annotations

import numpy as np
from domains_conv import direct_conv, direct_conv_transpose, draw_conv_params
from funconv.backends.interpreter import evaluate
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.ops.conv import ALGORITHMS, conv_general_p


def _sides(data, nd, lo, hi, label):
    return tuple(data.draw(st.lists(st.integers(lo, hi), min_size=nd, max_size=nd), label=label))


def _draw_layer(data, max_nd=3):
    """A random conv layer: shapes, groups (depthwise sometimes) and int/per-dim options."""
    nd = data.draw(st.integers(1, max_nd), label="nd")
    small = nd == 3  # keep 3-d cases small
    groups = data.draw(st.integers(1, 3), label="groups")
    depthwise = data.draw(st.booleans(), label="depthwise")
    cg = 1 if depthwise else data.draw(st.integers(1, 3), label="cg")
    og = data.draw(st.integers(1, 2 if small else 3), label="og")
    n = data.draw(st.integers(1, 2), label="batch")
    ins = _sides(data, nd, 1, 5 if small else 9, "in")
    ks = _sides(data, nd, 1, 3, "k")
    per_dim = data.draw(st.booleans(), label="per_dim")
    stride = _sides(data, nd, 1, 3, "stride") if per_dim else data.draw(st.integers(1, 3), label="stride")
    dilation = _sides(data, nd, 1, 2, "dil") if per_dim else data.draw(st.integers(1, 2), label="dil")
    return nd, groups, cg, og, n, ins, ks, stride, dilation


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


@settings(deadline=None)
@given(st.data())
def test_conv_matches_direct_definition(data):
    nd, groups, cg, og, n, ins, ks, stride, dilation = _draw_layer(data)
    form = data.draw(st.sampled_from(["int", "per_dim", "pairs", "SAME", "VALID"]), label="padding")
    strides, dils = _tup(stride, nd), _tup(dilation, nd)
    windows = [(k - 1) * d + 1 for k, d in zip(ks, dils)]
    if form == "int":
        p = data.draw(st.integers(0, 2), label="p")
        padding, pairs = p, ((p, p),) * nd
    elif form == "per_dim":
        padding = _sides(data, nd, 0, 2, "p")
        pairs = tuple((p, p) for p in padding)
    elif form == "pairs":
        pairs = tuple(data.draw(st.lists(st.tuples(st.integers(-1, 2), st.integers(-1, 2)),
                                         min_size=nd, max_size=nd), label="p"))
        padding = pairs
    elif form == "VALID":
        padding, pairs = "VALID", ((0, 0),) * nd
    else:
        padding = "SAME"
        pairs = []
        for size, win, s in zip(ins, windows, strides):
            total = max((-(-size // s) - 1) * s + win - size, 0)
            pairs.append((total // 2, total - total // 2))  # JAX/TF: the extra pad goes high
        pairs = tuple(pairs)
    if any(ins[i] + pairs[i][0] + pairs[i][1] < windows[i] for i in range(nd)):
        with np.testing.assert_raises(fc.errors.ShapeError):
            fc.conv(np.zeros((n, groups * cg) + ins), np.zeros((groups * og, cg) + ks),
                    stride=stride, padding=padding, dilation=dilation, groups=groups)
        return
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((n, groups * cg) + ins)
    w = r.standard_normal((groups * og, cg) + ks)
    ref = direct_conv(x, w, strides, pairs, (1,) * nd, dils, groups)
    out = fc.conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert out.shape == ref.shape and out.dtype == np.float64
    if form == "SAME":
        assert out.shape[2:] == tuple(-(-i // s) for i, s in zip(ins, strides))
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-10, atol=1e-10)
    # float32 stays float32, within float32 summation error
    out32 = fc.conv(x.astype(np.float32), w.astype(np.float32), stride=stride, padding=padding,
                    dilation=dilation, groups=groups)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out32), ref, rtol=1e-4, atol=1e-4)


@settings(deadline=None)
@given(st.data())
def test_conv_transpose_matches_scatter_definition(data):
    nd, groups, cg, og, n, ins, ks, stride, dilation = _draw_layer(data, max_nd=2)
    strides, dils = _tup(stride, nd), _tup(dilation, nd)
    if data.draw(st.booleans(), label="pairs"):
        pairs = pads = tuple(data.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                                min_size=nd, max_size=nd), label="p"))
    else:
        pads = tuple(data.draw(st.lists(st.integers(0, 2), min_size=nd, max_size=nd), label="p"))
        pairs = tuple((p, p) for p in pads)
    opad = tuple(data.draw(st.integers(0, max(s, d) - 1), label="op") for s, d in zip(strides, dils))
    full = [(ins[i] - 1) * strides[i] + (ks[i] - 1) * dils[i] + 1 + opad[i] for i in range(nd)]
    if any(f - sum(p) < 1 for f, p in zip(full, pairs)):
        return
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    y = r.standard_normal((n, groups * og) + ins)
    w = r.standard_normal((groups * og, cg) + ks)
    ref = direct_conv_transpose(y, w, strides, pairs, opad, dils, groups)
    out = fc.conv_transpose(y, w, stride=stride, padding=pads, output_padding=opad,
                            dilation=dilation, groups=groups)
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-10, atol=1e-10)


@settings(deadline=None)
@given(st.data())
def test_adjoint_identity(data):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> with the same stride/padding/dilation/groups,
    for int, per-dim, (lo, hi) pair and "SAME" padding."""
    nd, groups, cg, og, n, ins, ks, stride, dilation = _draw_layer(data, max_nd=2)
    strides, dils = _tup(stride, nd), _tup(dilation, nd)
    windows = [(k - 1) * d + 1 for k, d in zip(ks, dils)]
    form = data.draw(st.sampled_from(["per_dim", "pairs", "SAME"]), label="padding")
    if form == "SAME":
        ins = tuple(-(-i // s) * s for i, s in zip(ins, strides))  # a multiple of the stride
        padding, opad = "SAME", 0
    else:
        if form == "per_dim":
            padding = tuple(data.draw(st.lists(st.integers(0, 2), min_size=nd, max_size=nd), label="p"))
            pairs = tuple((p, p) for p in padding)
        else:
            pairs = padding = tuple(data.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                                       min_size=nd, max_size=nd), label="p"))
        if any(ins[i] + sum(pairs[i]) < windows[i] for i in range(nd)):
            return
        # the output_padding that recovers x's size from conv's floor-rounded output size
        opad = tuple((ins[i] + sum(pairs[i]) - windows[i]) % strides[i] for i in range(nd))
        if any(o >= max(s, d) for o, s, d in zip(opad, strides, dils)):
            return
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((n, groups * cg) + ins)
    w = r.standard_normal((groups * og, cg) + ks)
    cx = fc.conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = r.standard_normal(cx.shape)
    ty = fc.conv_transpose(y, w, stride=stride, padding=padding, output_padding=opad,
                           dilation=dilation, groups=groups)
    assert ty.shape == x.shape
    lhs, rhs = np.vdot(np.asarray(cx), y), np.vdot(x, np.asarray(ty))
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs))


@settings(deadline=None)
@given(st.data())
def test_conv_general_primitive_and_vjp(data):
    """The primitive with input dilation and negative padding: values and the VJP
    (inner-product identity against central differences, float64)."""
    nd = data.draw(st.integers(1, 3), label="nd")
    groups = data.draw(st.integers(1, 2), label="groups")
    ins = _sides(data, nd, 1, 4, "in")
    ks = _sides(data, nd, 1, 3, "k")
    params = draw_conv_params(data, nd, ins, ks)
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((2, groups * 2) + ins)
    w = r.standard_normal((groups * 2, 2) + ks)
    f = lambda x, w: conv_general_p(fc.asarray(x), fc.asarray(w), feature_group_count=groups,
                                    **params)
    ref = direct_conv(x, w, params["window_strides"], params["padding"], params["lhs_dilation"],
                      params["rhs_dilation"], groups)
    np.testing.assert_allclose(np.asarray(f(x, w)), ref, rtol=1e-10, atol=1e-10)
    fc.testing.check_grads(f, (x, w), order=1, modes=("rev",))


@settings(deadline=None, max_examples=40)
@given(st.data())
def test_training_step_on_the_numpy_backend_matches_the_interpreter(data):
    """A conv_general and both its VJP convolutions: eager (the NumPy kernel) and jitted
    (the convolution pass's choice or rewrite, then the kernel or dot_general) against the
    interpreter on the same graph (every primitive's reference impl), every algorithm."""
    nd = data.draw(st.integers(1, 3), label="nd")
    groups = data.draw(st.integers(1, 2), label="groups")
    ins = _sides(data, nd, 1, 4 if nd == 3 else 6, "in")
    # 1x1 kernels often, unpadded and unstrided sometimes: the pass's dot_general rewrite
    ks = (1,) * nd if data.draw(st.booleans(), label="1x1") else _sides(data, nd, 1, 3, "k")
    params = draw_conv_params(data, nd, ins, ks)
    if data.draw(st.booleans(), label="plain"):
        params = {"window_strides": (1,) * nd, "padding": ((0, 0),) * nd,
                  "lhs_dilation": (1,) * nd, "rhs_dilation": params["rhs_dilation"]}
        if any(i < (k - 1) * d + 1 for i, k, d in zip(ins, ks, params["rhs_dilation"])):
            return
    # ("separable" needs a constant kernel: tests/unit/test_separable.py; "helix" 2 or more
    # dims; Winograd 2-d 3x3 stride-1 undilated kernels: tests/unit/test_conv_accuracy.py)
    winograd_ok = (nd == 2 and ks == (3, 3) and params["window_strides"] == (1, 1)
                   and params["lhs_dilation"] == params["rhs_dilation"] == (1, 1))
    algorithm = data.draw(st.sampled_from([
        a for a in ALGORITHMS if a != "separable" and (a != "helix" or nd >= 2)
        and (not a.startswith("winograd") or winograd_ok)]), label="algorithm")
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((data.draw(st.integers(1, 2), label="n"), groups * 2) + ins)
    w = r.standard_normal((groups * data.draw(st.integers(1, 2), label="og"), 2) + ks)

    def step(x, w):
        y = conv_general_p(x, w, feature_group_count=groups, algorithm=algorithm, **params)
        return y, fc.vjp(lambda x, w: conv_general_p(x, w, feature_group_count=groups,
                                                     algorithm=algorithm, **params), x, w)[1](y)

    graph = fc.make_graph(step)(x, w)
    ref = evaluate(graph, [x, w])
    eager = fc.tree.leaves(step(fc.asarray(x), fc.asarray(w)))
    jitted = fc.tree.leaves(fc.jit(step)(x, w))
    for got in (eager, jitted):
        assert len(got) == len(ref) == 3
        for g, want in zip(got, ref):
            assert g.shape == want.shape
            np.testing.assert_allclose(np.asarray(g), want, rtol=1e-10, atol=1e-10)


@settings(deadline=None)
@given(st.data())
def test_every_impl_algorithm_matches_direct_definition(data):
    """Each algorithm of the NumPy impl, forced by the row-length switch (batch-first
    only, or batch-last wherever there are no groups) and the scatter switch (wherever
    it applies, input dilation included, or never), with chunks of one row /
    tap / position or one big chunk: kernels larger than the output (the weight-
    gradient layout) and outputs larger than the input (the scatter) included."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    nd = data.draw(st.integers(1, 3), label="nd")
    groups = data.draw(st.sampled_from([1, 1, 2]), label="groups")
    ins = _sides(data, nd, 1, 4 if nd == 3 else 7, "in")
    ks = _sides(data, nd, 1, 4 if nd == 3 else 6, "k")
    params = draw_conv_params(data, nd, ins, ks, lo_pad=-1)
    if data.draw(st.sampled_from([False, False, True]), label="full"):  # output > input
        params["padding"] = tuple((k - 1, k - 1) for k in ks)
        params["window_strides"] = params["lhs_dilation"] = params["rhs_dilation"] = (1,) * nd
    short_row = data.draw(st.sampled_from([0, 1 << 30]), label="short_row")
    # the scatter wherever it applies (stride 1, no groups; input dilation included), or never
    scatter_ratio = data.draw(st.sampled_from([0.0, conv_mod._SCATTER_RATIO, 1e30]),
                              label="scatter_ratio")
    chunk = data.draw(st.sampled_from([1, 1 << 40]), label="chunk_bytes")
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((data.draw(st.integers(1, 3), label="n"), groups * 2) + ins)
    w = r.standard_normal((groups * data.draw(st.integers(1, 3), label="og"), 2) + ks)
    if data.draw(st.booleans(), label="transposed_views"):  # as the weight-gradient VJP passes them
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1)).swapaxes(0, 1)
        w = np.ascontiguousarray(np.swapaxes(w, 0, 1)).swapaxes(0, 1)
    ref = direct_conv(x, w, params["window_strides"], params["padding"], params["lhs_dilation"],
                      params["rhs_dilation"], groups)
    saved = conv_mod._SHORT_ROW, conv_mod._SCATTER_RATIO, conv_mod._COLS_CHUNK_BYTES
    try:
        conv_mod._SHORT_ROW, conv_mod._SCATTER_RATIO, conv_mod._COLS_CHUNK_BYTES = (
            short_row, scatter_ratio, chunk)
        got = conv_mod.conv_general_kernel(x, w, feature_group_count=groups, **params)
    finally:
        conv_mod._SHORT_ROW, conv_mod._SCATTER_RATIO, conv_mod._COLS_CHUNK_BYTES = saved
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@settings(deadline=None)
@given(st.data())
def test_flat_column_copies_of_same_width_convolutions(data):
    """The batch-first im2col's flat copies (stride 1, output as wide as the input in
    every spatial dim but the first): wrap-around zeroing, negative and lopsided pads,
    dilation, groups, chunks of one image or all."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    nd = data.draw(st.integers(2, 3), label="nd")
    groups = data.draw(st.integers(1, 2), label="groups")
    ins = _sides(data, nd, 1, 4 if nd == 3 else 7, "in")
    ks = _sides(data, nd, 1, 3, "k")
    dil = _sides(data, nd, 1, 2, "dil")
    pads = []
    for i in range(nd):
        span = (ks[i] - 1) * dil[i]
        lo = data.draw(st.integers(-1, span + 1), label=f"lo{i}")
        if i == 0:  # the first dim: any padding that leaves an output
            hi = data.draw(st.integers(max(-1, span + 1 - ins[0] - lo), span + 1), label="hi0")
        else:  # the others: output as wide as the input
            hi = span - lo
            if ins[i] + lo + hi < span + 1 or min(lo, hi) < -ins[i] + 1:
                lo, hi = span // 2, span - span // 2
        pads.append((lo, hi))
    params = {"window_strides": (1,) * nd, "padding": tuple(pads), "lhs_dilation": (1,) * nd,
              "rhs_dilation": dil}
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((data.draw(st.integers(1, 3), label="n"), groups * 2) + ins)
    w = r.standard_normal((groups * 2, 2) + ks)
    ref = direct_conv(x, w, (1,) * nd, tuple(pads), (1,) * nd, dil, groups)
    # draw before patching: a draw may end the example (hypothesis raises), skipping `finally`
    chunk = data.draw(st.sampled_from([1, 1 << 40]), label="chunk_bytes")
    saved = conv_mod._SHORT_ROW, conv_mod._COLS_CHUNK_BYTES, conv_mod._SCATTER_RATIO
    try:
        conv_mod._SHORT_ROW, conv_mod._SCATTER_RATIO = 0, float("inf")  # batch-first im2col
        conv_mod._COLS_CHUNK_BYTES = chunk
        got = conv_mod.conv_general_kernel(x, w, feature_group_count=groups, **params)
    finally:
        conv_mod._SHORT_ROW, conv_mod._COLS_CHUNK_BYTES, conv_mod._SCATTER_RATIO = saved
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@settings(deadline=None)
@given(st.data())
def test_flat_column_copies_of_weight_gradient_layout(data):
    """The same flat copies in the weight-gradient layout (kernel larger than the output,
    kernel as wide as the input in every spatial dim but the first): strides, pads."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    nd = data.draw(st.integers(2, 3), label="nd")
    groups = data.draw(st.integers(1, 2), label="groups")
    ins = _sides(data, nd, 2, 4 if nd == 3 else 8, "in")
    k0 = data.draw(st.integers(1, ins[0]), label="k0")
    ks = (k0,) + ins[1:]
    strides = _sides(data, nd, 1, 2, "strides")
    pads = tuple(data.draw(st.lists(st.tuples(st.integers(-1, 2), st.integers(-1, 2)),
                                    min_size=nd, max_size=nd), label="pads"))
    pads = tuple((lo, max(hi, -lo)) for lo, hi in pads)  # padded size >= kernel size
    params = {"window_strides": strides, "padding": pads, "lhs_dilation": (1,) * nd,
              "rhs_dilation": (1,) * nd}
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((data.draw(st.integers(1, 3), label="n"), groups * 2) + ins)
    w = r.standard_normal((groups * 2, 2) + ks)
    ref = direct_conv(x, w, strides, pads, (1,) * nd, (1,) * nd, groups)
    # draw before patching: a draw may end the example (hypothesis raises), skipping `finally`
    chunk = data.draw(st.sampled_from([1, 1 << 40]), label="chunk_bytes")
    saved = conv_mod._SHORT_ROW, conv_mod._COLS_CHUNK_BYTES
    try:
        conv_mod._SHORT_ROW, conv_mod._COLS_CHUNK_BYTES = 0, chunk  # the batch-first layouts
        got = conv_mod.conv_general_kernel(x, w, feature_group_count=groups, **params)
    finally:
        conv_mod._SHORT_ROW, conv_mod._COLS_CHUNK_BYTES = saved
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@settings(deadline=None)
@given(st.data())
def test_copy_free_paths_match_direct_definition(data):
    """The paths that need no column matrix: 1x1 kernels without padding (strided,
    grouped) and kernels as large as the input (the weight gradient of a 1x1 conv,
    whose operands come as transposed views)."""
    import funconv.backends.numpy.kernels.conv as conv_mod

    nd = data.draw(st.integers(1, 3), label="nd")
    ins = _sides(data, nd, 1, 4 if nd == 3 else 6, "in")
    groups = data.draw(st.sampled_from([1, 2]), label="groups")
    whole = data.draw(st.booleans(), label="whole_window")
    ks = ins if whole else (1,) * nd
    strides = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd), label="s"))
    params = {"window_strides": strides, "padding": ((0, 0),) * nd,
              "lhs_dilation": (1,) * nd, "rhs_dilation": (1,) * nd}
    if whole:
        groups = 1
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((data.draw(st.integers(1, 3), label="n"), groups * 2) + ins)
    w = r.standard_normal((groups * data.draw(st.integers(1, 3), label="og"), 2) + ks)
    if data.draw(st.booleans(), label="transposed_views"):  # as the weight-gradient VJP passes them
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1)).swapaxes(0, 1)
        w = np.ascontiguousarray(np.swapaxes(w, 0, 1)).swapaxes(0, 1)
    osp = tuple((i - k) // s + 1 for i, k, s in zip(ins, ks, strides))
    pointwise = all(k == 1 for k in ks)  # (a 1x1 input with a 1x1 kernel is both)
    expected = conv_mod._conv_pointwise if pointwise else conv_mod._conv_whole_window
    assert conv_mod._algorithm(x.shape, w.shape, osp, strides, params["padding"],
                               params["lhs_dilation"], groups) is expected
    ref = direct_conv(x, w, strides, params["padding"], params["lhs_dilation"],
                      params["rhs_dilation"], groups)
    got = conv_mod.conv_general_kernel(x, w, feature_group_count=groups, **params)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


# --- FFT convolution (passes/conv.py "fft") against the definition ------------------------------


def _fft_tolerance(dtype, graph):
    """float64: 1e-12 relative to max|ref|; float32: the large-FFT-suite bound of
    ../shared/notes/fft-conv.md section 7, 2e-6 + 5e-7 log10(N), N the largest transform."""
    if dtype == np.float64:
        return 1e-12
    from funconv.ops.fft import fft_p

    N = max(int(np.prod(n.params["fft_lengths"])) for n in graph.nodes()
            if getattr(n, "prim", None) is fft_p)
    return 2e-6 + 5e-7 * np.log10(N)


def _rel_err(got, ref, scale):
    # scale: max|ref|, or (an output that reads only padding is all zeros) the operands' scale
    return np.abs(np.asarray(got, np.float64) - ref).max() / scale


def _draw_fft_case(data, max_in=12):
    nd = data.draw(st.integers(1, 3), label="nd")
    groups = data.draw(st.integers(1, 2), label="groups")
    cg = data.draw(st.integers(1, 2), label="cg")
    ins = _sides(data, nd, 1, 5 if nd == 3 else max_in, "in")
    ks = _sides(data, nd, 1, 3 if nd == 3 else 6, "k")
    params = draw_conv_params(data, nd, ins, ks, lo_pad=-2)
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((data.draw(st.integers(1, 2), label="n"), groups * cg) + ins)
    w = r.standard_normal((groups * data.draw(st.integers(1, 2), label="og"), cg) + ks)
    return nd, groups, params, dtype, x, w


@settings(deadline=None)
@given(st.data())
def test_fft_convolution_matches_direct_definition(data):
    """Forced "fft" on one conv_general: 1-3 spatial dims, strides, padding (negative too),
    input and kernel dilation, groups; the kernel as given (correlation form) or a flipped
    one (convolution form, as conv_transpose and the input gradient pass it)."""
    nd, groups, params, dtype, x, w = _draw_fft_case(data)
    flip = data.draw(st.booleans(), label="flip")
    sp = tuple(range(2, 2 + nd))

    def f(x, w):
        return conv_general_p(x, fc.flip(w, axis=sp) if flip else w, feature_group_count=groups,
                              algorithm="fft", **params)

    xd, wd = x.astype(dtype), w.astype(dtype)
    jitted = fc.jit(f)
    got = jitted(xd, wd)
    ref = direct_conv(xd, np.flip(wd, sp) if flip else wd, params["window_strides"],
                      params["padding"], params["lhs_dilation"], params["rhs_dilation"], groups)
    assert got.shape == ref.shape and got.dtype == dtype
    scale = max(np.abs(ref).max(), np.abs(x).max() * np.abs(w).max())
    assert _rel_err(got, ref, scale) <= _fft_tolerance(dtype, jitted.lower(xd, wd).graph)


@settings(deadline=None, max_examples=30)
@given(st.data())
def test_fft_training_convolutions_match_the_interpreter(data):
    """The three convolutions of a training step (forward, input and weight gradients), all
    through FFT (`fc.config.conv_force_algorithm`), against the interpreter on the same
    graph (every primitive's reference impl: the direct definition), float64 and float32."""
    nd, groups, params, dtype, x, w = _draw_fft_case(data, max_in=10)
    xd, wd = x.astype(dtype), w.astype(dtype)
    y = np.asarray(fc.conv_general_dilated(xd, wd, params["window_strides"], params["padding"],
                                           params["lhs_dilation"], params["rhs_dilation"],
                                           feature_group_count=groups))
    c = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)  # a random cotangent

    def loss(x, w):
        out = conv_general_p(x, w, feature_group_count=groups, algorithm="auto", **params)
        return (out * c).sum()

    step = fc.value_and_grad(loss, argnums=(0, 1))
    ref = evaluate(fc.make_graph(step)(x, w), [x, w])  # float64 definition
    fc.config.update("conv_force_algorithm", "fft")
    try:
        jitted = fc.jit(step)
        got = fc.tree.leaves(jitted(xd, wd))
        tol = _fft_tolerance(dtype, jitted.lower(xd, wd).graph)
    finally:
        fc.config.update("conv_force_algorithm", None)
    for g, want in zip(got[1:], ref[1:]):  # the two gradients (the value is a sum of products)
        # operands are O(1): a gradient that is all zeros (only padding was read) is checked
        # against that scale
        scale = max(np.abs(want).max(), 1.0)
        assert g.shape == want.shape and _rel_err(g, want, scale) <= tol
