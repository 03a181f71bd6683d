"""The property suite on the OpenCL backend (issue 13): every primitive of the domain table
(tests/property/domains*.py), on cases drawn from its domain, jitted for OpenCL (PoCL on the
CPU in CI: a real device, no mocks) against the reference interpreter on the traced graph, in
float32 and, where the device has cl_khr_fp64, float64; and for every differentiable
primitive a first-order VJP (the gradient of <ct, prim(x)> for a random cotangent), jitted
for OpenCL, against the interpreter. The primitives the backend lacks (`LACKS`: the FFT, the
dense decompositions, searchsorted) must fail with a clear OpenCLUnsupported naming them.

Every jitted function is a new OpenCL program (a PoCL build takes ~75 ms warm, more cold),
so each hypothesis example puts `CASES` cases per dtype, and their gradients, into one
jitted function: one program per example. Each primitive runs `FUNCONV_OPENCL_EXAMPLES`
examples (default 3; the first is hypothesis's simplest, scalars; more: a longer hunt);
under the CI profile they are derandomized, as everywhere.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from domains import DOMAINS, load_family_domains
from funconv.backends.interpreter import evaluate
from hypothesis import given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv.primitive import REGISTRY

pytest.importorskip("pyopencl")

load_family_domains()
import test_primitives  # registers the core primitives' domains


def _opencl_device():
    try:
        from funconv.backends.opencl.device import default_device

        return default_device()
    except Exception:  # noqa: BLE001 - no platform: every test here skips
        return None


DEVICE = _opencl_device()
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no OpenCL device")

from funconv.backends.opencl import LACKS

NAMES = sorted(DOMAINS)
RUNS = [n for n in NAMES if n not in LACKS]
DIFFERENTIABLE = [n for n in test_primitives.DIFFERENTIABLE if n not in LACKS]
EXAMPLES = int(os.environ.get("FUNCONV_OPENCL_EXAMPLES", "3"))
CASES = 3  # cases per example, all in one jitted function (one OpenCL program)
DTYPES = [np.float32] + ([np.float64] if DEVICE is not None and DEVICE.fp64 else [])

# float32: the domain's own tolerances (written for the impl against an exact NumPy meaning)
# hold on PoCL for every primitive, transcendental functions included: none is loosened.
# float64: both sides compute in double; the interpreter (NumPy) and OpenCL may sum in a
# different order and their libms differ by an ulp or two.
F64_TOL = {"rtol": 1e-10, "atol": 1e-12}


def _tol(name, dtype):
    if dtype == np.float64:
        return F64_TOL
    return {"rtol": DOMAINS[name].rtol, "atol": DOMAINS[name].atol}


def _compare(ref, got, tol, what):
    assert len(ref) == len(got), (what, len(ref), len(got))
    for k, (r, g) in enumerate(zip(ref, got)):
        g = np.asarray(g)
        msg = f"{what}, output {k}"
        assert (g.shape, g.dtype) == (r.shape, r.dtype), (msg, g.shape, g.dtype, r.shape, r.dtype)
        if r.dtype.kind in "fc":
            np.testing.assert_allclose(g, r, equal_nan=True, err_msg=msg, **tol)
        else:
            np.testing.assert_array_equal(g, r, err_msg=msg)


def _scalar_loss(name, case, r):
    """(loss, real_args): a scalar function of the primitive's differentiable (real) args,
    the pairing of its (real) outputs with a fixed random cotangent; None if it has none."""
    f, real_args = test_primitives._real_function(name, case)
    if not real_args:
        return None, []
    outs = [np.asarray(o) for o in fc.tree.leaves(f(*[fc.asarray(a) for a in real_args]))]
    cts = [r.standard_normal(o.shape).astype(o.dtype) for o in outs]

    def loss(*xs):
        total = 0.0
        for o, ct in zip(fc.tree.leaves(f(*xs)), cts):
            total = total + (o * ct).sum()
        return total

    return loss, real_args


def _pieces(name, data):
    """The example's pieces, `(label, fn, args, tol)`: for each dtype, `CASES` cases of the
    primitive and, for a differentiable one, the gradient of a scalar loss of each (a
    first-order VJP with a random cotangent) w.r.t. its differentiable arguments."""
    prim = REGISTRY[name]
    r = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="cotangent seed"))
    pieces = []
    for dtype in DTYPES:
        tol = _tol(name, dtype)
        for i in range(CASES):
            case = DOMAINS[name].sample(data, dtype)
            label = f"{np.dtype(dtype).name} case {i}: {name}{case}"
            pieces.append((label, lambda *a, c=case: prim(*a, **c.params), case.args, tol))
            if name in DIFFERENTIABLE:
                loss, real_args = _scalar_loss(name, case, r)
                if loss is not None:
                    grad = fc.grad(loss, argnums=tuple(range(len(real_args))))
                    pieces.append(("the gradient of <ct, f(x)> in " + label, grad, real_args, tol))
    return pieces


@pytest.mark.parametrize("name", RUNS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_primitive_and_its_vjp_on_opencl_match_interpreter(name, data):
    """The primitive jitted for OpenCL computes what the interpreter computes on the traced
    graph, in float32 and float64, within the domain's tolerances (exactly for integer and
    bool results), and so does the gradient of <ct, prim(x)> for a differentiable one. All
    the example's cases are one jitted function: one OpenCL program."""
    pieces = _pieces(name, data)
    counts = [len(a) for _, _, a, _ in pieces]

    def f(*flat):
        outs, k = [], 0
        for (_, fn, _, _), n in zip(pieces, counts):
            outs.append(fn(*flat[k:k + n]))
            k += n
        return outs

    args = [np.asarray(a) for _, _, a_, _ in pieces for a in a_]
    ref = evaluate(fc.make_graph(f)(*args), args)
    got = fc.jit(f, backend="opencl")(*args)
    assert len(got) == len(pieces)
    k = 0
    for (label, _, _, tol), g in zip(pieces, got):
        leaves = fc.tree.leaves(g)
        _compare(ref[k:k + len(leaves)], leaves, tol, label)
        k += len(leaves)
    assert k == len(ref)


@pytest.mark.parametrize("name", sorted(LACKS))
@settings(max_examples=1, deadline=None)
@given(data=st.data())
def test_lacking_primitive_raises_a_clear_error(name, data):
    """A primitive the backend lacks fails at compile time with OpenCLUnsupported (a
    FuncConvError and a NotImplementedError) naming it and the user's line."""
    from funconv.backends.opencl import OpenCLUnsupported

    prim, case = REGISTRY[name], DOMAINS[name].sample(data, np.float32)
    f, args = (lambda *a: prim(*a, **case.params)), case.args
    with pytest.raises(OpenCLUnsupported, match=name) as e:
        fc.jit(f, backend="opencl")(*args)
    assert isinstance(e.value, fc.errors.FuncConvError) and isinstance(e.value, NotImplementedError)
    assert "test_opencl_properties.py" in str(e.value), str(e.value)
