"""Property tests of fc.max_pool / fc.avg_pool and the pooling primitives against float64
definitions (domains_conv.py): 1-d/2-d/3-d, strides, every padding form; derivatives to
second order; the max cotangent lands on the first maximum of each window.

PyTorch's options (ceil_mode, count_include_pad, adaptive pooling) are checked against
float64 definitions written here as plain loops over windows and window cells, from
PyTorch's own definitions (its output-size rule and its per-window divisor), so that the
tests carry the correctness where torch is not installed.

The pooling primitives' impls are their reference definitions (loops over the window
taps); `test_pooling_on_the_numpy_backend_matches_the_interpreter` checks the NumPy
backend's kernels (fast paths), eagerly and under jit, against them through the
interpreter."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from domains_conv import (
    direct_pool,
    direct_select_and_gather,
    direct_select_and_scatter_add,
    distinct,
    draw_pool_geometry,
)
from funconv.backends.interpreter import evaluate
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.errors import ShapeError
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


@settings(deadline=None, max_examples=40)
@given(st.data())
def test_pooling_on_the_numpy_backend_matches_the_interpreter(data):
    """max_pool and avg_pool, their gradients (select_and_scatter_add, a windowed sum)
    and max_pool's second derivative (select_and_gather): eager (the NumPy kernels) and
    jitted against the interpreter (the reference impls) on the same graph. Ties
    (many), -inf, the non-overlapping and one-sample-per-window fast paths included."""
    drawn = _draw(data)
    if drawn is None:
        return
    _nd, ins, window, stride, _strides, padding, _pairs = drawn
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.integers(-1, 2, size=(2, 3) + ins).astype(np.float64)  # many ties
    if data.draw(st.booleans(), label="-inf"):
        x[r.random(x.shape) < 0.2] = -np.inf
    v = r.standard_normal(x.shape)

    def step(x, v):
        mx = lambda x: fc.max_pool(x, window, stride=stride, padding=padding)
        av = lambda x: fc.avg_pool(x, window, stride=stride, padding=padding)
        gmax = fc.grad(lambda x: (mx(x) ** 2).sum())
        hvp = fc.jvp(gmax, (x,), (v,))[1]  # select_and_gather, in the transposed VJP
        return mx(x), av(v), gmax(x), fc.grad(lambda v: (av(v) ** 2).sum())(v), hvp

    graph = fc.make_graph(step)(x, v)
    ref = evaluate(graph, [x, v])
    for got in (step(fc.asarray(x), fc.asarray(v)), fc.jit(step)(x, v)):
        for g, want in zip(got, ref):
            assert g.shape == want.shape
            np.testing.assert_allclose(np.asarray(g), want, rtol=1e-12, atol=1e-12)


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


# --- ceil_mode, count_include_pad and adaptive pooling against plain loops ------------------


def torch_out_size(n, k, s, lo, hi, ceil_mode):
    """PyTorch's pooling_output_shape_pad_lr, as written there (div_rtn is floor division)."""
    out = (n + lo + hi - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + lo:
        out -= 1  # the last window must start inside the input or its low padding
    return out


def loop_pool(x, window, strides, pads, ceil_mode, computation, count_include_pad=True):
    """max / avg over windows by PyTorch's definition, cell by cell (float64).

    Window p along dim i covers input positions p*s - lo .. p*s - lo + k - 1; cells outside
    the input are padding (ignored by max; zeros for avg). avg's divisor (PyTorch's
    avg_pool kernels): the cells inside the padded input [-lo, n + hi) with
    count_include_pad, else the cells inside the input; a window with nothing to count
    gives 0.
    """
    nd = len(window)
    lead = x.ndim - nd
    ins = x.shape[lead:]
    osp = [torch_out_size(ins[i], window[i], strides[i], *pads[i], ceil_mode) for i in range(nd)]
    out = np.zeros(x.shape[:lead] + tuple(osp))
    for p in itertools.product(*[range(o) for o in osp]):
        acc = np.full(x.shape[:lead], -np.inf if computation == "max" else 0.0)
        counted = 0
        for k in itertools.product(*[range(w) for w in window]):
            pos = tuple(p[i] * strides[i] - pads[i][0] + k[i] for i in range(nd))
            inside = all(0 <= pos[i] < ins[i] for i in range(nd))
            in_padded = all(-pads[i][0] <= pos[i] < ins[i] + pads[i][1] for i in range(nd))
            if inside:
                v = x[(Ellipsis,) + pos]
                acc = np.maximum(acc, v) if computation == "max" else acc + v
            counted += inside or (count_include_pad and in_padded)
        out[(Ellipsis,) + p] = acc if computation == "max" else acc / max(counted, 1)
    return out


def adaptive_windows(n, o):
    """PyTorch's adaptive windows: [floor(i * n / o), ceil((i + 1) * n / o)) for i < o."""
    return [(math_floor_div(i * n, o), -math_floor_div(-(i + 1) * n, o)) for i in range(o)]


def math_floor_div(a, b):
    return a // b


def loop_adaptive(x, out_sizes, computation):
    """Adaptive max / avg by the definition: a loop over output boxes (float64)."""
    nd = len(out_sizes)
    lead = x.ndim - nd
    wins = [adaptive_windows(x.shape[lead + i], out_sizes[i]) for i in range(nd)]
    res = np.zeros(x.shape[:lead] + tuple(out_sizes))
    for p in itertools.product(*[range(o) for o in out_sizes]):
        box = x[(Ellipsis,) + tuple(slice(*wins[i][p[i]]) for i in range(nd))]
        box = box.reshape(x.shape[:lead] + (-1,))
        res[(Ellipsis,) + p] = box.max(-1) if computation == "max" else box.mean(-1)
    return res


def loop_adaptive_max_grad(x, ct, out_sizes):
    """Where adaptive max pooling's cotangent goes: the first maximum (row-major) of each box."""
    nd = len(out_sizes)
    lead = x.ndim - nd
    wins = [adaptive_windows(x.shape[lead + i], out_sizes[i]) for i in range(nd)]
    g = np.zeros(x.shape)
    for b in itertools.product(*[range(n) for n in x.shape[:lead]]):
        for p in itertools.product(*[range(o) for o in out_sizes]):
            best = where = None
            for q in itertools.product(*[range(*wins[i][p[i]]) for i in range(nd)]):
                if best is None or x[b + q] > best:
                    best, where = x[b + q], q
            g[b + where] += ct[b + p]
    return g


def _draw_torch_geometry(data, max_pad=2):
    """nd, input sizes, window, strides, (lo, hi) pads, the padding argument, ceil_mode."""
    nd = data.draw(st.integers(1, 3), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 4 if nd == 3 else 7), min_size=nd, max_size=nd),
                          label="in"))
    window = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd), label="window"))
    strides = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd), label="strides"))
    form = data.draw(st.sampled_from(["pairs", "int", "VALID", "SAME"]), label="form")
    if form == "pairs":
        pads = tuple(data.draw(st.tuples(st.integers(0, max_pad), st.integers(0, max_pad)),
                               label="pad") for _ in range(nd))
        padding = pads
    elif form == "int":
        padding = data.draw(st.integers(0, max_pad), label="pad")
        pads = ((padding, padding),) * nd
    elif form == "VALID":
        padding, pads = "VALID", ((0, 0),) * nd
    else:
        padding, pads = "SAME", []
        for n, k, s in zip(ins, window, strides):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        pads = tuple(pads)
    ceil_mode = data.draw(st.booleans(), label="ceil_mode")
    return nd, ins, window, strides, pads, padding, ceil_mode


@settings(deadline=None)
@given(st.data())
def test_ceil_mode_and_count_include_pad_match_loops(data):
    """Odd sizes, 1-d to 3-d, every padding form, pads up to and beyond the window, ceil_mode
    on and off, count_include_pad on and off; too-small inputs raise ShapeError."""
    nd, ins, window, strides, pads, padding, ceil_mode = _draw_torch_geometry(data)
    include = data.draw(st.booleans(), label="count_include_pad")
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = distinct(r, (2, 1) + ins, np.float64)
    kw = {"stride": strides, "padding": padding, "ceil_mode": ceil_mode}
    osp = [torch_out_size(ins[i], window[i], strides[i], *pads[i], ceil_mode) for i in range(nd)]
    if min(osp) < 1:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            fc.max_pool(x, window, **kw)
        with pytest.raises(ShapeError, match="larger than the padded input"):
            fc.avg_pool(x, window, count_include_pad=include, **kw)
        return
    # a window wholly in the padding (the first in the low pad, or the last past the input)
    # is refused: it would pool no input element
    if any(window[i] <= pads[i][0] or (osp[i] - 1) * strides[i] - pads[i][0] >= ins[i]
           for i in range(nd)):
        with pytest.raises(ShapeError, match="whole window in the padding"):
            fc.max_pool(x, window, **kw)
        with pytest.raises(ShapeError, match="whole window in the padding"):
            fc.avg_pool(x, window, count_include_pad=include, **kw)
        return
    out = fc.max_pool(x, window, **kw)
    ref = loop_pool(x, window, strides, pads, ceil_mode, "max")
    assert out.shape == ref.shape
    np.testing.assert_array_equal(np.asarray(out), ref)
    out = fc.avg_pool(x, window, count_include_pad=include, **kw)
    ref = loop_pool(x, window, strides, pads, ceil_mode, "avg", include)
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-12, atol=1e-12)
    out32 = fc.avg_pool(x.astype(np.float32), window, count_include_pad=include, **kw)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out32), ref, rtol=1e-5, atol=1e-5)
    if padding == "SAME":  # SAME already covers the input: ceil_mode changes nothing
        np.testing.assert_array_equal(
            np.asarray(out), np.asarray(fc.avg_pool(x, window, stride=strides, padding="SAME",
                                                    count_include_pad=include,
                                                    ceil_mode=not ceil_mode)))


@settings(deadline=None)
@given(st.data())
def test_adaptive_pools_match_loops(data):
    """Output sizes that do and do not divide the input, larger than it, None entries."""
    nd = data.draw(st.integers(1, 3), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 4 if nd == 3 else 9), min_size=nd, max_size=nd),
                          label="in"))
    outs = tuple(data.draw(st.one_of(st.none(), st.integers(1, n + 2)), label="out") for n in ins)
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = distinct(r, (2, 3) + ins, np.float64)
    sizes = tuple(n if o is None else o for n, o in zip(ins, outs))
    arg = outs if nd != 2 or data.draw(st.booleans(), label="tuple") else sizes
    if nd == 2 and len(set(sizes)) == 1 and data.draw(st.booleans(), label="int"):
        arg = sizes[0]  # an int pools every spatial dim of (N, C, H, W)
    for pool, comp in ((fc.adaptive_max_pool, "max"), (fc.adaptive_avg_pool, "avg")):
        ref = loop_adaptive(x, sizes, comp)
        out = pool(x, arg)
        assert out.shape == ref.shape
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-12, atol=1e-12)
        out32 = pool(x.astype(np.float32), arg)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(np.asarray(out32), ref, rtol=1e-5, atol=1e-5)


@settings(deadline=None)
@given(st.data())
def test_adaptive_max_gradient_goes_to_first_maximum(data):
    """Ties included (small integers): the cotangent lands on the first maximum of each box
    in row-major order, as max_pool and PyTorch on CPU."""
    nd = data.draw(st.integers(1, 2), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 7), min_size=nd, max_size=nd), label="in"))
    outs = tuple(data.draw(st.integers(1, n + 2), label="out") for n in ins)
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.integers(0, 3, size=(2, 1) + ins).astype(np.float64)
    ct = r.standard_normal((2, 1) + outs)
    g = fc.grad(lambda x: (fc.adaptive_max_pool(x, outs) * ct).sum())(x)
    np.testing.assert_allclose(np.asarray(g), loop_adaptive_max_grad(x, ct, outs), atol=1e-12)


def _grad_case(data):
    """A small configuration where every window holds an input element (pads < window)."""
    nd, ins, window, strides, pads, padding, ceil_mode = _draw_torch_geometry(data, max_pad=1)
    if any(lo >= k or hi >= k for (lo, hi), k in zip(pads, window)):
        pads = tuple((min(lo, k - 1), min(hi, k - 1)) for (lo, hi), k in zip(pads, window))
        padding = pads
    osp = [torch_out_size(ins[i], window[i], strides[i], *pads[i], ceil_mode) for i in range(nd)]
    if min(osp) < 1:
        return None
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = distinct(r, (1, 2) + ins, np.float64)
    include = data.draw(st.booleans(), label="count_include_pad")
    outs = tuple(data.draw(st.integers(1, n + 1), label="out") for n in ins)
    kw = {"stride": strides, "padding": padding, "ceil_mode": ceil_mode}
    return x, [lambda x: fc.max_pool(x, window, **kw) ** 2,
               lambda x: fc.avg_pool(x, window, count_include_pad=include, **kw) ** 2,
               lambda x: fc.adaptive_max_pool(x, outs) ** 2,
               lambda x: fc.adaptive_avg_pool(x, outs) ** 2]


@settings(deadline=None, max_examples=15)
@given(st.data())
def test_new_options_grads_second_order(data):
    case = _grad_case(data)
    if case is None:
        return
    x, fns = case
    for f in fns:
        fc.testing.check_grads(f, (x,), order=2, modes=("rev",))


@settings(deadline=None, max_examples=15)
@given(st.data())
def test_new_options_jit_matches_eager(data):
    case = _grad_case(data)
    if case is None:
        return
    x, fns = case
    for f in fns:
        np.testing.assert_allclose(np.asarray(fc.jit(f)(x)), np.asarray(f(x)), rtol=1e-12, atol=1e-12)
        gj = fc.jit(fc.grad(lambda x, f=f: f(x).sum()))(x)
        np.testing.assert_allclose(np.asarray(gj), np.asarray(fc.grad(lambda x, f=f: f(x).sum())(x)),
                                   rtol=1e-12, atol=1e-12)


@settings(deadline=None)
@given(st.data())
def test_one_sample_per_window_path(data):
    """reduce_window with stride 1 over an operand dilated by the window (non-overlapping sum
    pooling's derivative) takes the `_spread` path: it matches the definition and the
    per-tap general path, crops (negative pads) and windows wholly in the padding included."""
    from domains_conv import dilate_pad
    from funconv.backends.numpy.kernels import pool

    nd = data.draw(st.integers(1, 3), label="nd")
    ins = tuple(data.draw(st.lists(st.integers(1, 3 if nd == 3 else 5), min_size=nd, max_size=nd),
                          label="in"))
    window = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd), label="window"))
    pads = []
    for n, k in zip(ins, window):
        lo, hi = data.draw(st.tuples(st.integers(-k, 2 * k), st.integers(-k, 2 * k)), label="pad")
        pads.append((lo, hi + max(0, k - ((n - 1) * k + 1 + lo + hi))))  # a non-empty output
    pads = tuple(pads)
    r = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    x = r.standard_normal((2,) + ins)
    p = {"window": window, "strides": (1,) * nd, "padding": pads, "base_dilation": window}
    assert pool._one_sample_per_window(window, (1,) * nd, window)
    for comp in ("sum", "max"):
        xp = dilate_pad(x, window, pads, -np.inf if comp == "max" else 0.0)
        osp = [xp.shape[1 + i] - window[i] + 1 for i in range(nd)]
        ref = np.empty((2,) + tuple(osp))
        for q in itertools.product(*[range(o) for o in osp]):
            blk = xp[(slice(None),) + tuple(slice(q[i], q[i] + window[i]) for i in range(nd))]
            ref[(slice(None),) + q] = blk.reshape(2, -1).max(-1) if comp == "max" else blk.reshape(2, -1).sum(-1)
        out = pool.reduce_window_kernel(x, computation=comp, **p)
        np.testing.assert_array_equal(out, ref)  # one element per window: exact
        general = pool._one_sample_per_window
        try:
            pool._one_sample_per_window = lambda *a: False
            np.testing.assert_array_equal(pool.reduce_window_kernel(x, computation=comp, **p), out)
        finally:
            pool._one_sample_per_window = general
