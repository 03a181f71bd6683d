"""Random programs from a grammar of primitives (hypothesis), evaluated by the reference
interpreter (on the unoptimised graph) and by the NumPy and OpenCL backends (after the
passes), compared within tolerance; the same for their gradients."""

import os

import numpy as np
import pytest
from funconv.backends.interpreter import evaluate
from hypothesis import example, given, settings
from hypothesis import strategies as st

import funconv as fc

# --- the grammar -------------------------------------------------------------------------------------
# An instruction is (op, i, j, k): op picks the rule, i and j pick operands from the pool of
# values computed so far (modulo its size), k picks a variant. Every rule keeps values in a
# moderate range, so float32 comparisons stay meaningful.

UNARY = {
    "neg": lambda x: -x,
    "tanh": fc.tanh,
    "sin": fc.sin,
    "cos": fc.cos,
    "sigmoid": fc.sigmoid,
    "exp_tanh": lambda x: fc.exp(fc.tanh(x)),
    "log1p_sq": lambda x: fc.log(1.0 + x * x),
    "relu": lambda x: fc.maximum(x, 0.0),
    "abs": fc.abs,
    "sqrt": lambda x: fc.sqrt(x * x + 1.0),
    "square_t": lambda x: fc.square(fc.tanh(x)),
    "scale": lambda x: x * 0.5 - 1.0,
    "identities": lambda x: ((-(-x)) * 1.0 + 0.0) / 1.0,  # noqa: B002 - passes remove all of it
    "plus_zeros": lambda x: x + fc.zeros(x.shape) * 1.0,
}

BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / (2.0 + fc.sin(y)),
    "max": fc.maximum,
    "min": fc.minimum,
    "where": lambda x, y: fc.where(x > y, x, y * 0.5),
}


def _broadcastable(small, big):
    return len(small) <= len(big) and all(s in (1, b) for s, b in zip(small[::-1], big[::-1]))


def run_program(prog, inputs):
    """Replay `prog` on funconv values; returns the last two pool values."""
    pool = list(inputs)
    for op, i, j, k in prog:
        x = pool[i % len(pool)]
        if op in UNARY:
            pool.append(UNARY[op](x))
        elif op in BINARY:
            partners = [p for p in pool if _broadcastable(p.shape, x.shape)]
            y = partners[j % len(partners)]
            # operand order varies too, when the partner is not the smaller (broadcast) one
            pool.append(BINARY[op](y, x) if k % 2 and y.shape == x.shape else BINARY[op](x, y))
        elif op == "sum":
            if x.ndim == 0:
                pool.append(x * 2.0)
            else:
                pool.append(x.sum(axis=k % x.ndim, keepdims=bool(j % 2)))
        elif op == "mean_all":
            pool.append(x.mean() + x)
        elif op == "transpose":
            pool.append(x.T if x.ndim >= 2 else x)
        elif op == "reshape":
            if k % 2 or x.ndim < 2:
                pool.append(x.reshape(-1))
            else:
                pool.append(x.reshape(x.shape[0], -1).T.reshape(x.shape))
        elif op == "matmul":
            others = [p for p in pool if p.ndim >= 1 and p.shape[0] == (x.shape[-1] if x.ndim else -1)]
            if x.ndim >= 1 and others:
                y = others[j % len(others)]
                pool.append(fc.tanh(x @ y))
            else:
                pool.append(x)
        elif op == "outer":
            if x.ndim == 1:
                y = pool[j % len(pool)].reshape(-1)
                pool.append(fc.reshape(x, (-1, 1)) * fc.reshape(y, (1, -1)))
            else:
                pool.append(x)
        elif op == "cumsum":
            pool.append(fc.cumsum(x, axis=k % x.ndim) * 0.3 if x.ndim else x)
        elif op == "max_axis":
            pool.append(x - x.max(axis=k % x.ndim, keepdims=True) if x.ndim else x)
        elif op == "logsumexp":
            pool.append(fc.logsumexp(x, axis=k % x.ndim, keepdims=True) - x if x.ndim else x)
        elif op == "roll":  # slices and a concatenate
            if x.ndim and x.shape[-1] > 1:
                pool.append(fc.concatenate([x[..., 1:], x[..., :1]], axis=-1))
            else:
                pool.append(x)
        elif op == "pad_slice":
            if x.ndim:
                pool.append(fc.pad(x, [(1, 1)] + [(0, 0)] * (x.ndim - 1))[1:-1] * 1.5)
            else:
                pool.append(x)
        elif op == "at_set":
            pool.append(x.at[0].set(0.5) if x.ndim else x)
        elif op == "flip":
            pool.append(fc.flip(x, axis=k % x.ndim) if x.ndim else x)
        elif op == "var":
            pool.append(x.var(axis=k % x.ndim, keepdims=True) + x if x.ndim else x)
        elif op == "where_const":
            pool.append(fc.where(x > 0, x, fc.ones(x.shape) * 0.25))
    return pool[-1], pool[-2]


OPS = sorted(UNARY) + sorted(BINARY) + ["sum", "mean_all", "transpose", "reshape", "matmul",
                                         "outer", "where_const", "cumsum", "max_axis", "logsumexp", "roll",
                                         "pad_slice", "at_set", "flip", "var"]

programs = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 50), st.integers(0, 50),
                              st.integers(0, 50)), min_size=1, max_size=10)
dtypes = st.sampled_from([np.float32, np.float64])


def _inputs(seed, dtype):
    rng = np.random.default_rng(seed)
    return [fc.array(rng.uniform(-2, 2, (3, 4)).astype(dtype)),
            fc.array(rng.uniform(-2, 2, (4,)).astype(dtype)),
            fc.array(rng.uniform(-2, 2, (4, 3)).astype(dtype))]


def _tol(dtype):
    return {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-10}


def _compare(f, args, dtype, backend="numpy"):
    ref = evaluate(fc.make_graph(f)(*args), args)  # the oracle, on the graph as traced
    got = fc.tree.leaves(fc.jit(f, backend=backend)(*args))
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        g = np.asarray(g)
        assert r.shape == g.shape and r.dtype == g.dtype, (r.dtype, r.shape, g.dtype, g.shape)
        np.testing.assert_allclose(g, r, **_tol(dtype))


@given(programs, st.integers(0, 2**31 - 1), dtypes)
def test_random_programs_match_the_interpreter(prog, seed, dtype):
    args = _inputs(seed, dtype)
    _compare(lambda a, b, c: run_program(prog, [a, b, c]), args, dtype)


def _program_grad(prog):
    """The gradient of a scalar loss of the program's two outputs, w.r.t. its three inputs."""
    def loss(a, b, c):
        o1, o2 = run_program(prog, [a, b, c])
        return (o1 * o1).sum() + o2.sum()

    return fc.grad(loss, argnums=(0, 1, 2))


@given(programs, st.integers(0, 2**31 - 1), dtypes)
def test_random_program_gradients_match_the_interpreter(prog, seed, dtype):
    _compare(_program_grad(prog), _inputs(seed, dtype), dtype)


@given(programs, st.integers(0, 2**31 - 1))
def test_random_programs_with_donation(prog, seed):
    """Donating the first argument changes no result and never touches the others."""
    args = _inputs(seed, np.float32)

    def f(a, b, c):
        return run_program(prog, [a, b, c])

    ref = [np.asarray(v).copy() for v in fc.jit(f)(*args)]
    keep = [np.asarray(a).copy() for a in args[1:]]
    donated = fc.array(np.asarray(args[0]).copy())
    got = fc.jit(f, donate_argnums=0)(donated, *args[1:])
    for r, g in zip(ref, got):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-6, atol=1e-6)
    for k, a in zip(keep, args[1:]):
        np.testing.assert_array_equal(np.asarray(a), k)


@given(programs, st.integers(0, 2**31 - 1))
def test_each_pass_alone_preserves_meaning_on_random_programs(prog, seed):
    from funconv import passes

    args = _inputs(seed, np.float64)

    def loss(a, b, c):
        o1, o2 = run_program(prog, [a, b, c])
        return (o1 * o1).sum() + o2.sum()

    g = fc.make_graph(fc.grad(loss, argnums=(0, 1, 2)))(*args)
    ref = evaluate(g, args)
    for p in (passes.fold_constants, passes.simplify, passes.cse, passes.dce, passes.optimize):
        g2 = p(g)
        passes.check_types(g2)
        assert passes.count_applies(g2) <= passes.count_applies(g)
        for r, v in zip(ref, evaluate(g2, args)):
            np.testing.assert_allclose(v, r, rtol=1e-10, atol=1e-12)


# --- the same programs on the OpenCL backend --------------------------------------------------------
# Every program is a new OpenCL program (~1-2 s of PoCL compilation, cold): fewer examples.


def _opencl_device():
    try:
        from funconv.backends.opencl.device import default_device

        return default_device()
    except Exception:  # noqa: BLE001 - no pyopencl, no platform: skip
        return None


_OPENCL_EXAMPLES = int(os.environ.get("FUNCONV_OPENCL_EXAMPLES", "8"))  # more: a longer hunt
needs_opencl = pytest.mark.skipif(_opencl_device() is None, reason="no OpenCL device")


@needs_opencl
@settings(max_examples=_OPENCL_EXAMPLES)
@given(programs, st.integers(0, 2**31 - 1), dtypes)
def test_random_programs_on_opencl_match_the_interpreter(prog, seed, dtype):
    args = _inputs(seed, dtype)
    _compare(lambda a, b, c: run_program(prog, [a, b, c]), args, dtype, "opencl")


@needs_opencl
@settings(max_examples=_OPENCL_EXAMPLES)
@given(programs, st.integers(0, 2**31 - 1), dtypes)
# found by hypothesis: the outer product's gradient sums a broadcast of a fused node, which
# the reduction must read by index arithmetic ("the OpenCL backend has no broadcast_to")
@example([("abs", 0, 0, 0), ("abs", 1, 0, 0), ("outer", 4, 0, 0), ("abs", 0, 0, 0)], 0, np.float32)
def test_random_program_gradients_on_opencl_match_the_interpreter(prog, seed, dtype):
    _compare(_program_grad(prog), _inputs(seed, dtype), dtype, "opencl")
