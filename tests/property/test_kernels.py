"""The NumPy backend's kernel table (backends/numpy/kernels): which primitives it runs
through a kernel of its own rather than their reference impl, and that every kernel
computes what its impl computes, over each primitive's test domain, eagerly and under
jit, against the interpreter (the oracle)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from domains import DOMAINS, load_family_domains
from funconv.backends.interpreter import evaluate
from funconv.backends.numpy.kernels import KERNELS
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import funconv as fc
from funconv import tracing
from funconv.primitive import REGISTRY

load_family_domains()
import test_primitives  # noqa: E402,F401  (registers the core primitives' domains: pad's)

# The primitives the NumPy backend (generated code and eager mode) runs through a kernel;
# every other primitive runs its impl there (or an inline NumPy lowering in codegen.py).
# A new kernel is added here on purpose, with a domain entry that exercises it.
NUMPY_KERNELS = {"conv_general", "fft", "pad", "reduce_window", "select_and_gather",
                 "select_and_scatter_add"}


# The primitives the NumPy backend runs through their reference impl: no inline lowering
# (backends/numpy/lowering.py) and no kernel. Their impl is their fast path too; a primitive
# that becomes hot gets a lowering or a kernel, and leaves this list on purpose.
NUMPY_RUNS_IMPL = {
    "abs_complex", "argmax", "argmin", "argsort", "complex", "concatenate", "cumsum",
    "custom_vjp_call", "erf", "flip", "gather", "imag", "iota", "logistic", "pow",
    "random_bits", "random_fold_in", "random_permutation", "random_uniform", "real",
    "reduce_prod", "relu", "round", "rsqrt", "scatter_add", "slice", "stop_gradient",
    # Array API special values (complex expm1, inf // y) need more than the bare ufunc
    "expm1", "floor_divide", "shift_left", "shift_right", "searchsorted",
    # linalg decompositions: LAPACK through their impls
    "inv", "solve", "det", "cholesky", "eigh",
}


def _params(fn):
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]


def test_which_primitives_the_numpy_backend_runs_through_their_impl():
    from funconv.backends.numpy.lowering import lowering

    runs_impl = {n for n, p in REGISTRY.items() if lowering(p) is None and p not in KERNELS}
    assert runs_impl == NUMPY_RUNS_IMPL, (
        f"new: {sorted(runs_impl - NUMPY_RUNS_IMPL)}, gone: {sorted(NUMPY_RUNS_IMPL - runs_impl)}; "
        "update NUMPY_RUNS_IMPL (and give a hot primitive a lowering or a kernel)")


def test_which_primitives_have_a_numpy_kernel():
    assert {p.name for p in KERNELS} == NUMPY_KERNELS
    for prim, fn in KERNELS.items():
        assert REGISTRY[prim.name] is prim
        assert tracing.kernel(prim) is fn, f"eager mode does not use the {prim.name} kernel"
        assert prim.name in DOMAINS, f"the {prim.name} kernel has no test domain"
        # the generated code calls a kernel exactly as it would call the impl
        assert _params(fn) == _params(prim.impl), prim.name


@pytest.mark.parametrize("name", sorted(NUMPY_KERNELS))
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_numpy_kernel_matches_impl(name, data):
    """The kernel (eagerly, and in the generated code under jit) against the impl run by
    the interpreter, in float64; inputs are left untouched."""
    prim = REGISTRY[name]
    case = DOMAINS[name].sample(data, np.float64)
    before = [np.array(a, copy=True) for a in case.args]
    f = lambda *a: prim(*a, **case.params)
    (want,) = evaluate(fc.make_graph(f)(*case.args), case.args)
    eager = f(*[fc.asarray(a) for a in case.args])
    jitted = fc.jit(f)(*case.args)
    for got in (eager, jitted):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)
    for a, b in zip(case.args, before):
        np.testing.assert_array_equal(a, b)


def test_fft_keeps_its_operands_memory_order():
    """fft transforms a permuted view in memory order and returns the same permutation of
    a fresh array, with the impl's values."""
    x = np.random.default_rng(0).standard_normal((4, 8, 32, 32))
    view = x.transpose(2, 3, 0, 1)
    got = KERNELS[REGISTRY["fft"]](view, fft_type="rfft", fft_lengths=(4, 8))
    np.testing.assert_allclose(got, np.fft.rfftn(view, axes=(2, 3)), rtol=1e-12, atol=1e-12)
    assert got.transpose(2, 3, 0, 1).flags.c_contiguous  # x's memory order, kept


@pytest.mark.parametrize("config", [
    ((1, 2, 0), (0, 3, 0), (0, 0, 0), (0, 0, 0)),  # the blocked copy: spatial axes padded
    ((0, 0, 0), (2, 2, 0), (0, 0, 0), (0, 0, 0)),
    ((1, 2, 0), (0, 3, 0), (1, 0, 0), (0, 0, 0)),  # the impl: a moved axis padded,
    ((-1, 2, 0), (0, 3, 0), (0, 0, 0), (0, 0, 0)),  # cropped,
    ((1, 2, 1), (0, 3, 0), (0, 0, 0), (0, 0, 0)),  # or dilated
])
def test_pad_of_a_transposed_view(config):
    """pad of a large (N, C, H, W) array seen as (H, W, N, C), the layout FFT convolution
    pads, with N*C = 36 planes (not a multiple of the copy's block): np.pad's values and
    its C-contiguous layout."""
    from funconv.backends.numpy.kernels import shape

    x = np.random.default_rng(1).standard_normal((4, 9, 64, 64))
    view = x.transpose(2, 3, 0, 1)
    assert view.nbytes >= shape.MIN_BYTES and shape._rotated(view) == 2
    got = KERNELS[REGISTRY["pad"]](view, np.float64(0.5), config=config)
    np.testing.assert_array_equal(got, REGISTRY["pad"].impl(view, 0.5, config=config))
    assert got.flags.c_contiguous


def test_pad_of_another_permuted_view_keeps_its_memory_order():
    """A large permuted view that is not a rotation (conv11's cotangent, laid out with its
    last two axes swapped) is padded into its own memory order (a fast copy), not into
    np.pad's C order (a slow one): np.pad's values, x's layout."""
    from funconv.backends.numpy import kernels
    from funconv.backends.numpy.kernels import shape

    x = np.random.default_rng(2).standard_normal((64, 64, 9, 4)).transpose(0, 1, 3, 2)
    assert x.nbytes >= shape.MIN_BYTES and not shape._rotated(x)
    config = ((1, 2, 0), (0, 3, 0), (0, 0, 0), (0, 0, 0))
    got = KERNELS[REGISTRY["pad"]](x, np.float64(0.5), config=config)
    np.testing.assert_array_equal(got, REGISTRY["pad"].impl(x, 0.5, config=config))
    assert kernels.memory_order(got) == kernels.memory_order(x) == (0, 1, 3, 2)


@pytest.mark.parametrize("name", ["fft", "pad"])
@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_layout_choosing_kernels_on_permuted_views(name, data):
    """The kernels that look at their operand's layout (fft, pad) give the impl's values on
    any permuted view."""
    prim = REGISTRY[name]
    case = DOMAINS[name].sample(data, np.float64)
    x, *rest = case.args
    assume(x.ndim >= 2)
    perm = tuple(data.draw(st.permutations(range(x.ndim)), label="perm"))
    inv = tuple(int(a) for a in np.argsort(perm))
    view = np.ascontiguousarray(x.transpose(perm)).transpose(inv)  # x's values, permuted memory
    got = KERNELS[prim](view, *rest, **case.params)
    np.testing.assert_allclose(got, prim.impl(x, *rest, **case.params), rtol=1e-10, atol=1e-12)
