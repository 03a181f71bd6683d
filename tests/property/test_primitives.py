"""Property tests of every primitive, driven by the domain table.

The table below registers one `Domain` per primitive of the core families
(elementwise, shape, reduce, linalg, indexing); other families add theirs in
`domains_<family>.py` (see domains.py). For every entry hypothesis checks:
(a) the shape rule against the impl (shape and exact dtype, through the
reference interpreter), (b) the impl against the NumPy meaning, (c) the VJP
by central differences in float64 (`funconv.testing.check_vjp`), (d) for
`linear=True` primitives the exact adjoint identity <ct, A v> == <A^T ct, v>,
(e) second order for nonlinear differentiable primitives. `test_registry`
checks that every primitive in REGISTRY has a VJP (or differentiable=False)
and a domain entry.

Complex cotangents follow funconv's (JAX's) bilinear convention: the adjoint
pairs by Re(sum(a * b)), without conjugation.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.ops import elementwise as E, indexing as I, linalg as L, reduce as R, shape as S
from funconv.primitive import REGISTRY
from funconv.testing import check_grads, check_vjp

from domains import (DOMAINS, Case, Domain, away, axes_subset, distinct, draw_shape, floats, ints,
                     load_family_domains, off_integers, rng)

# --- the domain table of the core families --------------------------------------------------------


def _shape(data, **kw):
    return draw_shape(data, **kw)


def _unary(np_fn, gen=floats, int_too=False, **kw) -> Domain:
    def sample(data, dtype):
        r = rng(data)
        shape = _shape(data)
        if int_too and dtype == np.float32 and data.draw(st.booleans(), label="int"):
            return Case((ints(r, shape),))
        return Case((gen(r, shape, dtype, **kw),))

    return Domain(sample, numpy=np_fn)


def _binary(np_fn, gen_x=floats, gen_y=floats, int_too=False, **kw) -> Domain:
    def sample(data, dtype):
        r = rng(data)
        shape = _shape(data)
        if int_too and dtype == np.float32 and data.draw(st.booleans(), label="int"):
            x = ints(r, shape)
            y = ints(r, shape, 1, 4) * r.choice([-1, 1], size=shape).astype(np.int32)
            return Case((x, y))
        return Case((gen_x(r, shape, dtype), gen_y(r, shape, dtype)))

    return Domain(sample, numpy=np_fn, **kw)


def _positive(r, shape, dtype):
    return floats(r, shape, dtype, 0.5, 3.0)


def _ties(r, shape, dtype):
    # values on a coarse grid, so comparisons meet equal operands too
    return (r.integers(-2, 3, size=shape) * 0.5).astype(dtype)


def _max_pair(data, dtype):
    r = rng(data)
    shape = _shape(data)
    x = floats(r, shape, dtype)
    return Case((x, (x + away(r, shape, dtype, 0.1, 1.0)).astype(dtype)))


def _rem_pair(data, dtype):
    r = rng(data)
    shape = _shape(data)
    if dtype == np.float32 and data.draw(st.booleans(), label="int"):
        y = ints(r, shape, 1, 4) * r.choice([-1, 1], size=shape).astype(np.int32)
        return Case((ints(r, shape, -9, 10), y))
    y = away(r, shape, dtype, 0.5, 2.0)
    # x / y away from integers, so floor(x / y) is locally constant
    return Case(((y * off_integers(r, shape, np.float64)).astype(dtype), y))


def _pow_pair(data, dtype):
    r = rng(data)
    shape = _shape(data)
    if dtype == np.float32 and data.draw(st.booleans(), label="int"):
        return Case((ints(r, shape, -3, 4), ints(r, shape, 0, 4)))
    return Case((_positive(r, shape, dtype), floats(r, shape, dtype)))


def _logistic(x):
    return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


_UNARY = {
    "neg": _unary(np.negative, int_too=True),
    "exp": _unary(np.exp),
    "log": _unary(np.log, _positive),
    "log1p": _unary(np.log1p, floats, lo=-0.5, hi=2.0),
    "expm1": _unary(np.expm1),
    "sin": _unary(np.sin),
    "cos": _unary(np.cos),
    "tanh": _unary(np.tanh),
    "logistic": _unary(_logistic, floats, lo=-6.0, hi=6.0),
    "sqrt": _unary(np.sqrt, _positive),
    "rsqrt": _unary(lambda x: (1 / np.sqrt(x)).astype(x.dtype), _positive),
    "abs": _unary(np.abs, away, int_too=True),
    "sign": _unary(np.sign, away, int_too=True),
    "floor": _unary(np.floor, off_integers),
    "ceil": _unary(np.ceil, off_integers),
    "round": _unary(np.round, off_integers),
    "erf": _unary(lambda x: np.vectorize(math.erf, otypes=[x.dtype])(x), floats, lo=-3.0, hi=3.0),
    "square": _unary(np.square, int_too=True),
}
_BINARY = {
    "add": _binary(np.add, int_too=True),
    "sub": _binary(np.subtract, int_too=True),
    "mul": _binary(np.multiply, int_too=True),
    "div": _binary(np.true_divide, floats, away),
    "atan2": _binary(np.arctan2, away, away),
}
DOMAINS.update(_UNARY)
DOMAINS.update(_BINARY)
DOMAINS["max"] = Domain(_max_pair, numpy=np.maximum)
DOMAINS["min"] = Domain(_max_pair, numpy=np.minimum)
DOMAINS["pow"] = Domain(_pow_pair, numpy=np.power, rtol=1e-5)
DOMAINS["floor_divide"] = Domain(_rem_pair, numpy=np.floor_divide)
DOMAINS["rem"] = Domain(_rem_pair, numpy=np.remainder, atol=1e-5)
for _name, _fn in [("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                   ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)]:
    DOMAINS[_name] = _binary(_fn, _ties, _ties)


def _bits(data, dtype, n):
    r = rng(data)
    shape = _shape(data)
    if data.draw(st.booleans(), label="bool"):
        return Case(tuple(r.random(shape) < 0.5 for _ in range(n)))
    return Case(tuple(ints(r, shape, -8, 9) for _ in range(n)))


DOMAINS["not"] = Domain(lambda data, dtype: Case((rng(data).random(_shape(data)) < 0.5,)),
                        numpy=np.logical_not)
DOMAINS["and"] = Domain(lambda data, dtype: _bits(data, dtype, 2), numpy=np.bitwise_and)
DOMAINS["or"] = Domain(lambda data, dtype: _bits(data, dtype, 2), numpy=np.bitwise_or)
DOMAINS["xor"] = Domain(lambda data, dtype: _bits(data, dtype, 2), numpy=np.bitwise_xor)


def _select(data, dtype):
    r = rng(data)
    shape = _shape(data)
    return Case((r.random(shape) < 0.5, floats(r, shape, dtype), floats(r, shape, dtype)))


DOMAINS["select"] = Domain(_select, numpy=np.where, diff=(1, 2))


def _complex_of(r, shape, dtype):
    cd = np.complex64 if dtype == np.float32 else np.complex128
    return (floats(r, shape, dtype) + 1j * away(r, shape, dtype)).astype(cd)


def _convert(data, dtype):
    r = rng(data)
    x = floats(r, _shape(data), dtype, -3.0, 3.0)
    if dtype == np.float64:  # the derivative checks: float targets round, so pick exact ones
        targets = [np.float64, np.complex128]
    else:
        targets = [np.float64, np.int32, np.int64, np.complex64, np.bool_, np.float32]
    return Case((x,), {"new_dtype": np.dtype(data.draw(st.sampled_from(targets), label="to"))})


DOMAINS["convert_element_type"] = Domain(_convert, numpy=lambda x, *, new_dtype: x.astype(new_dtype),
                                         complex_io=True)
DOMAINS["real"] = Domain(lambda data, dtype: Case((_complex_of(rng(data), _shape(data), dtype),)),
                         numpy=np.real, complex_io=True)
DOMAINS["imag"] = Domain(lambda data, dtype: Case((_complex_of(rng(data), _shape(data), dtype),)),
                         numpy=np.imag, complex_io=True)
DOMAINS["conj"] = Domain(lambda data, dtype: Case((_complex_of(rng(data), _shape(data), dtype),)),
                         numpy=np.conj, complex_io=True)
DOMAINS["abs_complex"] = Domain(lambda data, dtype: Case((_complex_of(rng(data), _shape(data), dtype),)),
                                numpy=np.abs, complex_io=True)
DOMAINS["complex"] = _binary(lambda x, y: (x + 1j * y).astype(np.result_type(x.dtype, np.complex64)),
                             complex_io=True)

# --- shape ----------------------------------------------------------------------------------------


def _broadcast_to(data, dtype):
    r = rng(data)
    xs = _shape(data, max_side=3)
    lead = _shape(data, max_dims=2, max_side=3)
    target = lead + tuple(data.draw(st.integers(1, 3), label="stretch") if d == 1 else d for d in xs)
    return Case((floats(r, xs, dtype),), {"shape": target})


def _reshape(data, dtype):
    r = rng(data)
    xs = _shape(data)
    n = int(np.prod(xs, dtype=np.int64))
    target = data.draw(st.sampled_from([(n,), xs[::-1], (1,) + xs, xs + (1,), (n, 1)]), label="to")
    return Case((floats(r, xs, dtype),), {"shape": tuple(target)})


def _transpose(data, dtype):
    r = rng(data)
    xs = _shape(data)
    return Case((floats(r, xs, dtype),), {"perm": tuple(int(p) for p in r.permutation(len(xs)))})


def _slice(data, dtype):
    r = rng(data)
    xs = _shape(data, min_dims=1, max_side=5)
    start, limit, strides = [], [], []
    for n in xs:
        s = data.draw(st.integers(0, n), label="start")
        start.append(s)
        limit.append(data.draw(st.integers(s, n), label="limit"))
        strides.append(data.draw(st.integers(1, 3), label="stride"))
    return Case((floats(r, xs, dtype),), {"start_indices": tuple(start), "limit_indices": tuple(limit),
                                          "strides": tuple(strides)})


def _slice_np(x, *, start_indices, limit_indices, strides):
    return x[tuple(slice(a, b, c) for a, b, c in zip(start_indices, limit_indices, strides))]


def _pad(data, dtype):
    r = rng(data)
    xs = _shape(data, max_side=3)
    config = []
    for n in xs:
        lo, hi = data.draw(st.integers(-2, 2), label="lo"), data.draw(st.integers(-2, 2), label="hi")
        interior = data.draw(st.integers(0, 2), label="interior")
        if lo + hi + n + max(n - 1, 0) * interior < 0:
            lo, hi = max(lo, 0), max(hi, 0)
        config.append((lo, hi, interior))
    return Case((floats(r, xs, dtype), np.asarray(r.uniform(-1, 1), dtype)), {"config": tuple(config)})


def _pad_np(x, v, *, config):
    # the meaning, element by element: output position q along an axis reads x[(q - lo) / (i + 1)]
    # when that is a whole in-range position, and the padding value otherwise
    shape = tuple(lo + hi + n + max(n - 1, 0) * i for n, (lo, hi, i) in zip(x.shape, config))
    out = np.full(shape, v, x.dtype)
    for q in np.ndindex(*shape):
        src = []
        for qd, n, (lo, hi, i) in zip(q, x.shape, config):
            p = qd - lo
            if p < 0 or p % (i + 1) or p // (i + 1) >= n:
                break
            src.append(p // (i + 1))
        else:
            out[q] = x[tuple(src)]
    return out


def _concatenate(data, dtype):
    r = rng(data)
    xs = _shape(data, min_dims=1)
    axis = data.draw(st.integers(0, len(xs) - 1), label="axis")
    k = data.draw(st.integers(1, 3), label="k")
    args = []
    for _ in range(k):
        s = list(xs)
        s[axis] = data.draw(st.integers(0, 3), label="size")
        args.append(floats(r, tuple(s), dtype))
    return Case(tuple(args), {"axis": axis})


def _flip(data, dtype):
    r = rng(data)
    xs = _shape(data)
    return Case((floats(r, xs, dtype),), {"axes": axes_subset(data, len(xs))})


DOMAINS["broadcast_to"] = Domain(_broadcast_to, numpy=lambda x, *, shape: np.broadcast_to(x, shape))
DOMAINS["reshape"] = Domain(_reshape, numpy=lambda x, *, shape: x.reshape(shape))
DOMAINS["transpose"] = Domain(_transpose, numpy=lambda x, *, perm: x.transpose(perm))
DOMAINS["slice"] = Domain(_slice, numpy=_slice_np)
DOMAINS["pad"] = Domain(_pad, numpy=_pad_np)
DOMAINS["concatenate"] = Domain(_concatenate, numpy=lambda *xs, axis: np.concatenate(xs, axis))
DOMAINS["flip"] = Domain(_flip, numpy=lambda x, *, axes: np.flip(x, axes))

# --- reductions -----------------------------------------------------------------------------------


def _reduce(gen):
    def sample(data, dtype):
        r = rng(data)
        xs = _shape(data)
        return Case((gen(r, xs, dtype),), {"axes": axes_subset(data, len(xs))})

    return sample


def _prod_values(r, shape, dtype):
    return away(r, shape, dtype, 0.5, 1.5)


def _axis(gen):
    def sample(data, dtype):
        r = rng(data)
        xs = _shape(data, min_dims=1)
        return Case((gen(r, xs, dtype),), {"axis": data.draw(st.integers(0, len(xs) - 1), label="axis")})

    return sample


DOMAINS["reduce_sum"] = Domain(_reduce(floats), numpy=lambda x, *, axes: np.sum(x, axis=axes), rtol=1e-5)
DOMAINS["reduce_max"] = Domain(_reduce(distinct), numpy=lambda x, *, axes: np.max(x, axis=axes))
DOMAINS["reduce_min"] = Domain(_reduce(distinct), numpy=lambda x, *, axes: np.min(x, axis=axes))
DOMAINS["reduce_prod"] = Domain(_reduce(_prod_values), numpy=lambda x, *, axes: np.prod(x, axis=axes),
                                rtol=1e-5)
DOMAINS["cumsum"] = Domain(_axis(floats), numpy=lambda x, *, axis: np.cumsum(x, axis=axis), rtol=1e-5,
                           atol=1e-5)
DOMAINS["argmax"] = Domain(_axis(distinct),
                           numpy=lambda x, *, axis: np.argmax(x, axis=axis).astype(np.int32))
DOMAINS["argmin"] = Domain(_axis(distinct),
                           numpy=lambda x, *, axis: np.argmin(x, axis=axis).astype(np.int32))

# --- dot_general ----------------------------------------------------------------------------------


def _dot_general(data, dtype):
    r = rng(data)
    n = {k: data.draw(st.integers(0, 2), label=k) for k in ("batch", "contract", "xfree", "yfree")}
    size = {f"{k}{i}": data.draw(st.integers(1, 3), label="size") for k in n for i in range(n[k])}
    xl = [f"batch{i}" for i in range(n["batch"])] + [f"contract{i}" for i in range(n["contract"])] \
        + [f"xfree{i}" for i in range(n["xfree"])]
    yl = [f"batch{i}" for i in range(n["batch"])] + [f"contract{i}" for i in range(n["contract"])] \
        + [f"yfree{i}" for i in range(n["yfree"])]
    xl = [xl[i] for i in r.permutation(len(xl))]
    yl = [yl[i] for i in r.permutation(len(yl))]
    pos = lambda lab, kind: tuple(lab.index(f"{kind}{i}") for i in range(n[kind]))  # noqa: E731
    dn = ((pos(xl, "contract"), pos(yl, "contract")), (pos(xl, "batch"), pos(yl, "batch")))
    x = floats(r, tuple(size[k] for k in xl), dtype)
    y = floats(r, tuple(size[k] for k in yl), dtype)
    return Case((x, y), {"dimension_numbers": dn})


def _dot_general_np(x, y, *, dimension_numbers):
    (xc, yc), (xb, yb) = dimension_numbers
    letters = iter("abcdefghijklmnop")
    xs, ys = [None] * x.ndim, [None] * y.ndim
    for a, b in list(zip(xc, yc)) + list(zip(xb, yb)):
        xs[a] = ys[b] = next(letters)
    xs = [c or next(letters) for c in xs]
    ys = [c or next(letters) for c in ys]
    out = [xs[a] for a in xb] + [c for i, c in enumerate(xs) if i not in xc and i not in xb] \
        + [c for i, c in enumerate(ys) if i not in yc and i not in yb]
    return np.einsum(f"{''.join(xs)},{''.join(ys)}->{''.join(out)}", x, y).astype(x.dtype)


DOMAINS["dot_general"] = Domain(_dot_general, numpy=_dot_general_np, rtol=1e-5, atol=1e-5)

# --- indexing -------------------------------------------------------------------------------------


def _iota(data, dtype):
    shape = _shape(data, min_dims=1, min_side=0)
    return Case((), {"shape": shape, "dimension": data.draw(st.integers(0, len(shape) - 1), label="dim"),
                     "dtype": np.dtype(data.draw(st.sampled_from([np.int32, np.int64, np.float32]),
                                                 label="dtype"))})


def _iota_np(*, shape, dtype, dimension):
    return np.indices(shape, dtype=dtype)[dimension] if len(shape) else np.zeros((), dtype)


def _gather_case(data, dtype, with_updates):
    r = rng(data)
    xs = _shape(data, min_dims=1, max_side=4)
    k = data.draw(st.integers(1, len(xs)), label="k")
    batch = _shape(data, max_dims=2, min_side=0, max_side=4)
    idx = np.stack([r.integers(0, xs[j], size=batch) for j in range(k)], axis=-1).astype(
        data.draw(st.sampled_from([np.int32, np.int64]), label="idx dtype"))
    args = (floats(r, xs, dtype), idx)
    if with_updates:
        args += (floats(r, batch + xs[k:], dtype),)
    return Case(args)


def _gather_np(x, idx):
    return x[tuple(idx[..., j] for j in range(idx.shape[-1]))]


def _scatter_add_np(x, idx, upd):
    out = x.copy()
    for b in np.ndindex(*idx.shape[:-1]):
        out[tuple(idx[b])] += upd[b]
    return out


DOMAINS["iota"] = Domain(_iota, numpy=_iota_np)
DOMAINS["argsort"] = Domain(_axis(_ties),  # ties on purpose: the sort is stable
                            numpy=lambda x, *, axis: np.argsort(x, axis=axis, kind="stable").astype(np.int32))
DOMAINS["gather"] = Domain(lambda data, dtype: _gather_case(data, dtype, False), numpy=_gather_np, diff=(0,))
DOMAINS["scatter_add"] = Domain(lambda data, dtype: _gather_case(data, dtype, True), numpy=_scatter_add_np,
                                diff=(0, 2), rtol=1e-5, atol=1e-5)

# stop_gradient lives in ops/special.py; its VJP is zero on purpose, so only (a) and (b) apply
DOMAINS["stop_gradient"] = Domain(lambda data, dtype: Case((floats(rng(data), _shape(data), dtype),)),
                                  numpy=lambda x: x, vjp_is_derivative=False)

CORE_PRIMITIVES = {p.name for mod in (E, S, R, L, I) for p in vars(mod).values()
                   if isinstance(p, fc.primitive.Primitive)}

# --- every family: import every module that may define primitives, then its domains ---------------


def _import_all_funconv_modules():
    for m in pkgutil.walk_packages(fc.__path__, "funconv."):
        if m.name.startswith("funconv.backends"):
            continue  # backends lower primitives, they define none (and may need pyopencl)
        importlib.import_module(m.name)


_import_all_funconv_modules()
load_family_domains()
NAMES = sorted(DOMAINS)

# --- the checks -----------------------------------------------------------------------------------


def _limited(n):
    """At most n examples, fewer if the active profile asks for fewer."""
    return settings(max_examples=min(n, settings.default.max_examples))


def _as_arrays(args):
    return [fc.asarray(a) for a in args]


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_shape_rule_matches_impl(name, data):
    """(a) The shape/dtype rule agrees with the impl's result, in a traced graph and eagerly."""
    prim, case = REGISTRY[name], DOMAINS[name].sample(data, np.float32)
    graph = fc.make_graph(lambda *a: prim(*a, **case.params))(*case.args)
    (out,) = evaluate(graph, case.args)  # evaluate asserts shape and dtype against the rule
    rule = prim.shape_rule(*[fc.asarray(a).aval for a in case.args], **case.params)
    assert out.shape == rule.shape and out.dtype == rule.dtype
    eager = prim(*_as_arrays(case.args), **case.params)
    assert eager.aval == rule


@pytest.mark.parametrize("name", [n for n in NAMES if DOMAINS[n].numpy is not None])
@given(data=st.data())
def test_impl_matches_numpy(name, data):
    """(b) The impl computes the NumPy meaning (within the entry's float32 tolerance);
    inputs are left untouched."""
    dom = DOMAINS[name]
    prim, case = REGISTRY[name], dom.sample(data, np.float32)
    before = [np.array(a, copy=True) for a in case.args]
    got = np.asarray(prim.impl(*case.args, **case.params))
    want = np.asarray(dom.numpy(*case.args, **case.params))
    # the exact dtype is (a)'s business; a reference may compute in float64
    assert got.dtype.kind == want.dtype.kind, (got.dtype, want.dtype)
    assert got.shape == want.shape
    if got.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=dom.rtol, atol=dom.atol)
    else:
        np.testing.assert_array_equal(got, want)
    for a, b in zip(case.args, before):
        np.testing.assert_array_equal(a, b)


def _diff_indices(dom: Domain, args) -> list[int]:
    if dom.diff is not None:
        return list(dom.diff)
    return [i for i, a in enumerate(args) if np.asarray(a).dtype.kind in "fc"]


def _real_function(name, case):
    """`(f, real_args)`: the primitive as a function of its differentiable args, complex ones
    taken as (re, im) pairs and complex outputs returned as (re, im) pairs."""
    prim, dom = REGISTRY[name], DOMAINS[name]
    idx = _diff_indices(dom, case.args)
    real_args, slots = [], []
    for i in idx:
        a = case.args[i]
        if a.dtype.kind == "c":
            real_args += [np.real(a).copy(), np.imag(a).copy()]
            slots.append(2)
        else:
            real_args.append(a)
            slots.append(1)

    def f(*xs):
        full = [fc.asarray(a) for a in case.args]
        k = 0
        for i, n in zip(idx, slots):
            full[i] = E.complex_p(xs[k], xs[k + 1]) if n == 2 else xs[k]
            k += n
        out = prim(*full, **case.params)
        if out.dtype.kind == "c":
            return E.real_p(out), E.imag_p(out)
        return out

    return f, real_args


DIFFERENTIABLE = [n for n in NAMES if REGISTRY[n].differentiable and DOMAINS[n].vjp_is_derivative]


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@_limited(20)
@given(data=st.data())
def test_vjp_by_central_differences(name, data):
    """(c) <u, J v> by central differences (float64) equals <J^T u, v>."""
    case = DOMAINS[name].sample(data, np.float64)
    f, args = _real_function(name, case)
    if not args:
        return
    check_vjp(f, args)


def _pair(a, b) -> float:
    # funconv's (JAX's) bilinear pairing of cotangents with tangents
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


@pytest.mark.parametrize("name", sorted(n for n in NAMES if REGISTRY[n].linear))
@_limited(20)
@given(data=st.data())
def test_linear_adjoint_identity(name, data):
    """(d) For linear primitives, <ct, A v> == <A^T ct, v> to rounding."""
    prim, dom = REGISTRY[name], DOMAINS[name]
    case = dom.sample(data, np.float64)
    r = rng(data)
    idx = _diff_indices(dom, case.args)

    def apply(*vs):
        full = [fc.asarray(a) for a in case.args]
        for i, v in zip(idx, vs):
            full[i] = v
        return prim(*full, **case.params)

    vs = [np.asarray(case.args[i]) for i in idx]
    out, f_vjp = fc.vjp(apply, *vs)
    ct = r.standard_normal(out.shape)
    if out.dtype.kind == "c":
        ct = ct + 1j * r.standard_normal(out.shape)
    ct = ct.astype(out.dtype)
    cts = f_vjp(fc.asarray(ct))
    lhs = _pair(ct, out)
    rhs = sum(_pair(c, v) for c, v in zip(cts, vs))
    scale = np.sqrt(np.sum(np.abs(ct) ** 2) * sum(np.sum(np.abs(v) ** 2) for v in vs)) + 1
    assert abs(lhs - rhs) <= 1e-6 * scale if out.dtype in (np.float32, np.complex64) \
        else abs(lhs - rhs) <= 1e-11 * scale, (lhs, rhs)


@pytest.mark.parametrize("name", [n for n in DIFFERENTIABLE
                                  if not REGISTRY[n].linear and DOMAINS[n].second_order])
@_limited(10)
@given(data=st.data())
def test_second_order(name, data):
    """(e) The VJP of the VJP (grad of grad) by central differences, for nonlinear primitives
    (those whose domain entry does not opt out, with its reason)."""
    case = DOMAINS[name].sample(data, np.float64)
    f, args = _real_function(name, case)
    if not args:
        return
    check_grads(f, args, order=2)


# --- special points: zeros, ties and branch points -----------------------------------------------
# The table above draws generic points, away from zeros and ties. A VJP rule whose branches are
# right in value but constant (a `where` picking 0 at a zero) passes there and fails here, at
# second order: every rule must be right to all orders where the function is smooth, including
# the points where its formula switches branches. Each entry draws `(f, args)` in float64;
# entries are primitives or the compositions (wrappers) built to be smooth across a branch.


def _with_zeros(r, x, k):
    """x with k of its elements (at random positions) set to exactly 0."""
    flat = x.reshape(-1).copy()
    flat[r.permutation(flat.size)[:k]] = 0.0
    return flat.reshape(x.shape)


def _prod_at_zeros(data, dtype):
    r = rng(data)
    xs = _shape(data, min_dims=1, max_side=3)
    k = data.draw(st.integers(1, 3), label="zeros")
    axes = axes_subset(data, len(xs)) or (0,)
    x = _with_zeros(r, _prod_values(r, xs, dtype), k)
    return (lambda v: R.reduce_prod_p(v, axes=axes)), (x,)


def _pow_at_zero(data, dtype):
    # x**y at x = 0 for whole exponents (smooth in x there), d/dx only; and d/dy at y = 0
    r = rng(data)
    xs = _shape(data, max_side=3)
    y = r.integers(0, 4, size=xs).astype(dtype)
    if data.draw(st.booleans(), label="in x"):
        return (lambda v: E.pow_p(v, fc.asarray(y))), (_with_zeros(r, _positive(r, xs, dtype), 1),)
    x = _positive(r, xs, dtype)
    return (lambda x, y: E.pow_p(x, y)), (x, _with_zeros(r, floats(r, xs, dtype), 1))


def _ties_of(fn):
    def sample(data, dtype):
        r = rng(data)
        x = floats(r, _shape(data, max_side=3), dtype)
        return fn, (x, x.copy())

    return sample


def _softplus_at_zero(data, dtype):
    r = rng(data)
    return fc.nn.softplus, (_with_zeros(r, floats(r, _shape(data, min_dims=1), dtype), 1),)


def _logsumexp_ties(data, dtype):
    r = rng(data)
    xs = _shape(data, min_dims=1, max_side=3)
    x = np.broadcast_to(floats(r, xs[:-1] + (1,), dtype), xs).copy()  # every slice constant
    return (lambda v: fc.logsumexp(v, axis=-1)), (x,)


SPECIAL_POINTS = {
    "reduce_prod at zeros": _prod_at_zeros,
    "pow at zero": _pow_at_zero,
    "logaddexp at ties": _ties_of(fc.logaddexp),
    "softplus at 0": _softplus_at_zero,
    "logsumexp at ties": _logsumexp_ties,
}


@pytest.mark.parametrize("name", sorted(SPECIAL_POINTS))
@_limited(10)
@given(data=st.data())
def test_second_order_at_special_points(name, data):
    """(f) First and second derivatives by central differences at zeros and ties."""
    f, args = SPECIAL_POINTS[name](data, np.float64)
    check_grads(f, args, order=2)


# --- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry(name):
    """Every primitive (of every family) has a VJP or is marked not differentiable, and a
    domain entry here or in a domains_<family>.py module."""
    prim = REGISTRY[name]
    assert prim.vjp is not None or not prim.differentiable, \
        f"primitive {name} has no VJP rule and is not marked differentiable=False"
    assert name in DOMAINS, (f"primitive {name} has no test domain: add a Domain entry to DOMAINS "
                             "in tests/property/domains_<family>.py (see tests/property/domains.py)")


def test_core_families_have_domains():
    """The core families' own table is complete (independent of the other families)."""
    missing = sorted(CORE_PRIMITIVES - set(DOMAINS))
    assert not missing, f"core primitives without a domain entry: {missing}"
