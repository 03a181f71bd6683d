"""Graph -> one generated Python function over NumPy arrays.

Every Apply node becomes one SSA line `tK = ...  # prim f32[3,4] user.py:12`.
A line either calls the primitive's `impl` (bound as a global: the single
source of truth shared with the interpreter), or an equivalent inlined NumPy
call where that is measurably cheaper:

- elementwise primitives whose impl *is* a NumPy ufunc are called as that
  ufunc directly, which allows `out=`; those whose impl is the ufunc wrapped in
  `np.errstate(all="ignore")` are inlined too, and the whole body then runs
  under one errstate instead of one per op (~1.3 us each on NumPy 2);
- `dot_general` becomes one `np.matmul` with the transposes and reshapes
  worked out at compile time (the generic impl derives them per call), or a
  broadcasting multiply when nothing is contracted (an outer product);
- sums/max/min become `np.add.reduce` & co; shape ops become methods.

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

from funconv.ir import Apply, Const, Graph, Input, Literal, Node

_counter = itertools.count()


# --- what each primitive lowers to ---------------------------------------------------------------

def _tables():
    """(ufunc table, quiet-ufunc set, non-aliasing prims), built on first use (layering)."""
    from funconv.ops import elementwise as ew
    from funconv.ops.linalg import dot_general_p
    from funconv.ops.reduce import reduce_max_p, reduce_min_p, reduce_sum_p

    # Each primitive whose impl is a NumPy ufunc, called as is ("plain") or wrapped in
    # `np.errstate(all="ignore")` by elementwise._q ("quiet": the wrapper keeps the ufunc's
    # name). Which of the two is decided per primitive from its impl, so an impl that turns
    # quiet (or back) keeps its inlined lowering; any other impl (a custom function) is
    # called as is.
    plain, quiet = {}, {}
    for name, uf in [("neg", np.negative), ("sin", np.sin), ("cos", np.cos), ("tanh", np.tanh),
                     ("abs", np.abs), ("sign", np.sign), ("floor", np.floor), ("ceil", np.ceil),
                     ("square", np.square), ("not", np.logical_not), ("add", np.add),
                     ("sub", np.subtract), ("mul", np.multiply), ("max", np.maximum),
                     ("min", np.minimum), ("and", np.logical_and), ("or", np.logical_or),
                     ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                     ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal),
                     ("conj", np.conj), ("exp", np.exp), ("log", np.log), ("log1p", np.log1p),
                     ("expm1", np.expm1), ("sqrt", np.sqrt), ("div", np.true_divide)]:
        p = getattr(ew, f"{name}_p", None)
        if p is None:
            continue
        if p.impl is uf:
            plain[p] = uf
        elif getattr(p.impl, "__name__", None) == uf.__name__ and p.impl.__module__ == ew.__name__:
            quiet[p] = uf
    reducers = {reduce_sum_p: "add", reduce_max_p: "maximum", reduce_min_p: "minimum"}
    return plain, quiet, reducers, ew.select_p, ew.convert_element_type_p, dot_general_p


_TABLES = None


def tables():
    global _TABLES
    if _TABLES is None:
        _TABLES = _tables()
    return _TABLES


def _shape_prims():
    from funconv.ops.shape import broadcast_to_p, reshape_p, transpose_p

    return broadcast_to_p, reshape_p, transpose_p


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
        plain, quiet, reducers, select_p, convert_p, dot_p = tables()
        broadcast_p, reshape_p, transpose_p = _shape_prims()
        ufuncs = {**plain, **quiet}
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
            if n.prim is broadcast_p and isinstance(n.args[0], (Literal, Const)):
                src = n.args[0]
                v = np.broadcast_to(np.asarray(src.value, src.dtype) if isinstance(src, Literal)
                                    else src.value, n.shape)
                self.expr[id(n)] = self.bind(v, "B")
                static_bcast.add(id(n))

        # operands as the code will read them: a broadcast feeding an elementwise op is replaced
        # by its operand (NumPy broadcasts), unless the result would then come out smaller
        elementwise_like = set(ufuncs) | {select_p}
        operands: dict[int, list[Node]] = {}
        for n in applies:
            args = list(n.args)
            if n.prim in elementwise_like and n.shape != ():
                is_bcast = [isinstance(a, Apply) and a.prim is broadcast_p for a in args]
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

        # last uses, and which values are only ever read by ops that never alias their inputs
        position = {id(n): k for k, n in enumerate(emitted)}
        last_use: dict[int, int] = {}
        aliased: set[int] = set()
        fresh_ops = set(ufuncs) | {select_p, dot_p} | set(reducers)
        for n in emitted:
            for a in operands[id(n)]:
                last_use[id(a)] = position[id(n)]
                if n.prim not in fresh_ops and not (n.prim is convert_p and a.dtype != n.dtype):
                    aliased.add(id(a))
        # values whose buffer this function may overwrite (a fresh result, or a donated input)
        owned: set[int] = set()
        for i in self.donate:
            owned.add(id(g.inputs[i]))
        donated_used: list[int] = []

        body: list[str] = []
        for k, n in enumerate(emitted):
            nm = f"t{k}"
            args = [self.expr[id(a)] for a in operands[id(n)]]
            out = None
            if n.prim in ufuncs and n.shape != ():
                for a in operands[id(n)]:
                    if (id(a) in owned and a.type == n.type and last_use.get(id(a)) == k
                            and id(a) not in aliased and id(a) not in outputs):
                        out = self.expr[id(a)]
                        owned.discard(id(a))
                        if isinstance(a, Input):
                            donated_used.append(g.inputs.index(a))
                        break
            code = self.emit(n, args, out, ufuncs, quiet, reducers, select_p, convert_p, dot_p,
                             reshape_p, transpose_p, broadcast_p)
            if n.shape != () and _allocates(n, fresh_ops, reducers, convert_p):
                owned.add(id(n))
            self.expr[id(n)] = nm
            comment = f"# {n.prim.name} {n.type.short()}" + (f"  {n.source}" if n.source else "")
            body.append(f"{nm} = {code}  {comment}")
            dead = sorted((self.expr[id(a)] for a in set(operands[id(n)])
                           if last_use.get(id(a)) == k and id(a) not in outputs
                           and isinstance(a, Apply) and id(a) not in static_bcast),
                          key=lambda s: int(s[1:]))
            if dead:
                body.append(f"del {', '.join(dead)}")
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
    def emit(self, n: Apply, args, out, ufuncs, quiet, reducers, select_p, convert_p, dot_p,
             reshape_p, transpose_p, broadcast_p) -> str:
        p = n.prim
        if p in ufuncs:
            if p in quiet:
                self.quiet = True
            uf = self.bind(ufuncs[p], f"_{ufuncs[p].__name__}")
            tail = f", out={out}" if out else ""
            return f"{uf}({', '.join(args)}{tail})"
        if p is select_p:
            return f"{self.bind(np.where, '_where')}({', '.join(args)})"
        if p in reducers:
            red = self.bind(getattr(np, reducers[p]).reduce, f"_{reducers[p]}_reduce")
            axes = n.params["axes"]
            dt = f", {self.param(n.dtype)}" if reducers[p] == "add" else ""
            return f"{red}({args[0]}, {axes!r}{dt})"
        if p is reshape_p:
            return f"{args[0]}.reshape({n.params['shape']!r})"
        if p is transpose_p:
            return f"{args[0]}.transpose({n.params['perm']!r})"
        if p is broadcast_p:
            return f"{self.bind(np.broadcast_to, '_broadcast_to')}({args[0]}, {n.params['shape']!r})"
        if p is convert_p and not (n.args[0].dtype.kind == "c" and n.dtype.kind != "c"):
            return f"{args[0]}.astype({self.param(n.dtype)})"
        if p is dot_p:
            return self.emit_dot(n, args)
        from funconv.backends.numpy.kernels import KERNELS

        fn = KERNELS.get(p)
        impl = self.bind(p.impl, f"{p.name}_impl") if fn is None else self.bind(fn, f"{p.name}_kernel")
        kw = "".join(f", {k}={self.param(v)}" for k, v in n.params.items())
        return f"{impl}({', '.join(args)}{kw})"

    def emit_dot(self, n: Apply, args) -> str:
        """dot_general as one matmul; layout work decided now rather than per call."""
        x, y = n.args
        a, b = args
        (xc, yc), (xb, yb) = n.params["dimension_numbers"]
        mm = self.bind(np.matmul, "_matmul")
        xn, yn = len(x.shape), len(y.shape)
        if not xb and tuple(xc) == (xn - 1,) and tuple(yc) == (0,) and yn in (1, 2) \
                and xn >= 1:
            return f"{mm}({a}, {b})"  # NumPy's own matmul semantics give exactly this layout
        if not xc and not xb:
            # no contraction: an outer product, which NumPy broadcasting does without a GEMM
            mul = self.bind(np.multiply, "_multiply")
            xs = f"{a}.reshape({tuple(x.shape) + (1,) * yn!r})" if yn else a
            return f"{mul}({xs}, {b})"
        xf = [i for i in range(xn) if i not in xc and i not in xb]
        yf = [i for i in range(yn) if i not in yc and i not in yb]

        def size(shape, dims):
            return int(np.prod([shape[i] for i in dims], dtype=np.int64))

        B, M, K, N = size(x.shape, xb), size(x.shape, xf), size(x.shape, xc), size(y.shape, yf)
        xs = _relayout(a, x.shape, tuple(xb) + tuple(xf) + tuple(xc), ((B,) if xb else ()) + (M, K))
        ys = _relayout(b, y.shape, tuple(yb) + tuple(yc) + tuple(yf), ((B,) if yb else ()) + (K, N))
        code = f"{mm}({xs}, {ys})"
        mm_shape = ((B,) if xb else ()) + (M, N)
        if mm_shape != n.shape:
            code += f".reshape({n.shape!r})"
        return code


def _allocates(n: Apply, fresh_ops, reducers, convert_p) -> bool:
    """Does this node's code return a new buffer that nothing else references?"""
    if n.prim in reducers:
        return bool(n.params["axes"])
    if n.prim is convert_p:
        return n.args[0].dtype != n.dtype
    return n.prim in fresh_ops


def output_aliases(graph: Graph) -> tuple[frozenset, ...]:
    """For each output, the indices of the graph inputs whose memory it may share.

    The generated code never writes into a non-donated input, but an output may *be* an input
    (`lambda x: x`) or a view of one (a reshape, a transpose, a slice done by an impl). jit uses
    this to copy exactly those outputs when the input was a caller's NumPy array passed without
    a copy. Conservative: an op not known to return a fresh buffer may alias any operand.
    """
    plain, quiet, reducers, select_p, convert_p, dot_p = tables()
    fresh_ops = set(plain) | set(quiet) | {select_p, dot_p} | set(reducers)
    index = {id(inp): i for i, inp in enumerate(graph.inputs)}
    none: frozenset = frozenset()
    memo: dict[int, frozenset] = {}
    for n in graph.nodes():
        if isinstance(n, Input):
            memo[id(n)] = frozenset([index[id(n)]]) if id(n) in index else none
        elif isinstance(n, Apply) and not _allocates(n, fresh_ops, reducers, convert_p):
            memo[id(n)] = none.union(*[memo.get(id(a), none) for a in n.args])
        else:  # a fresh buffer, a literal or a constant
            memo[id(n)] = none
    return tuple(memo[id(o)] for o in graph.outputs)


def _relayout(name: str, shape, perm, new_shape) -> str:
    code = name
    if tuple(perm) != tuple(range(len(shape))):
        code += f".transpose({tuple(perm)!r})"
    if tuple(shape[p] for p in perm) != tuple(new_shape):
        code += f".reshape({tuple(new_shape)!r})"
    return code


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
