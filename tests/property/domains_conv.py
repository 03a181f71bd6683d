"""Domain entries and float64 reference definitions for the convolution and pooling
primitives (conv_general, reduce_window, select_and_scatter_add, select_and_gather).

The convolution's definition is its primitive's impl (the sum over kernel taps),
evaluated by the interpreter (`direct_conv`); the conv_transpose and pooling
references here are written from other definitions (scatter loops, loops over
output positions, float64), independently of both the impls and the NumPy
kernels. tests/property/test_conv.py and test_pool.py import them too.
"""

from __future__ import annotations

import itertools

import numpy as np
from domains import DOMAINS, Case, Domain, distinct, floats, rng
from funconv.backends.interpreter import evaluate
from hypothesis import strategies as st

import funconv as fc
from funconv.ops.conv import conv_general_p

# --- reference definitions ---------------------------------------------------------------------


def dilate_pad(x, lhs_dilation, padding, fill=0.0):
    """x (..., spatial) dilated along its trailing dims and padded with `fill` (negative crops)."""
    nd = len(padding)
    lead = x.ndim - nd
    sizes = [(s - 1) * d + 1 for s, d in zip(x.shape[lead:], lhs_dilation)]
    xd = np.full(x.shape[:lead] + tuple(sizes), fill, np.float64)
    xd[(Ellipsis,) + tuple(slice(None, None, d) for d in lhs_dilation)] = x
    for i, (lo, hi) in enumerate(padding):
        ax = lead + i
        widths = [(0, 0)] * xd.ndim
        widths[ax] = (max(lo, 0), max(hi, 0))
        xd = np.pad(xd, widths, constant_values=fill)
        sl = [slice(None)] * xd.ndim
        sl[ax] = slice(max(-lo, 0), xd.shape[ax] - max(-hi, 0))
        xd = xd[tuple(sl)]
    return xd


def direct_conv(x, w, window_strides, padding, lhs_dilation, rhs_dilation, groups):
    """The general dilated convolution by its definition, in float64: the primitive's
    reference impl (the sum over kernel taps, funconv/ops/conv.py), evaluated by the
    interpreter, the oracle that the NumPy kernels are compared against."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    params = {"window_strides": tuple(window_strides), "padding": tuple(map(tuple, padding)),
              "lhs_dilation": tuple(lhs_dilation), "rhs_dilation": tuple(rhs_dilation),
              "feature_group_count": groups}
    graph = fc.make_graph(lambda x, w: conv_general_p(x, w, **params))(x, w)
    (out,) = evaluate(graph, [x, w])
    return out


def direct_conv_transpose(y, w, stride, padding, output_padding, dilation, groups):
    """PyTorch's conv_transpose by its scatter definition (float64):
    out[n, g*Cg + c, i*stride + k*dilation - lo] += y[n, o, i] * w[o, c, k] for o in group g."""
    y, w = np.asarray(y, np.float64), np.asarray(w, np.float64)
    nd = w.ndim - 2
    O, Cg = w.shape[:2]
    Og = O // groups
    ksp = w.shape[2:]
    full = [(y.shape[2 + i] - 1) * stride[i] + (ksp[i] - 1) * dilation[i] + 1 + output_padding[i]
            for i in range(nd)]
    big = np.zeros((y.shape[0], groups * Cg) + tuple(full))
    for g in range(groups):
        for idx in itertools.product(*[range(n) for n in y.shape[2:]]):
            for k in itertools.product(*[range(n) for n in ksp]):
                pos = tuple(idx[i] * stride[i] + k[i] * dilation[i] for i in range(nd))
                contrib = np.einsum("no,oc->nc", y[(slice(None), slice(g * Og, (g + 1) * Og)) + idx],
                                    w[(slice(g * Og, (g + 1) * Og), slice(None)) + k])
                big[(slice(None), slice(g * Cg, (g + 1) * Cg)) + pos] += contrib
    sl = tuple(slice(lo, full[i] - hi) for i, (lo, hi) in enumerate(padding))
    return big[(slice(None), slice(None)) + sl]


def direct_pool(x, window, strides, padding, computation):
    """max / sum / mean over windows of the trailing dims (float64; -inf / 0 padding)."""
    nd = len(window)
    lead = x.ndim - nd
    fill = -np.inf if computation == "max" else 0.0
    xp = dilate_pad(np.asarray(x, np.float64), (1,) * nd, padding, fill)
    osp = [(xp.shape[lead + i] - window[i]) // strides[i] + 1 for i in range(nd)]
    out = np.empty(x.shape[:lead] + tuple(osp))
    for p in itertools.product(*[range(o) for o in osp]):
        sl = tuple(slice(p[i] * strides[i], p[i] * strides[i] + window[i]) for i in range(nd))
        blk = xp[(Ellipsis,) + sl].reshape(x.shape[:lead] + (-1,))
        out[(Ellipsis,) + p] = {"max": blk.max(-1), "sum": blk.sum(-1),
                                "mean": blk.sum(-1) / np.prod(window)}[computation]
    return out


def direct_first_max(x, window, strides, padding):
    """Per window, the flat (unpadded) index of x of its first maximum (-1: a padded position)."""
    nd = len(window)
    lead = x.ndim - nd
    xp = dilate_pad(np.asarray(x, np.float64), (1,) * nd, padding, -np.inf)
    osp = [(xp.shape[lead + i] - window[i]) // strides[i] + 1 for i in range(nd)]
    res = []
    for b in itertools.product(*[range(n) for n in x.shape[:lead]]):
        for p in itertools.product(*[range(o) for o in osp]):
            best, where = None, None
            for k in itertools.product(*[range(n) for n in window]):
                pos = tuple(p[i] * strides[i] + k[i] for i in range(nd))
                v = xp[b + pos]
                if best is None or v > best:
                    best = v
                    src = tuple(pos[i] - padding[i][0] for i in range(nd))
                    inside = all(0 <= src[i] < x.shape[lead + i] for i in range(nd))
                    where = b + src if inside else None
            res.append((b + tuple(p), where))
    return res


def direct_select_and_scatter_add(ct, x, *, window, strides, padding):
    out = np.zeros(x.shape)
    for p, where in direct_first_max(x, window, strides, padding):
        if where is not None:
            out[where] += ct[p]
    return out


def direct_select_and_gather(t, x, *, window, strides, padding):
    nd = len(window)
    lead = x.ndim - nd
    osp = [(x.shape[lead + i] + lo + hi - window[i]) // strides[i] + 1
           for i, (lo, hi) in enumerate(padding)]
    out = np.zeros(x.shape[:lead] + tuple(osp))
    for p, where in direct_first_max(x, window, strides, padding):
        if where is not None:
            out[p] = t[where]
    return out


# --- samplers --------------------------------------------------------------------------------------


def draw_conv_params(data, nd: int, in_sizes, k_sizes, lo_pad=-1):
    """window_strides, padding pairs, lhs/rhs dilation; the pads fixed up so the output is non-empty."""
    ints = lambda a, b, label: tuple(data.draw(st.lists(st.integers(a, b), min_size=nd,
                                                        max_size=nd), label=label))
    strides = ints(1, 3, "strides")
    lhs_d = ints(1, 2, "lhs_dilation")
    rhs_d = ints(1, 2, "rhs_dilation")
    lo = ints(lo_pad, 2, "pad_lo")
    hi = ints(lo_pad, 2, "pad_hi")
    pads = []
    for i in range(nd):
        padded = (in_sizes[i] - 1) * lhs_d[i] + 1 + lo[i] + hi[i]
        window = (k_sizes[i] - 1) * rhs_d[i] + 1
        pads.append((lo[i], hi[i] + max(0, window - padded)))
    return {"window_strides": strides, "padding": tuple(pads), "lhs_dilation": lhs_d,
                "rhs_dilation": rhs_d}


def _conv_sample(data, dtype):
    r = rng(data)
    nd = data.draw(st.integers(1, 2), label="nd")
    groups = data.draw(st.integers(1, 2), label="groups")
    cg = data.draw(st.integers(1, 2), label="cg")
    og = data.draw(st.integers(1, 2), label="og")
    n = data.draw(st.integers(1, 2), label="batch")
    ins = tuple(data.draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd), label="in"))
    ks = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd), label="k"))
    params = draw_conv_params(data, nd, ins, ks)
    params["feature_group_count"] = groups
    x = floats(r, (n, groups * cg) + ins, dtype)
    w = floats(r, (groups * og, cg) + ks, dtype)
    return Case((x, w), params)


def draw_pool_geometry(data, nd: int, in_sizes):
    window = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd), label="window"))
    strides = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd), label="strides"))
    pads = []
    for i in range(nd):
        # pads below the window size: no window lies wholly in the padding (no -inf output)
        m = min(1, window[i] - 1)
        lo, hi = data.draw(st.tuples(st.integers(0, m), st.integers(0, m)), label="pad")
        pads.append((lo, hi + max(0, window[i] - (in_sizes[i] + lo + hi))))
    return window, strides, tuple(pads)


def _pool_sample(computation):
    def sample(data, dtype):
        r = rng(data)
        nd = data.draw(st.integers(1, 2), label="nd")
        ins = tuple(data.draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd), label="in"))
        window, strides, pads = draw_pool_geometry(data, nd, ins)
        x = distinct(r, (2, 2) + ins, dtype)
        return Case((x,), {"computation": computation, "window": window, "strides": strides,
                               "padding": pads, "base_dilation": (1,) * nd})

    return sample


def _select_sample(pooled_first):
    def sample(data, dtype):
        r = rng(data)
        nd = data.draw(st.integers(1, 2), label="nd")
        ins = tuple(data.draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd), label="in"))
        window, strides, pads = draw_pool_geometry(data, nd, ins)
        x = distinct(r, (2, 2) + ins, dtype)
        osp = tuple((ins[i] + pads[i][0] + pads[i][1] - window[i]) // strides[i] + 1
                    for i in range(nd))
        a = floats(r, (2, 2) + (osp if pooled_first else ins), dtype)
        return Case((a, x), {"window": window, "strides": strides, "padding": pads})

    return sample


def _numpy_reduce_window(x, *, computation, window, strides, padding, base_dilation):
    return direct_pool(x, window, strides, padding, computation)


# no separate NumPy meaning: the impl *is* the definition (test_primitives checks the NumPy
# kernel against it, and test_conv.py checks conv_transpose against a scatter definition)
DOMAINS["conv_general"] = Domain(_conv_sample, rtol=1e-5, atol=1e-5)
DOMAINS["reduce_window"] = Domain(
    lambda data, dtype: _pool_sample(data.draw(st.sampled_from(["max", "sum"]),
                                               label="computation"))(data, dtype),
    numpy=_numpy_reduce_window, rtol=1e-5, atol=1e-5)
DOMAINS["select_and_scatter_add"] = Domain(_select_sample(True),
                                           numpy=direct_select_and_scatter_add, diff=(0,))
DOMAINS["select_and_gather"] = Domain(_select_sample(False), numpy=direct_select_and_gather,
                                      diff=(0,))
