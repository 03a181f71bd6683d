"""The NumPy backend: a graph becomes one generated Python function (codegen.py).

`compile(graph, donate=())` returns an `Executable`: call it with one NumPy
array per graph input; it returns a tuple of NumPy arrays, one per output.
`.source` is the generated code (also shown in tracebacks, via linecache).
"""

from __future__ import annotations

from funconv import tracing
from funconv.backends.numpy.codegen import build, generate, output_aliases  # noqa: F401
from funconv.backends.numpy.kernels import KERNELS
from funconv.backends.numpy.threads import ThreadPlan, uses_blas
from funconv.ir import Graph

# eager evaluation uses the same fast kernels as the generated code
tracing.EAGER_KERNELS.update(KERNELS)


def _time_graph(graph: Graph, arrays) -> float:
    """Seconds of one call of `graph` compiled here (the best of a few): the timer of
    measured convolution plans (funconv/passes/plans.py). Timed as jitted code runs: through
    its BLAS thread plan (threads.py), after the calls that plan it (on a busy 2-core machine
    the library's default of all cores made conv3x3's im2col 412 ms instead of 15)."""
    from funconv.backends.numpy import threads
    from funconv.passes import plans

    exe = Executable(graph, name="conv_plan")
    if exe.plan is not None:
        for _ in range(threads.PLANNING_CALLS):  # the warm-up and the planning calls
            exe.call(*arrays)
    return plans.best_of(lambda: exe.call(*arrays))


def _register_timer() -> None:
    from funconv.passes import plans

    plans.set_timer(_time_graph)


class Executable:
    """A compiled graph (the `funconv.backends.Executable` protocol): `call(*arrays) -> tuple
    of arrays`, with its `.source`.

    `output_aliases[k]` is the set of input indices output k may share memory with (an
    output that is an input, or a view of one); every other output is a fresh buffer.
    `fn` is the generated function; `plan` its BLAS thread plan (threads.py), or None.
    """

    __slots__ = ("call", "filename", "fn", "graph", "output_aliases", "plan", "source")

    def __init__(self, graph: Graph, donate=(), name: str = "jitted"):
        self.graph = graph
        self.fn, self.source, self.filename = build(graph, donate, name)
        self.output_aliases = output_aliases(graph)
        # a graph that calls BLAS runs with its measured thread count (threads.py); any
        # other is the generated function itself, no wrapper frame on the call path
        lanes = "_submit" in self.fn.__globals__  # two lanes (lanes.py): BLAS on one thread
        self.plan = ThreadPlan(self.fn, name, self, lanes) if uses_blas(graph) else None
        self.call = self.fn if self.plan is None or self.plan.direct else self.plan

    def __call__(self, *arrays):
        return self.call(*arrays)

    def profile(self, arrays, repeat: int = 10, copy_inputs: bool = False):
        """Time each line of the generated code (see profile.py)."""
        from funconv.backends.numpy.profile import profile

        return profile(self, arrays, repeat, copy_inputs)

    def __repr__(self) -> str:
        return f"<numpy executable {self.filename}>"


def compile(graph: Graph, donate=(), name: str = "jitted") -> Executable:
    """Generate and compile the NumPy function for `graph`.

    Args:
        graph: the (optimised) graph.
        donate: indices of graph inputs whose buffers the code may overwrite.
        name: used in the generated function's name and file name.
    """
    from funconv.backends.numpy import malloc

    malloc.tune()
    return Executable(graph, donate, name)


_register_timer()
