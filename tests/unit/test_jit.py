"""fc.jit: caching, static arguments, recompile explanations, composition with grad,
concretization errors, donation and buffer safety, lowering and inspectable code."""

import linecache
import logging
import traceback

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, ConcretizationError, DeletedArrayError

rng = np.random.default_rng(0)


def arr(*shape, dtype=np.float32):
    return fc.array(rng.standard_normal(shape).astype(dtype))


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- basics and the cache --------------------------------------------------------------------------

def test_decorator_forms_and_results():
    def f(x, y):
        return fc.tanh(x @ y).sum(axis=0) * 2.0

    x, y = arr(3, 4), arr(4, 5)
    expected = f(x, y)
    close(fc.jit(f)(x, y), expected)

    @fc.jit
    def g(x, y):
        return f(x, y)

    @fc.jit()
    def h(x, y):
        return f(x, y)

    close(g(x, y), expected)
    close(h(x, y), expected)
    assert g.__name__ == "g"


def test_cache_hits_and_misses():
    f = fc.jit(lambda x: x * 2.0 + 1.0)
    x = arr(3)
    f(x)
    f(arr(3))
    f(x)
    assert f.compiles == 1
    f(arr(4))  # new shape
    assert f.compiles == 2
    f(arr(3).astype(fc.float64))  # new dtype
    assert f.compiles == 3
    f(arr(3))
    f(arr(4))
    assert f.compiles == 3


def test_pytrees_in_and_out_and_keyword_arguments():
    @fc.jit
    def f(params, x, *, scale):
        h = x @ params["w"] + params["b"]
        return {"out": h * scale, "aux": (h.sum(), [x])}

    p = {"w": arr(3, 2), "b": arr(2)}
    x = arr(4, 3)
    r = f(p, x, scale=fc.array(2.0))
    close(r["out"], (np.asarray(x) @ np.asarray(p["w"]) + np.asarray(p["b"])) * 2)
    assert isinstance(r["aux"], tuple) and isinstance(r["aux"][1], list)
    close(r["aux"][1][0], x)
    f(p, x, scale=fc.array(3.0))
    assert f.compiles == 1
    f({"w": arr(3, 2), "b": arr(2), "c": arr(1)}, x, scale=fc.array(3.0))  # new structure
    assert f.compiles == 2


def test_python_scalars_and_numpy_arrays_as_arguments():
    f = fc.jit(lambda x, a: x * a)
    xn = rng.standard_normal(3).astype(np.float32)
    r = f(xn, 2.0)
    close(r, xn * 2)
    assert xn.flags.writeable  # the user's NumPy array is untouched
    r2 = f(xn, 3.0)  # same signature: () f32
    close(r2, xn * 3)
    assert f.compiles == 1


def test_static_argnums_and_argnames():
    @fc.jit(static_argnums=1, static_argnames="mode")
    def f(x, n, mode="sum"):
        for _ in range(n):
            x = x * 2.0
        return x.sum() if mode == "sum" else x.max()

    x = arr(5)
    close(f(x, 3), np.asarray(x).sum() * 8)
    close(f(x, 3, mode="max"), np.asarray(x).max() * 8)
    close(f(x, n=2), np.asarray(x).sum() * 4)  # static by position, passed by name
    f(x, 3)
    assert f.compiles == 3


def test_unhashable_static_argument_is_a_clear_error():
    f = fc.jit(lambda x, shape: x.reshape(shape), static_argnums=1)
    with pytest.raises(ArgumentError, match="unhashable.*tuple"):
        f(arr(6), [2, 3])
    close(f(arr(6), (2, 3)).shape, (2, 3))


def test_non_array_dynamic_argument_suggests_static():
    f = fc.jit(lambda x, name: x)
    with pytest.raises(ArgumentError, match="static_argnums"):
        f(arr(2), "relu")


# --- recompilation explained ------------------------------------------------------------------------

def test_explain_recompiles(caplog):
    fc.config.update("explain_recompiles", True)
    try:
        @fc.jit(static_argnums=2)
        def f(x, params, k):
            return x * k + params["w"].sum()

        p = {"w": arr(2)}
        with caplog.at_level(logging.WARNING, logger="funconv.jit"):
            f(arr(3), p, 1)
            assert not caplog.records  # the first compilation is not a recompile
            f(arr(4), p, 1)
            f(arr(4).astype(fc.float64), p, 1)
            f(arr(4).astype(fc.float64), p, 2)
            f(arr(4).astype(fc.float64), {"w": arr(2), "v": arr(1)}, 2)
            f(arr(4).astype(fc.float64), {"w": arr(5), "v": arr(1)}, 2)
        msgs = [r.getMessage() for r in caplog.records]
        assert len(msgs) == 5
        assert "x: shape changed (3,) -> (4,)" in msgs[0]
        assert "x: dtype changed float32 -> float64" in msgs[1]
        assert "static argument 2 changed from 1 to 2" in msgs[2]
        assert "structure changed" in msgs[3]
        assert "params['w']: shape changed (2,) -> (5,)" in msgs[4]
    finally:
        fc.config.update("explain_recompiles", False)


# --- concretization -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, op", [
    (lambda x: x if x.sum() > 0 else -x, "bool"),
    (lambda x: x * float(x.sum()), "float"),
    (lambda x: x * x.sum().item(), "item"),
])
def test_python_control_flow_on_traced_values_raises(body, op):
    f = fc.jit(body)
    with pytest.raises(ConcretizationError) as e:
        f(arr(3))
    msg = str(e.value)
    assert op in msg and "static_argnums" in msg and "fc.where" in msg


def test_control_flow_works_under_grad_but_not_under_jit():
    def f(x):
        return (x * x).sum() if x.sum() > 0 else -x.sum()

    x = fc.array(np.ones(3, np.float32))
    close(fc.grad(f)(x), 2 * np.ones(3))  # grad carries values: fine
    with pytest.raises(ConcretizationError):
        fc.jit(fc.grad(f))(x)


# --- composition ----------------------------------------------------------------------------------------

def loss(W, x):
    return fc.tanh(W @ x).sum()


W0, x0 = arr(10, 10), arr(10)


def test_jit_of_grad():
    close(fc.jit(fc.grad(loss))(W0, x0), fc.grad(loss)(W0, x0))


def test_grad_of_jit():
    jl = fc.jit(loss)
    close(fc.grad(jl)(W0, x0), fc.grad(loss)(W0, x0))
    close(fc.grad(jl, argnums=1)(W0, x0), fc.grad(loss, argnums=1)(W0, x0))
    assert jl.compiles == 0  # under grad the graph is inlined, nothing compiled


def test_jit_inside_jit_is_inlined():
    inner = fc.jit(lambda a: fc.exp(a) * 2.0)

    @fc.jit
    def outer(a):
        return inner(a).sum() + inner(a * 1.0).sum()

    a = arr(4)
    close(outer(a), 4 * np.exp(np.asarray(a)).sum())
    assert inner.compiles == 0
    src = outer.lower(a).source
    assert "exp" in src and "inner" not in src
    # CSE across the inlined calls: inner(a) and inner(a * 1.0) are the same after simplify
    assert src.count("_exp(") == 1


def test_value_and_grad_over_function_calling_jitted_helpers():
    layer = fc.jit(lambda W, h: fc.tanh(W @ h))
    scale = fc.array(3.0)

    def f(W, x):
        # the helper also closes over a value of the enclosing trace
        return (layer(W, layer(W, x)) * scale).sum()

    v, g = fc.value_and_grad(f)(W0, x0)

    def ref(W, x):
        return (fc.tanh(W @ fc.tanh(W @ x)) * scale).sum()

    v2, g2 = fc.value_and_grad(ref)(W0, x0)
    close(v, v2)
    close(g, g2)
    v3, g3 = fc.jit(fc.value_and_grad(f))(W0, x0)
    close(v3, v2)
    close(g3, g2)


def test_helper_closing_over_outer_tracer():
    def f(x):
        helper = fc.jit(lambda y: y * x)  # captures the outer trace's x
        return helper(x).sum()

    close(fc.grad(f)(arr(3) * 0 + 2.0), [4.0, 4.0, 4.0])
    close(fc.jit(fc.grad(f))(arr(3) * 0 + 2.0), [4.0, 4.0, 4.0])


def test_grad_of_grad_through_jit():
    f = fc.jit(lambda x: (x ** 3).sum())
    x = fc.array(np.array([1.0, 2.0], np.float32))
    close(fc.grad(lambda x: fc.grad(f)(x).sum())(x), 6 * np.asarray(x))


def test_make_graph_of_jitted_function_inlines():
    f = fc.jit(lambda x: fc.sin(x) + 1.0)
    g = fc.make_graph(lambda x: f(x) * 2.0)(arr(3))
    names = [n.prim.name for n in g.applies()]
    assert "sin" in names and "mul" in names


# --- buffers: donation and safety ---------------------------------------------------------------------

def test_non_donated_inputs_never_modified_and_outputs_read_only():
    @fc.jit
    def f(x):
        y = fc.exp(x) + 1.0  # temporaries are reused in place...
        return y * y, x

    x = arr(50)
    before = np.asarray(x).copy()
    y, same = f(x)
    np.testing.assert_array_equal(np.asarray(x), before)  # ... never the input
    assert not np.asarray(y).flags.writeable
    assert same is not None and np.shares_memory(np.asarray(same), np.asarray(x))
    y2, _ = f(x)
    close(y, y2)  # a later call did not write into the earlier result
    assert not np.shares_memory(np.asarray(y), np.asarray(y2))


def test_outputs_of_constants_are_not_reused():
    f = fc.jit(lambda x: (x + 1.0, fc.zeros(3) + 0.0, fc.ones(3) * 2.0))
    a = f(arr(3))
    b = f(arr(3))
    for o in a[1:] + b[1:]:
        assert not np.asarray(o).flags.writeable
    close(b[2], [2.0, 2.0, 2.0])


def test_donation_reuses_the_buffer_and_keeps_results_right():
    @fc.jit(donate_argnums=0)
    def sgd(p, g):
        return p - 0.5 * g

    p = fc.array(np.arange(1000, dtype=np.float32))
    g = fc.array(np.ones(1000, np.float32))
    # the buffer's address: holding the buffer itself (np.asarray(p)) would make it shared,
    # and a shared buffer is never written (see the test below)
    address = np.asarray(p).__array_interface__["data"][0]
    new = sgd(p, g)
    close(new, np.arange(1000) - 0.5)
    assert np.asarray(new).__array_interface__["data"][0] == address  # written in place
    assert not np.asarray(new).flags.writeable
    np.testing.assert_array_equal(np.asarray(g), 1.0)  # the other argument is untouched
    assert "_take_donated" in sgd.lower(new, g).source


def test_donated_argument_aliasing_another_is_copied_not_corrupted():
    @fc.jit(donate_argnums=0)
    def f(a, b):
        return (a + 1.0) * b

    x = fc.array(np.ones(100, np.float32) * 2)
    r = f(x, x)  # the same buffer twice: writing into `a` would corrupt `b`
    close(r, np.full(100, 6.0))


def test_elementwise_ufuncs_are_inlined_whether_their_impl_is_quiet_or_plain():
    # add/mul/tanh impls are plain ufuncs, exp/div are wrapped in errstate by the ops: both
    # become direct ufunc calls (with out=), never calls of the impl wrapper
    src = fc.jit(lambda x, y: fc.exp(x * y + x) / fc.tanh(y) - x).lower(arr(8), arr(8)).source
    for uf in ("_multiply(", "_add(", "_exp(", "_tanh(", "_divide(", "_subtract("):
        assert uf in src, (uf, src)
    assert "_impl(" not in src


def test_lower_gives_optimised_graph_and_readable_source():
    f = fc.jit(fc.grad(loss))
    low = f.lower(W0, x0)
    assert "dot_general" in str(low.graph)
    assert "def " in low.source and "return" in low.source
    # one SSA line per node, each with its type
    assert "# tanh f32[10]" in low.source
    assert "neg" not in str(low.graph)  # simplified


def test_generated_code_is_in_tracebacks():
    @fc.jit
    def f(x):
        return fc.exp(x)

    x = arr(3)
    exe = f.lower(x).executable
    lines = linecache.getlines(exe.filename)
    assert any("_exp(" in line for line in lines)
    # a failing generated line shows up with its text in the traceback
    try:
        exe.call(None)
    except TypeError:
        tb = traceback.format_exc()
        assert exe.filename in tb and "_exp(" in tb
    else:  # pragma: no cover
        pytest.fail("expected a TypeError")


def test_jit_of_function_returning_input_and_constant():
    f = fc.jit(lambda x: (x, 3.0, fc.array([1, 2])))
    x = arr(2)
    a, b, c = f(x)
    close(a, x)
    close(b, 3.0)
    assert c.dtype == np.int32


def test_unknown_backend():
    with pytest.raises(ArgumentError, match="unknown backend"):
        fc.jit(lambda x: x, backend="nope")(arr(2))


def test_pytree_fast_path_distinguishes_structures():
    f = fc.jit(lambda p: fc.tree.map(lambda a: a * 2.0, p))
    a, b = arr(2), arr(2)
    r1 = f({"a": a, "b": b})
    r1 = f({"a": a, "b": b})  # served by the fast path
    r2 = f({"a": a, "c": b})
    r3 = f([a, b])
    r4 = f((a, b))
    r5 = f((a, None, [b]))
    assert sorted(r1) == ["a", "b"] and sorted(r2) == ["a", "c"]
    assert isinstance(r3, list) and isinstance(r4, tuple) and r5[1] is None
    close(r5[2][0], np.asarray(b) * 2)
    assert f.compiles == 5
    f({"a": a, "c": b})
    f((a, None, [b]))
    assert f.compiles == 5


def test_sgd_step_of_a_small_cnn_matches_eager():
    def loss(p, x, y):
        h = fc.nn.relu(fc.conv(x, p["c"]) + p["b"][:, None, None])
        h = fc.max_pool(h, 2).reshape(x.shape[0], -1)
        return fc.nn.cross_entropy(h @ p["w"], y)

    def step(p, x, y):
        return fc.tree.map(lambda a, g: a - 0.1 * g, p, fc.grad(loss)(p, x, y))

    p = {"c": arr(3, 1, 3, 3), "b": arr(3), "w": arr(3 * 3 * 3, 4)}
    x = arr(2, 1, 8, 8)
    y = fc.array(np.array([1, 3], np.int32))
    got = fc.jit(step)(p, x, y)
    want = step(p, x, y)
    for k in p:
        close(got[k], want[k], tol=1e-4)


def test_donated_array_also_captured_as_a_constant_is_not_corrupted():
    w = fc.array(np.ones(100, np.float32))
    f = fc.jit(lambda p: (p * 2.0) + w, donate_argnums=0)
    close(f(w), np.full(100, 3.0))
    close(f(fc.array(np.ones(100, np.float32))), np.full(100, 3.0))  # the baked `w` is intact


def test_generated_code_reuses_temporaries_and_frees_them():
    f = fc.jit(lambda x, b: fc.tanh(x * 2.0 + b) - 1.0)
    src = f.lower(arr(3, 4), arr(4)).source
    assert "out=" in src  # a temporary's buffer is reused in place
    assert "del " in src  # and released after its last use
    assert "_broadcast_to" not in src  # the bias broadcast is left to NumPy
    assert "out=x" not in src  # never an input's buffer (none donated)


# --- NumPy arrays and Python scalars as dynamic arguments ----------------------------------------

def test_numpy_arguments_take_the_fast_path_without_a_copy():
    import tracemalloc

    f = fc.jit(lambda w, x: (x * w).sum())
    w = arr(1)
    x = np.ones(2_000_000, np.float32)  # 8 MB
    f(w, x)  # compile
    tracemalloc.start()
    try:
        r = f(w, x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    close(r, 2_000_000 * float(np.asarray(w)[0]), tol=1e-3)
    # one temporary for x * w (8 MB), no copy of x on top of it
    assert peak < 12_000_000, peak
    assert f._fast_leaves  # served by the positional fast path
    assert f.compiles == 1


def test_numpy_argument_dtypes_are_canonicalised_like_asarray():
    f = fc.jit(lambda x: x + x)
    for dt, expected in [(np.float32, np.float32), (np.float64, np.float64),
                         (np.int64, np.int64), (np.int32, np.int32), (np.uint8, np.uint8),
                         (np.bool_, np.bool_)]:
        x = np.arange(4).astype(dt)
        r = f(x)
        assert r.dtype == expected == fc.asarray(x).dtype, (dt, r.dtype)
        np.testing.assert_array_equal(np.asarray(r), np.asarray(x).astype(expected) * 2
                                      if dt is not np.bool_ else x | x)
        r = f(x)  # the fast path gives the same
        assert r.dtype == expected
    assert f.compiles == 6  # f32, f64, i64, i32, u8, bool
    with pytest.raises(fc.errors.DTypeError, match="float16 is not supported"):
        f(np.zeros(2, np.float16))  # rejected, not computed in float32


def test_numpy_and_array_arguments_share_one_compilation():
    f = fc.jit(lambda x, y: x @ y)
    x, y = rng.standard_normal((3, 4)).astype(np.float32), arr(4)
    a = f(fc.array(x), y)
    b = f(x, y)
    c = f(x, np.asarray(y))
    d = f({"x": x}["x"], y)
    for r in (b, c, d):
        close(r, a)
    assert f.compiles == 1


def test_outputs_aliasing_a_numpy_argument_are_copied():
    f = fc.jit(lambda x, y: (x, x.reshape(2, 3), x.T, y * 2.0))
    x = rng.standard_normal((3, 2)).astype(np.float32)
    keep = x.copy()
    for _ in range(2):  # general path, then fast path
        outs = f(x, arr(2))
        assert x.flags.writeable  # the caller's array was not made read-only
        for o in outs:
            assert not np.asarray(o).flags.writeable
            assert not np.shares_memory(np.asarray(o), x)
    x[...] = 0.0  # the caller writes into its array: the results do not change
    close(outs[0], keep)
    close(outs[1], keep.reshape(2, 3))
    close(outs[2], keep.T)


def test_numpy_leaves_in_pytrees_and_keywords():
    @fc.jit
    def f(params, batch, *, lr):
        return {k: v - lr * (batch["x"] @ v).sum() for k, v in params.items()}

    p = {"a": arr(4), "b": arr(4)}
    batch = {"x": rng.standard_normal((2, 4)).astype(np.float32)}
    r1 = f(p, batch, lr=0.1)
    r2 = f(p, batch, lr=np.float32(0.1))
    for _ in range(2):
        r3 = f(p, batch, lr=np.float32(0.1))
        r4 = f(p, {"x": batch["x"].copy()}, lr=0.1)
    for k, v in p.items():
        expected = np.asarray(v) - 0.1 * (batch["x"] @ np.asarray(v)).sum()
        for r in (r1, r2, r3, r4):
            close(r[k], expected)
    assert f.compiles == 2  # a Python scalar (weak) and a NumPy scalar (strong) differ
    assert batch["x"].flags.writeable


def test_donated_numpy_array_is_copied_not_written():
    # a caller's NumPy array is never written, donated or not: the call donates a private copy
    f = fc.jit(lambda p, g: p - 0.5 * g, donate_argnums=0)
    p = np.arange(100, dtype=np.float32)
    g = np.ones(100, np.float32)
    for _ in range(3):
        r = f(p, g)
        np.testing.assert_array_equal(p, np.arange(100, dtype=np.float32))
        assert p.flags.writeable and not np.shares_memory(np.asarray(r), p)
        close(r, np.arange(100) - 0.5)


def test_python_scalar_arguments_are_weakly_typed_like_eager():
    x32 = arr(3)
    f = fc.jit(lambda x, a: x * a)
    r = f(x32, 2.0)
    assert r.dtype == np.float32
    close(r, np.asarray(x32) * 2)
    # against every dtype and every kind of scalar, jit gives eager's result dtype
    ops = [lambda x, a: x * a, lambda x, a: a - x, lambda x, a: fc.maximum(x, a),
           lambda x, a: x / a, lambda x, a: fc.where(x == x, x, a)]  # noqa: PLR0124
    for dt in (np.bool_, np.int32, np.int64, np.float32, np.float64, np.complex64,
               np.complex128):
        x = fc.asarray(np.ones(3, dt))
        for a in (True, 3, 2.5, 1.5j):
            for op in ops:
                jitted = fc.jit(op)
                try:
                    eager = op(x, a)
                except fc.errors.FuncConvError as e:  # bool - bool: both refuse alike
                    with pytest.raises(type(e)):
                        jitted(x, a)
                    continue
                assert jitted(x, a).dtype == eager.dtype, (dt, a)
                assert jitted(x, a).dtype == eager.dtype, (dt, a)  # the fast path too
                close(jitted(x, a), eager)


def test_weak_float_scalar_keeps_float64_precision():
    x64 = fc.asarray(np.linspace(1, 2, 5))
    f = fc.jit(lambda x, a: x * a + a)
    for a in (0.1, 0.3, 1e300):  # general path, then the fast path with new values
        r = f(x64, a)
        assert r.dtype == np.float64
        np.testing.assert_array_equal(np.asarray(r), np.asarray(x64 * a + a))  # exact
    assert f.compiles == 1
    assert "f64[]" in str(f.lower(x64, 0.1).graph)  # passed as float64, not rounded to f32
    # a scalar also used at float32 stays float32 (its f64 use rounds it, documented)
    g = fc.jit(lambda x, y, a: (x * a, y * a))
    x32 = arr(3)
    r32, r64 = g(x32, x64, 0.5)
    assert r32.dtype == np.float32 and r64.dtype == np.float64
    close(r64, np.asarray(x64) * 0.5)
    # complex scalars widen to complex128 the same way
    h = fc.jit(lambda x, a: x * a)
    c = fc.asarray(np.ones(2, np.complex128))
    np.testing.assert_array_equal(np.asarray(h(c, 0.1 + 0.2j)), np.asarray(c * (0.1 + 0.2j)))


def test_weak_scalars_under_grad_and_inside_traces():
    f = fc.jit(lambda x, a: (x * a).sum())
    x64 = fc.asarray(np.linspace(0, 1, 4))
    g = fc.grad(lambda x: f(x, 0.1))(x64)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(g), np.full(4, 0.1))
    close(fc.jit(fc.grad(f))(arr(4), 3.0), np.full(4, 3.0))


def test_large_python_ints_do_not_wrap_around():
    f = fc.jit(lambda x, a: x * a)
    x = fc.ones(2)
    close(f(x, 2 ** 40), np.full(2, 2.0 ** 40), tol=1e-6)
    assert f(x, 2 ** 40).dtype == np.float32
    with pytest.raises(ArgumentError, match="int64"):
        f(x, 2 ** 70)


def test_scalar_versus_array_recompile_is_explained(caplog):
    f = fc.jit(lambda x, a: x * a)
    x = arr(3)
    fc.config.update("explain_recompiles", True)
    try:
        with caplog.at_level(logging.WARNING, logger="funconv.jit"):
            f(x, 2.0)
            f(x, fc.asarray(2.0))
    finally:
        fc.config.update("explain_recompiles", False)
    assert "from a Python scalar to an array" in caplog.text


# --- donated Arrays are deleted -------------------------------------------------------------------

def test_donated_array_is_deleted_and_later_use_raises_clearly():
    f = fc.jit(lambda p, g: p - 0.5 * g, donate_argnums=0)
    g = arr(10)
    for _ in range(3):  # the general path, then the fast path
        p = arr(10)
        new = f(p, g)
        assert p.is_deleted() and not g.is_deleted() and not new.is_deleted()
        assert "deleted" in repr(p) and "deleted" in str(p)
        uses = (lambda p: p.shape, lambda p: p.dtype, lambda p: p + 1.0, np.asarray,
                lambda p: float(p.sum()), lambda p: f(p, g), fc.grad(lambda q: q.sum()))
        for use in uses:
            with pytest.raises(DeletedArrayError, match="donated to a jitted call"):
                use(p)
        close(new + 0.0, new)  # the result is an ordinary array


def test_donated_pytree_leaves_are_deleted_numpy_ones_untouched():
    @fc.jit(donate_argnums=(0,))
    def step(params, x, lr):
        return {k: v - lr * x.sum() for k, v in params.items()}

    params = {"w": arr(3), "b": arr(3)}
    x = np.ones(4, np.float32)
    for _ in range(3):
        old = params
        params = step(params, x, 0.1)
        assert all(v.is_deleted() for v in old.values())
        assert not any(v.is_deleted() for v in params.values())
    np.testing.assert_array_equal(x, np.ones(4))
    # a donated NumPy array: copied, so nothing to delete and the caller's array stays usable
    h = fc.jit(lambda a: a * 2.0, donate_argnums=0)
    a = np.ones(3, np.float32)
    h(a)
    h(a)
    np.testing.assert_array_equal(a, np.ones(3))


def test_donation_is_ignored_inside_traces():
    f = fc.jit(lambda p: (p * p).sum(), donate_argnums=0)
    p = arr(4)
    close(fc.grad(f)(p), 2 * np.asarray(p))
    assert not p.is_deleted()  # inlined into the grad trace: nothing was donated
    close(fc.jit(fc.grad(f))(p), 2 * np.asarray(p))
    assert not p.is_deleted()


def test_output_structures_rebuilt_on_the_fast_path():
    import collections

    Pair = collections.namedtuple("Pair", "a b")

    @fc.jit
    def f(p, x):
        return ({"w": p["w"] * x, "n": [p["b"], (x,)], "none": None}, x.sum(), Pair(x, x + 1.0))

    p = {"w": arr(3), "b": arr(3)}
    x = np.ones(3, np.float32)
    for _ in range(3):  # general path, then fast paths
        d, s, pair = f(p, x)
        assert set(d) == {"w", "n", "none"} and d["none"] is None
        assert isinstance(d["n"], list) and isinstance(d["n"][1], tuple)
        close(d["w"], np.asarray(p["w"]))
        close(d["n"][0], p["b"])
        close(d["n"][1][0], x)
        close(s, 3.0)
        assert type(pair) is Pair
        close(pair.b, x + 1)
    assert f.compiles == 1


def test_unusual_numpy_arguments():
    f = fc.jit(lambda x: x * 2.0)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    close(f(x[:, ::2]), x[:, ::2] * 2)  # strided views
    close(f(x.T), x.T * 2)
    close(f(np.arange(3, dtype=">f4")), [0.0, 2.0, 4.0])  # big-endian data
    assert f(np.float64(3.0)).dtype == np.float64  # a NumPy scalar is strong
    with pytest.raises(ArgumentError, match="cannot make an array"):
        f(np.array(["a", "b"]))


def test_numpy_arguments_reach_the_code_read_only():
    seen = []

    @fc.jit
    def f(x):
        return fc.exp(x)

    x = np.ones(4, np.float32)
    f(x)
    exe = f.lower(x).executable
    fn = exe.call
    exe_globals = fn.__globals__
    orig = exe_globals["_exp"]

    def spy(a, *rest, **kw):
        seen.append(a.flags.writeable)
        return orig(a, *rest, **kw)

    exe_globals["_exp"] = spy
    try:
        f(x)  # the fast path
    finally:
        exe_globals["_exp"] = orig
    assert seen == [False]  # a read-only view ...
    assert x.flags.writeable  # ... of the caller's still writable array


def test_donated_buffer_held_elsewhere_is_copied_not_overwritten():
    # eager reshapes and slices view their operand's buffer; a caller may hold np.asarray(p)
    f = fc.jit(lambda p: p * 10.0, donate_argnums=0)
    g = fc.jit(lambda d: {k: v * 10.0 for k, v in d.items()}, donate_argnums=0)
    for _ in range(3):  # the general path, then the fast paths
        p = fc.array(np.arange(6, dtype=np.float32))
        view, piece, alias = p.reshape(2, 3), p[1:], np.asarray(p)
        d = {"w": fc.array(np.arange(6, dtype=np.float32))}
        wpiece = d["w"][2:]
        close(f(p), np.arange(6) * 10)
        close(g(d)["w"], np.arange(6) * 10)
        assert p.is_deleted() and d["w"].is_deleted()
        close(view, np.arange(6).reshape(2, 3))  # all unchanged
        close(piece, np.arange(1, 6))
        close(alias, np.arange(6))
        close(wpiece, np.arange(2, 6))
    # and a private buffer is still reused in place, on every path
    for _ in range(3):
        q = {"w": fc.array(np.arange(6, dtype=np.float32))}
        address = np.asarray(q["w"]).__array_interface__["data"][0]
        assert np.asarray(g(q)["w"]).__array_interface__["data"][0] == address


def test_profile_times_every_generated_line():
    f = fc.jit(lambda x, w: fc.tanh(x @ w).sum() * 2.0)
    x, w = np.ones((8, 4), np.float32), np.ones((4, 3), np.float32)
    prof = f.profile(x, w, repeat=3)
    assert prof.calls == 3 and prof.total_ms > 0
    lowered = f.lower(x, w)
    assigned = [ln for ln in lowered.source.splitlines() if " = " in ln and "#" in ln]
    assert len(prof.rows) == len(assigned)
    assert [r.ms for r in prof.rows] == sorted((r.ms for r in prof.rows), reverse=True)
    assert 0 < sum(r.share for r in prof.rows) <= 1 + 1e-9
    assert {r.node.split()[0] for r in prof.rows} == {"dot_general", "tanh", "reduce_sum", "mul"}
    assert all("test_jit.py:" in r.node for r in prof.rows)  # the user's line of each node
    assert "ms per call" in str(prof) and "test_jit.py:" in str(prof)
    assert float(f(x, w)) == pytest.approx(2 * 8 * 3 * np.tanh(4.0))  # the cached one still works


def test_profile_keeps_donated_inputs():
    f = fc.jit(lambda x: x * 2 + 1, donate_argnums=0)
    x = fc.asarray(np.arange(6.0).reshape(2, 3))
    f.profile(x, repeat=2)
    np.testing.assert_array_equal(np.asarray(x), np.arange(6.0).reshape(2, 3))  # not deleted


def test_a_failing_retrace_says_what_changed_in_the_arguments():
    w = np.zeros((8, 3, 3, 3), np.float32)
    f = fc.jit(lambda x: fc.conv(x, w))
    f(np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(fc.errors.ShapeError) as e:
        f(np.zeros((3, 16, 16), np.float32))
    notes = " ".join(getattr(e.value, "__notes__", []))
    assert "traced it again for new arguments" in notes and "(2, 3, 16, 16) -> (3, 16, 16)" in notes
