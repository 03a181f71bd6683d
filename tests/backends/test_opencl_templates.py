"""Every elementwise primitive's OpenCL C template (its `c_expr`, funconv/ops/) means what its
NumPy impl means, on the real device (PoCL on the CPU in CI), with the NumPy backend as the
reference: NaN, infinities, -0.0 (the sign of a zero result must match), subnormals, the
largest and smallest integers, division by zero and INT_MIN // -1, bools, complex values.

One jitted function per dtype applies every primitive that takes it (one OpenCL program
each: PoCL compiles are ~1 s cold). A new elementwise primitive is picked up here by itself.
"""

import itertools

import numpy as np
import pytest

import funconv as fc
from funconv.errors import DTypeError
from funconv.ops import elementwise as ew
from funconv.primitive import REGISTRY
from funconv.types import ArrayType

pytest.importorskip("pyopencl")


@pytest.fixture(scope="module")
def device():
    from funconv.backends.opencl.device import OpenCLUnavailable, default_device

    try:
        return default_device()
    except OpenCLUnavailable as e:
        pytest.skip(str(e))


# results that must be bit-exact (correctly rounded IEEE operations, or exact by definition);
# the others are library functions (exp, sin, pow, erf, ...), allowed a few ulp
EXACT = {"neg", "abs", "sign", "floor", "ceil", "round", "square", "not", "add", "sub", "mul", "div",
         "sqrt", "floor_divide", "rem", "max", "min", "and", "or", "xor", "lt", "le", "gt", "ge", "eq",
         "ne", "select", "relu", "copysign", "nextafter", "signbit", "bitwise_not", "shift_left",
         "shift_right", "real", "imag", "conj", "complex", "convert_element_type"}
ULPS = {np.dtype("float32"): 4e-6, np.dtype("float64"): 1e-14}
SKIP = {"convert_element_type", "select"}  # tested below with their own operands

_inf, _nan = np.inf, np.nan
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.75, -7.0, 1e-3, 100.0, -100.0, 1e30, -1e30, _inf, -_inf,
          _nan, 5e-324]
INTS = {np.dtype("int32"): [0, 1, -1, 2, -2, 3, -7, 31, 32, 33, 100, 2**31 - 1, -2**31],
        np.dtype("int64"): [0, 1, -1, 2, -3, 7, -7, 63, 64, 65, 2**40, 2**63 - 1, -2**63],
        np.dtype("uint32"): [0, 1, 2, 3, 7, 31, 32, 33, 100, 2**31, 2**32 - 1]}


def _elementwise_prims():
    """(primitive, number of operands) of every primitive with a C template."""
    out = []
    for name, p in sorted(REGISTRY.items()):
        if p.c_expr is None or name in SKIP:
            continue
        arity = p.ufunc.nin if p.ufunc is not None else 2
        for dt in ("float32", "int32") if p.ufunc is None else ():
            try:
                p.impl(np.ones(2, dt))
                arity = 1
            except TypeError:
                continue
        out.append((p, arity))
    return out


def _accepts(p, arity, dtype) -> bool:
    try:
        p.shape_rule(*[ArrayType((3,), np.dtype(dtype))] * arity)
    except DTypeError:
        return False
    return p.c_template(np.dtype(dtype).kind) is not None


def _operands(dtype):
    """Two arrays holding every pair of the dtype's special values (x, y)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        vals = np.array(FLOATS, dtype)  # 5e-324 rounds to 0 in float32: the subnormal below
        vals[-1] = np.finfo(dtype).smallest_subnormal
    elif dtype.kind == "b":
        vals = np.array([False, True])
    else:
        vals = np.array(INTS[dtype], dtype)
    pairs = np.array(list(itertools.product(range(len(vals)), repeat=2)))
    return vals[pairs[:, 0]], vals[pairs[:, 1]]


def _compare(name, got, want, dtype):
    got = np.asarray(got)
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    if want.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want, err_msg=name)
        return
    for part in ((lambda a: a.real), (lambda a: a.imag)) if want.dtype.kind == "c" else ((lambda a: a),):
        g, w = part(got), part(want)
        bad = np.isnan(g) != np.isnan(w)
        zero = (w == 0) & (g == 0)
        bad |= zero & (np.signbit(g) != np.signbit(w))
        fin = ~np.isnan(w) & ~zero
        if name in EXACT:
            bad |= fin & (g != w)
        else:
            with np.errstate(all="ignore"):
                tol = ULPS[np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype("float32")]
                rel = np.abs(g - w) / np.maximum(np.abs(w), np.finfo(w.dtype).tiny)
            bad |= fin & ~((g == w) | (rel <= tol))
        assert not bad.any(), f"{name}: got {g[bad][:8]} where NumPy gives {w[bad][:8]}"


def _check_dtype(dtype):
    prims = [(p, k) for p, k in _elementwise_prims() if _accepts(p, k, dtype)]
    assert prims
    x, y = _operands(dtype)
    ys = y % np.array(8 * np.dtype(dtype).itemsize + 3, dtype) if np.dtype(dtype).kind in "iu" else y

    def f(x, y, ys):
        outs = []
        for p, k in prims:
            second = ys if p.name.startswith("shift") else y
            outs.append(p(x) if k == 1 else p(x, second))
        return outs

    want = fc.jit(f, backend="numpy")(x, y, ys)
    got = fc.jit(f, backend="opencl")(x, y, ys)
    for (p, _), g, w in zip(prims, got, want):
        _compare(p.name, g, np.asarray(w), dtype)
    return {p.name for p, _ in prims}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint32", "bool"])
def test_templates_match_numpy_on_special_values(device, dtype):
    if dtype == "float64" and not device.fp64:
        pytest.skip("the device has no cl_khr_fp64")
    names = _check_dtype(dtype)
    if dtype == "float32":  # the float functions are all here
        assert {"exp", "log", "erf", "max", "relu", "floor_divide", "rem", "nextafter"} <= names


def test_every_template_is_checked():
    """Each elementwise primitive is covered by some dtype above, or by the tests below."""
    covered = set()
    for dtype in ["float32", "int32", "uint32", "bool", "complex64"]:
        covered |= {p.name for p, k in _elementwise_prims() if _accepts(p, k, dtype)}
    missing = {name for name, p in REGISTRY.items() if p.c_expr is not None} - covered - SKIP
    assert not missing, missing


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_templates_match_numpy(device, dtype):
    if dtype == "complex128" and not device.fp64:
        pytest.skip("the device has no cl_khr_fp64")
    rt = np.float32 if dtype == "complex64" else np.float64
    a, b = _operands(rt)
    keep = np.isfinite(a) & np.isfinite(b) & (np.abs(a) < 1e20) & (np.abs(b) < 1e20)
    z = (a[keep] + 1j * b[keep]).astype(dtype)
    w = z[::-1].copy()
    w[w == 0] = 1  # complex division by zero: NumPy's own special cases, not C's
    prims = [(p, k) for p, k in _elementwise_prims() if _accepts(p, k, dtype)]

    def f(z, w):
        return [p(z) if k == 1 else p(z, w) for p, k in prims] + [ew.real_p(z), ew.imag_p(w),
                                                                  ew.complex_p(ew.real_p(z), ew.imag_p(w))]

    want = fc.jit(f, backend="numpy")(z, w)
    got = fc.jit(f, backend="opencl")(z, w)
    names = [p.name for p, _ in prims] + ["real", "imag", "complex"]
    assert {"add", "mul", "div", "square", "conj", "eq", "abs_complex"} <= set(names)
    for name, g, wv in zip(names, got, want):
        wv = np.asarray(wv)
        if name in ("mul", "div", "square", "abs_complex"):  # a few roundings, not one
            np.testing.assert_allclose(np.asarray(g), wv, rtol=ULPS[np.dtype(rt)] * 4, err_msg=name)
        else:
            _compare(name, g, wv, rt)


def test_select_and_conversions_match_numpy(device):
    x, y = _operands(np.float32)
    i, j = _operands(np.int32)
    types = ["float32", "int32", "int64", "uint32", "bool"] + (["float64"] if device.fp64 else [])

    def f(x, y, i, j):
        outs = [ew.select_p(x < y, x, y), ew.select_p(i > j, i, j)]
        for t in types:
            # float -> int of NaN, inf or out-of-range values is undefined in C and NumPy alike:
            # only the representable ones
            xf = fc.where(fc.abs(x) < 2e9, x, 0.5) if t in ("int32", "uint32") else x
            xf = fc.where(xf >= 0, xf, 1.0) if t == "uint32" else xf
            outs += [xf.astype(t) if t not in ("int64",) else fc.where(fc.abs(x) < 1e18, x, 0.5).astype(t),
                     i.astype(t), (i > 0).astype(t)]
        return outs

    want = fc.jit(f, backend="numpy")(x, y, i, j)
    got = fc.jit(f, backend="opencl")(x, y, i, j)
    for k, (g, w) in enumerate(zip(got, want)):
        _compare(f"select/convert output {k}", g, np.asarray(w), np.float32)
