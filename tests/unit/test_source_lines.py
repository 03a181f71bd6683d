"""Every node of a compiled graph names the user's line that made it, also when the graph
comes from grad (backward nodes: their forward node's line) inlined into jit."""

import inspect

import numpy as np

import funconv as fc


def _loss(x, w):
    y = fc.conv(x, w, padding=1)  # CONV
    return fc.nn.relu(y).sum()  # RELU


def _line(tag: str) -> str:
    src, start = inspect.getsourcelines(_loss)
    n = next(i for i, s in enumerate(src) if tag in s)
    return f"test_source_lines.py:{start + n}"


def test_jit_of_value_and_grad_keeps_the_lines_of_the_loss():
    x = np.ones((2, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    graph = fc.jit(fc.value_and_grad(_loss, argnums=1)).lower(x, w).graph
    sources = {n.source for n in graph.applies()}
    # the user's lines; a convolution's derivative says which one it is
    assert {s.removesuffix(" (weight gradient)") for s in sources} <= {_line("CONV"),
                                                                       _line("RELU")}, sources
    convs = [n for n in graph.applies() if n.prim.name == "conv_general"]
    assert sorted(n.source for n in convs) == [_line("CONV"), _line("CONV") + " (weight gradient)"]
