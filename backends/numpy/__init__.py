"""The NumPy backend: a graph becomes one generated Python function (codegen.py).

`compile(graph, donate=())` returns an `Executable`: call it with one NumPy
array per graph input; it returns a tuple of NumPy arrays, one per output.
`.source` is the generated code (also shown in tracebacks, via linecache).
"""

from __future__ import annotations

from funconv.ir import Graph

from funconv.backends.numpy.codegen import build, generate  # noqa: F401


class Executable:
    """A compiled graph: `fn(*arrays) -> tuple of arrays`, with its `.source`."""

    __slots__ = ("fn", "source", "filename", "graph")

    def __init__(self, graph: Graph, donate=(), name: str = "jitted"):
        self.graph = graph
        self.fn, self.source, self.filename = build(graph, donate, name)

    def __call__(self, *arrays):
        return self.fn(*arrays)

    def __repr__(self) -> str:
        return f"<numpy executable {self.filename}>"


def compile(graph: Graph, donate=(), name: str = "jitted") -> Executable:  # noqa: A001
    """Generate and compile the NumPy function for `graph`.

    Args:
        graph: the (optimised) graph.
        donate: indices of graph inputs whose buffers the code may overwrite.
        name: used in the generated function's name and file name.
    """
    return Executable(graph, donate, name)
