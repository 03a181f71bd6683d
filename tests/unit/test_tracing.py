"""Core tracing: the printed graph of a small function, interning, inlining of
a graph evaluated inside another trace, leaked tracers, capture of outer
tracers by inner traces, and values carried while tracing."""

import re

import numpy as np
import pytest

import funconv as fc
from funconv.backends.interpreter import evaluate
from funconv.errors import ConcretizationError, TracerLeakError
from funconv.ir import Const, Input
from funconv.tracing import EAGER, Trace, current, eval_graph


def small(x, w):
    return fc.tanh(x @ w + 1.0).sum(axis=0)


def _strip_sources(text: str) -> str:
    return "\n".join(re.sub(r"\s+# .*$", "", line) for line in text.splitlines())


def test_make_graph_snapshot():
    g = fc.make_graph(small)(fc.ones((2, 3)), fc.ones((3, 4)))
    assert _strip_sources(str(g)) == "\n".join([
        "graph(x0: f32[2,3], x1: f32[3,4]) -> (f32[4]) {",
        "  a: f32[2,4] = dot_general(x0, x1) dimension_numbers=(((1,), (0,)), ((), ()))",
        "  b: f32[2,4] = broadcast_to(1.0:f32[]) shape=(2, 4)",
        "  c: f32[2,4] = add(a, b)",
        "  d: f32[2,4] = tanh(c)",
        "  e: f32[4] = reduce_sum(d) axes=(0,)",
        "  return e",
        "}",
    ])
    # every node names the user's line that built it
    line = small.__code__.co_firstlineno + 1
    assert all(l.endswith(f"# test_tracing.py:{line}") for l in str(g).splitlines()[1:6])


def test_interning_makes_one_node_per_expression():
    def f(x):
        a = fc.exp(x) * 2.0
        b = fc.exp(x) * 2.0  # the same expression again
        return a + b

    g = fc.make_graph(f)(fc.ones(3))
    names = [n.prim.name for n in g.applies()]
    assert names.count("exp") == 1 and names.count("mul") == 1
    (add,) = [n for n in g.applies() if n.prim.name == "add"]
    assert add.args[0] is add.args[1]
    # different params are different nodes
    g2 = fc.make_graph(lambda x: x.sum(axis=0) + x.sum(axis=1))(fc.ones((2, 2)))
    assert [n.prim.name for n in g2.applies()].count("reduce_sum") == 2


def test_a_graph_evaluated_inside_a_trace_is_inlined():
    inner = fc.make_graph(lambda x: fc.sin(x) * x)(fc.ones(3))
    outer = fc.make_graph(lambda x: inner(fc.exp(x))[0].sum())(fc.ones(3))
    names = [n.prim.name for n in outer.applies()]
    assert names == ["exp", "sin", "mul", "reduce_sum"]  # no call node: inner's nodes, inlined
    assert not set(map(id, inner.nodes())) & set(map(id, outer.nodes()))  # new nodes, same ops
    x = np.array([0.1, 0.2, 0.3], np.float32)
    np.testing.assert_allclose(evaluate(outer, [x])[0], (np.sin(np.exp(x)) * np.exp(x)).sum(), rtol=1e-6)
    # eagerly, the same graph evaluates to values
    (val,) = inner(fc.asarray(x))
    np.testing.assert_allclose(np.asarray(val), np.sin(x) * x, rtol=1e-6)


def test_eval_graph_reuses_known_values_eagerly():
    t = Trace()
    with t.activate():
        x = t.new_input(fc.ones(2).aval, np.array([1.0, 2.0], np.float32), "x")
        y = fc.exp(x)
    g = t.graph([y])
    fake = np.array([7.0, 7.0], np.float32)
    # a value known for the exp node (as computed while tracing) is used, not recomputed
    (out,) = eval_graph(g, [fc.array([1.0, 2.0])], {g.outputs[0]: fake})
    np.testing.assert_array_equal(np.asarray(out), fake)


def test_values_are_carried_while_tracing_under_grad_but_not_make_graph():
    seen = []

    def f(x):
        y = x * 2.0
        seen.append(repr(y))
        return y.sum()

    fc.grad(f)(fc.array([1.0, 2.0]))
    assert seen[-1].startswith("Traced([2., 4.]")
    fc.make_graph(f)(fc.array([1.0, 2.0]))
    assert seen[-1] == "Traced<f32[2]>"
    with pytest.raises(ConcretizationError, match="static_argnums"):
        fc.make_graph(lambda x: x * 2 if x.sum() > 0 else x)(fc.ones(2))


def test_leaked_tracer_is_an_error():
    leaked = []
    fc.make_graph(lambda x: leaked.append(x * 2) or x)(fc.ones(2))
    with pytest.raises(TracerLeakError, match="outside the transformation"):
        leaked[0] + 1.0  # eager use of an abstract value
    with pytest.raises(TracerLeakError, match="finished transformation"):
        fc.make_graph(lambda y: y + leaked[0])(fc.ones(2))  # use in a later trace


def test_inner_trace_captures_outer_tracers_as_extra_inputs():
    outer = Trace()
    with outer.activate():
        x = outer.new_input(fc.ones(3).aval, np.ones(3, np.float32), "x")
        inner = Trace()
        assert inner.parent is outer and inner.depth == outer.depth + 1
        with inner.activate():
            y = inner.new_input(fc.ones(3).aval, np.full(3, 2.0, np.float32), "y")
            z = y * x + x  # x is captured once, though used twice
        g = inner.graph([z])
        assert len(inner.captured) == 1 and inner.captured[0][0] is x
        assert len(g.inputs) == 2 and isinstance(g.inputs[1], Input)
        assert np.asarray(inner.values[g.outputs[0]]).tolist() == [3.0, 3.0, 3.0]  # value carried
        # evaluating the inner graph in the outer trace inlines it over x
        (w,) = eval_graph(g, [x * 5.0, x])
        assert w._trace is outer
    assert current() is EAGER


def test_nested_grad_captures_the_outer_variable():
    # f(x) = d/dy [x * y^3] at y = x, = 3 x^3; its derivative is 9 x^2
    def f(x):
        return fc.grad(lambda y: x * y ** 3)(x)

    g = fc.make_graph(fc.grad(f))(fc.array(2.0))
    (val,) = evaluate(g, [np.float32(2.0)])
    assert float(val) == pytest.approx(36.0)
    assert float(fc.grad(f)(fc.array(2.0))) == pytest.approx(36.0)


def test_concrete_arrays_become_constants():
    c = fc.array([1.0, 2.0])
    g = fc.make_graph(lambda x: x * c + c)(fc.ones(2))
    consts = [n for n in g.nodes() if isinstance(n, Const)]
    assert len(consts) == 1  # one Const per captured array, reused
    np.testing.assert_array_equal(evaluate(g, [np.ones(2, np.float32)])[0], [2.0, 4.0])
