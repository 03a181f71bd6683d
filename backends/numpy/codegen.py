"""Graph -> one generated Python function over NumPy arrays.

Every Apply node becomes one SSA line `tK = ...  # prim f32[3,4] user.py:12`,
the expression its lowering (lowering.py) gives, or a call of the primitive's
fast kernel (kernels/) or, lacking one, of its reference `impl`.

Broadcasts: a `broadcast_to` feeding an elementwise op is not materialised,
its operand is passed and NumPy broadcasting does the rest (as long as the
operands still broadcast to the full shape); a broadcast of a literal or constant
that must exist is made once, at compile time, as a read-only view.

Buffers: a temporary is deleted (`del`) after its last use. An elementwise op
writes into (`out=`) an operand's buffer when that operand is a temporary
this function allocated, of the same type, used for the last time here, not
returned, and never seen by an op that could return a view of it. Donated
inputs (`donate`) are such buffers too, after a run-time check that the
array owns its memory and no other argument aliases it. A user's array, a
constant, or an array already returned is never written.

The source is registered in `linecache`, so tracebacks and pdb show it.
Imports numpy and the funconv core (ir, ops for the primitive records).
"""

from __future__ import annotations

import itertools
import linecache
import re

import numpy as np

from funconv.backends.numpy import lanes
from funconv.backends.numpy.kernels import KERNELS
from funconv.backends.numpy.lowering import lowering
from funconv.ir import Apply, Const, Graph, Input, Literal, Node
from funconv.ops.shape import broadcast_to_p

_counter = itertools.count()


# --- code generation -----------------------------------------------------------------------------

class _Gen:
    def __init__(self, graph: Graph, donate: tuple[int, ...], name: str):
        self.graph = graph
        self.donate = frozenset(donate)
        self.name = name
        self.globals: dict = {"np": np}
        self.glob_names: dict[int, str] = {}  # id(object) -> global name
        self.expr: dict[int, str] = {}  # id(node) -> how to refer to its value
        self.quiet = False

    # -- globals ----------------------------------------------------------------------------------
    def bind(self, obj, hint: str) -> str:
        """A global name for `obj` (one per object)."""
        name = self.glob_names.get(id(obj))
        if name is None:
            base = re.sub(r"\W", "_", hint) or "g"
            name = base
            k = 1
            while name in self.globals:
                name = f"{base}_{k}"
                k += 1
            self.globals[name] = obj
            self.glob_names[id(obj)] = name
        return name

    def param(self, v) -> str:
        """Source text for a param value: a literal when it round-trips, else a global."""
        if isinstance(v, (bool, int, str, type(None))) or (
                isinstance(v, tuple) and all(isinstance(e, (int, tuple)) for e in _flat(v))):
            return repr(v)
        if isinstance(v, np.dtype):
            return self.bind(v, f"dt_{v.name}")
        return self.bind(v, "p")

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> tuple[str, dict]:
        g = self.graph
        nodes = g.nodes()
        applies = [n for n in nodes if isinstance(n, Apply)]
        outputs = {id(o) for o in g.outputs}

        # names of inputs, literals, constants
        params = []
        for i, inp in enumerate(g.inputs):
            nm = f"x{i}"
            self.expr[id(inp)] = nm
            params.append(nm)
        for n in nodes:
            if isinstance(n, Literal):
                v = np.asarray(n.value, n.dtype)
                v.flags.writeable = False
                self.expr[id(n)] = self.bind(v, f"L_{_lit_name(n.value)}")
            elif isinstance(n, Const):
                self.expr[id(n)] = self.bind(n.value, "C")

        # broadcasts of literals/constants: one read-only view made now
        static_bcast = set()
        for n in applies:
            if n.prim is broadcast_to_p and isinstance(n.args[0], (Literal, Const)):
                src = n.args[0]
                v = np.broadcast_to(np.asarray(src.value, src.dtype) if isinstance(src, Literal)
                                    else src.value, n.shape)
                self.expr[id(n)] = self.bind(v, "B")
                static_bcast.add(id(n))

        # operands as the code will read them: a broadcast feeding an elementwise op is replaced
        # by its operand (NumPy broadcasts), unless the result would then come out smaller
        lows = {id(n): lowering(n.prim) for n in applies}
        operands: dict[int, list[Node]] = {}
        for n in applies:
            args = list(n.args)
            low = lows[id(n)]
            if low is not None and low.elementwise and n.shape != ():
                is_bcast = [isinstance(a, Apply) and a.prim is broadcast_to_p for a in args]
                srcs = [a.args[0] if b else a for a, b in zip(args, is_bcast)]
                if np.broadcast_shapes(*[s.shape for s in srcs]) == n.shape:
                    args = srcs
                else:  # the result must come out full-shape: keep one broadcast, a free one if any
                    keep = next((i for i, a in enumerate(args) if id(a) in static_bcast), 0)
                    args = [a if i == keep else s for i, (a, s) in enumerate(zip(args, srcs))]
            operands[id(n)] = args

        # which nodes are emitted: those some emitted node, or the output, reads
        needed: set[int] = set(outputs)
        for n in reversed(applies):
            if id(n) in needed and id(n) not in static_bcast:
                for a in operands[id(n)]:
                    needed.add(id(a))
        emitted = [n for n in applies if id(n) in needed and id(n) not in static_bcast]

        # two lanes (lanes.py): the order to emit, the nodes run on the worker thread, and
        # where the main thread collects their results
        two = lanes.plan(emitted, operands)
        emitted = list(two.order) if two is not None else emitted
        on_worker = two.on_worker if two is not None else frozenset()
        joins = two.joins if two is not None else {}

        # last uses, and which values are only ever read by ops that never alias their inputs
        # (nor by a node on the worker thread, which may still be reading them)
        position = {id(n): k for k, n in enumerate(emitted)}
        last_use: dict[int, int] = {}
        aliased: set[int] = set()
        for n in emitted:
            for a in operands[id(n)]:
                last_use[id(a)] = position[id(n)]
                if not _fresh(n) or id(n) in on_worker:
                    aliased.add(id(a))
        # values whose buffer this function may overwrite (a fresh result, or a donated input)
        owned: set[int] = set()
        for i in self.donate:
            owned.add(id(g.inputs[i]))
        donated_used: list[int] = []

        body: list[str] = []
        names = {id(n): f"t{k}" for k, n in enumerate(emitted)}
        described = {id(n): f"{n.prim.name} {n.type.short()}" for n in emitted}

        def collect(j) -> str:  # the main thread takes a worker's result (and waits for it)
            return (f"{names[j]} = {names[j]}_f.result(); del {names[j]}_f  # {described[j]} "
                    "(waits for the second thread)")

        for k, n in enumerate(emitted):
            body += [collect(j) for j in joins.get(k, ())]
            nm = names[id(n)]
            args = [self.expr[id(a)] for a in operands[id(n)]]
            out = None
            low = lows[id(n)]
            if low is not None and low.takes_out and n.shape != ():
                for a in operands[id(n)]:
                    if (id(a) in owned and a.type == n.type and last_use.get(id(a)) == k
                            and id(a) not in aliased and id(a) not in outputs):
                        out = self.expr[id(a)]
                        owned.discard(id(a))
                        if isinstance(a, Input):
                            donated_used.append(g.inputs.index(a))
                        break
            code = self.call_function(n, args) if low is None else low.emit(self, n, args, out)
            if n.shape != () and _fresh(n):
                owned.add(id(n))
            self.expr[id(n)] = nm
            comment = f"# {n.prim.name} {n.type.short()}" + (f"  {n.source}" if n.source else "")
            if id(n) in on_worker:  # the operands bound now (a later `del` keeps them alive)
                names_in = sorted(set(args) & {self.expr[id(a)] for a in operands[id(n)]
                                               if isinstance(a, (Apply, Input))})
                bound = ", ".join(f"{a}={a}" for a in names_in)
                submit = self.bind(lanes.submit, "_submit")
                body.append(f"{nm}_f = {submit}(lambda {bound}: {code})  {comment} "
                            "(on the second thread)")
            else:
                body.append(f"{nm} = {code}  {comment}")
            dead = sorted((self.expr[id(a)] for a in set(operands[id(n)])
                           if last_use.get(id(a)) == k and id(a) not in outputs
                           and isinstance(a, Apply) and id(a) not in static_bcast),
                          key=lambda s: int(s[1:]))
            if dead:
                body.append(f"del {', '.join(dead)}")
        body += [collect(j) for j in joins.get(len(emitted), ())]
        rets = [self.expr[id(o)] for o in g.outputs]
        body.append(f"return ({', '.join(rets)}{',' if len(rets) == 1 else ''})")

        prologue = []
        if donated_used:
            take = self.bind(_take_donated, "_take_donated")
            consts = [self.expr[id(n)] for n in nodes if isinstance(n, Const)]
            for i in sorted(set(donated_used)):
                # the other arguments, and constants (a closure may hold the donated array)
                others = [p for j, p in enumerate(params) if j != i] + consts
                tup = f"({', '.join(others)}{',' if len(others) == 1 else ''})"
                prologue.append(f"x{i} = {take}(x{i}, {tup})  # donated: write into it if safe")
        indent = "    "
        lines = [f"def {self.name}({', '.join(params)}):"]
        lines += [indent + p for p in prologue]
        if self.quiet:
            errstate = self.bind(np.errstate, "_errstate")
            lines.append(f"{indent}with {errstate}(all='ignore'):  # exp/log/div: inf/nan, no warnings")
            indent += "    "
        lines += [indent + b for b in body]
        return "\n".join(lines) + "\n", self.globals

    # -- one node ----------------------------------------------------------------------------------
    def call_function(self, n: Apply, args) -> str:
        """`n` as a call of its primitive's fast kernel, or of its reference impl."""
        p = n.prim
        fn = KERNELS.get(p)
        name = self.bind(p.impl, f"{p.name}_impl") if fn is None else self.bind(fn, f"{p.name}_kernel")
        kw = "".join(f", {k}={self.param(v)}" for k, v in n.params.items())
        return f"{name}({', '.join(args)}{kw})"


def _fresh(n: Apply) -> bool:
    """Does this node's code return a new buffer that nothing else references?"""
    low = lowering(n.prim)
    return low is not None and low.fresh(n)


def output_aliases(graph: Graph) -> tuple[frozenset, ...]:
    """For each output, the indices of the graph inputs whose memory it may share.

    The generated code never writes into a non-donated input, but an output may *be* an input
    (`lambda x: x`) or a view of one (a reshape, a transpose, a slice done by an impl). jit uses
    this to copy exactly those outputs when the input was a caller's NumPy array passed without
    a copy. Conservative: an op not known to return a fresh buffer may alias any operand.
    """
    index = {id(inp): i for i, inp in enumerate(graph.inputs)}
    none: frozenset = frozenset()
    memo: dict[int, frozenset] = {}
    for n in graph.nodes():
        if isinstance(n, Input):
            memo[id(n)] = frozenset([index[id(n)]]) if id(n) in index else none
        elif isinstance(n, Apply) and not _fresh(n):
            memo[id(n)] = none.union(*[memo.get(id(a), none) for a in n.args])
        else:  # a fresh buffer, a literal or a constant
            memo[id(n)] = none
    return tuple(memo[id(o)] for o in graph.outputs)


def _flat(t):
    for e in t:
        if isinstance(e, tuple):
            yield from _flat(e)
        else:
            yield e


def _lit_name(v) -> str:
    s = repr(v).replace("-", "m").replace(".", "_").replace("+", "p")
    return s if len(s) < 12 else "v"


def _take_donated(x: np.ndarray, others) -> np.ndarray:
    """`x` made writable when it is safe to overwrite (it owns its memory, no other argument
    shares it), else a private copy (donation then only saves nothing, it never corrupts)."""
    if x.base is None and x.flags.c_contiguous and not any(
            np.may_share_memory(x, o) for o in others if isinstance(o, np.ndarray)):
        try:
            x.flags.writeable = True
            return x
        except ValueError:
            pass
    return x.copy()


def generate(graph: Graph, donate=(), name: str = "jitted") -> tuple[str, dict, str]:
    """`(source, globals, function name)` of the generated function for `graph`."""
    fname = re.sub(r"\W", "_", name) or "jitted"
    if not fname[0].isalpha():
        fname = "f_" + fname
    src, glb = _Gen(graph, tuple(donate), fname).run()
    return src, glb, fname


def build(graph: Graph, donate=(), name: str = "jitted"):
    """Compile the generated source; returns `(function, source, filename)`."""
    src, glb, fname = generate(graph, donate, name)
    filename = f"<funconv-jit-{fname}-{next(_counter)}>"
    # registered so tracebacks and pdb show the generated lines (never evicted by checkcache:
    # the entry has no mtime)
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    code = compile(src, filename, "exec")
    exec(code, glb)  # noqa: S102 - our own generated source
    return glb[fname], src, filename
