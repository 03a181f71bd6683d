import numpy as np

import funconv as fc
from funconv.ir import Apply, structurally_equal
from funconv.backends import interpreter


def f(x):
    return fc.tanh(x @ x.T).sum()


def test_graph_text_has_types_and_lines():
    g = fc.make_graph(f)(fc.ones((3, 4)))
    text = str(g)
    assert text.splitlines()[0] == "graph(x0: f32[3,4]) -> (f32[]) {"
    assert "dot_general(x0, a)" in text and "f32[3,3] = tanh(b)" in text
    assert "test_ir.py:" in text  # the user's line is recorded
    assert text.strip().endswith("return d\n}".strip())


def test_to_dot():
    dot = fc.make_graph(f)(fc.ones((3, 4))).to_dot()
    assert dot.startswith("digraph funconv {") and dot.rstrip().endswith("}")
    assert "tanh" in dot and "->" in dot


def test_structural_equality_and_interning():
    def h(x):
        return fc.exp(x) + fc.exp(x)

    g = fc.make_graph(h)(fc.ones((2,)))
    adds = [n for n in g.applies() if n.prim.name == "add"]
    assert len(adds) == 1 and adds[0].args[0] is adds[0].args[1]  # exp(x) interned once
    g1 = fc.make_graph(f)(fc.ones((3, 4)))
    g2 = fc.make_graph(f)(fc.ones((3, 4)))
    memo = {(id(g1.inputs[0]), id(g2.inputs[0])): True}
    assert structurally_equal(g1.outputs[0], g2.outputs[0], memo)
    g3 = fc.make_graph(lambda x: fc.sin(x @ x.T).sum())(fc.ones((3, 4)))
    memo = {(id(g1.inputs[0]), id(g3.inputs[0])): True}
    assert not structurally_equal(g1.outputs[0], g3.outputs[0], memo)


def test_interpreter_matches_eager():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    g = fc.make_graph(f)(fc.asarray(x))
    (out,) = interpreter.evaluate(g, [x])
    np.testing.assert_allclose(out, np.asarray(f(fc.asarray(x))), rtol=1e-6)
    assert all(isinstance(n, Apply) for n in g.applies())
