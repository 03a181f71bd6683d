"""Graph -> one OpenCL program and a fixed list of kernel launches.

Values. Every node becomes a `Val`: a `View` (a buffer, an element offset, a
shape and element strides: shape ops such as transpose, broadcast_to, slice,
flip and most reshapes cost nothing, they only change the view) or a `Lit` (a
scalar literal, possibly broadcast: it is inlined into the C code that reads it).
Kernels read their operands through the view's index arithmetic, so a broadcast
or a transpose feeding an elementwise op, a reduction or a GEMM is never
materialised.

Fusion (`fusion_plan`). An elementwise node (a primitive with a C template) that is
not a graph output is computed inside its consumers' kernels: a chain like
`relu(x * s + b)` is one kernel, one SSA line of C per node; a reduction computes
its elementwise producer in its loop (`sum(exp(x - m))`); a small elementwise node
read through a broadcast (the reduced value of a softmax) is recomputed by index
arithmetic in the full-shape map, so log_softmax is three reductions and one map.

Buffers. Each kernel writes a fresh logical buffer; after all kernels are known,
logical buffers are mapped onto physical device buffers by lifetime (a buffer
whose last reader has run is reused for a later result of at most its size).
Inputs are uploaded into their own device buffers at each call and outputs are
downloaded at the end of the call: the host waits once. Constants are uploaded
once, at compile time.

Launches are 1-D, with one local size (`LOCAL`) for every kernel: PoCL compiles one
work-group function per (kernel, local size), and a fixed size keeps that to one.

Few kernels. PoCL's cold compile is ~50 ms per kernel, mostly fixed cost, so a program
has few: equal sources are one kernel (the GEMM and its pack kernels take every size as an
argument, so all float32 GEMMs of a graph share them), and the graph's other kernels of up
to BUNDLE_MAX work-items are inline functions behind one switch kernel (`bundle`).
Imports numpy, attrs, the funconv core; pyopencl only through device.py.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable

import attrs
import numpy as np
from funconv.backends.opencl.device import OpenCLUnsupported, cl

from funconv.ir import Apply, Const, Graph, Literal, Node

LOCAL = 64  # the one work-group size of every launch

CTYPE = {np.dtype("float32"): "float", np.dtype("float64"): "double", np.dtype("int32"): "int",
         np.dtype("int64"): "long", np.dtype("bool"): "uchar", np.dtype("complex64"): "float2",
         np.dtype("complex128"): "double2", np.dtype("uint32"): "uint", np.dtype("uint8"): "uchar",
         np.dtype("uint64"): "ulong", np.dtype("int8"): "char", np.dtype("int16"): "short",
         np.dtype("uint16"): "ushort"}

_KERNEL_DIR = os.path.join(os.path.dirname(__file__), "kernels")
_TEMPLATES: dict[str, str] = {}


def template(name: str) -> str:
    """The text of kernels/<name>.cl (cached)."""
    t = _TEMPLATES.get(name)
    if t is None:
        with open(os.path.join(_KERNEL_DIR, name + ".cl")) as f:
            t = _TEMPLATES[name] = f.read()
    return t


def fill(text: str, **subs) -> str:
    """`text` with each `$NAME` replaced by `subs[NAME]` (longest names first)."""
    for k in sorted(subs, key=len, reverse=True):
        text = text.replace("$" + k, str(subs[k]))
    return text


def ctype(dtype) -> str:
    try:
        return CTYPE[np.dtype(dtype)]
    except KeyError:
        raise OpenCLUnsupported(f"the OpenCL backend has no C type for dtype {dtype}") from None


def c_literal(value, dtype) -> str:
    """C source for the scalar `value` of `dtype` (exact: floats as hex literals)."""
    dtype = np.dtype(dtype)
    k = dtype.kind
    if k == "b":
        return "((uchar)1)" if value else "((uchar)0)"
    if k in "iu":
        v = int(value)
        if dtype.itemsize == 8:
            return f"({v}L)" if k == "i" and v != -2**63 else f"((long)({v}UL))" if k == "i" else f"({v}UL)"
        if k == "i" and v == -2**31:
            return "((int)0x80000000)"
        return f"({v})" if k == "i" else f"({v}u)"
    if k == "f":
        return _float_lit(float(value), dtype)
    if k == "c":
        rt = np.dtype("float32") if dtype == np.complex64 else np.dtype("float64")
        v = complex(value)
        return f"(({ctype(dtype)})({_float_lit(v.real, rt)}, {_float_lit(v.imag, rt)}))"
    raise OpenCLUnsupported(f"no C literal for {value!r} of dtype {dtype}")


def _float_lit(v: float, dtype) -> str:
    t = ctype(dtype)
    if math.isnan(v):
        return f"(({t})NAN)"
    if math.isinf(v):
        return f"(({t})INFINITY)" if v > 0 else f"(-({t})INFINITY)"
    if dtype == np.float32:
        return f"({float(np.float32(v)).hex()}f)"
    return f"({v.hex()})"


# --- values --------------------------------------------------------------------------------------

@attrs.define(eq=False)
class Buf:
    """A logical device buffer of `size` elements of `dtype`.

    kind: "input" (uploaded per call, `index` is the graph input), "const" (uploaded once,
    `host` holds the data) or "temp" (written by a kernel). `first`/`last`: the launch
    numbers of its first write and last read (set while launches are recorded).
    """

    size: int
    dtype: np.dtype
    kind: str = "temp"
    index: int = -1
    host: np.ndarray | None = None
    first: int = -1
    last: int = -1

    @property
    def nbytes(self) -> int:
        return max(self.size, 1) * self.dtype.itemsize


def c_strides(shape) -> tuple[int, ...]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


@attrs.frozen(eq=False)
class View:
    """Elements `buf[offset + sum(i_d * strides[d])]` for indices `i` of `shape`."""

    buf: Buf
    offset: int
    shape: tuple
    strides: tuple

    @property
    def dtype(self) -> np.dtype:
        return self.buf.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def is_contiguous(self) -> bool:
        """Row-major, dense, and covering its whole buffer from element 0."""
        if self.offset != 0 or self.size != self.buf.size:
            return False
        return all(s == c or n == 1 for s, c, n in zip(self.strides, c_strides(self.shape), self.shape))

    def transpose(self, perm) -> View:
        return View(self.buf, self.offset, tuple(self.shape[p] for p in perm),
                    tuple(self.strides[p] for p in perm))


@attrs.frozen(eq=False)
class Lit:
    """The scalar `value` of `dtype` at every index of `shape` (inlined into C code)."""

    value: object
    dtype: np.dtype
    shape: tuple

    @property
    def size(self) -> int:
        return math.prod(self.shape)


Val = View | Lit


def collapse(shape, *stride_lists):
    """Drop size-1 dims and merge neighbours that every stride list walks as one dim.

    Returns `(shape, [strides, ...])` with at least one dim (a 0-d shape becomes (1,)).
    """
    dims = [i for i, n in enumerate(shape) if n != 1]
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in stride_lists]
    for i in dims:
        if out_shape and all(st[-1] == s[i] * shape[i] for st, s in zip(out_strides, stride_lists)):
            out_shape[-1] *= shape[i]
            for st, s in zip(out_strides, stride_lists):
                st[-1] = s[i]
            continue
        out_shape.append(shape[i])
        for st, s in zip(out_strides, stride_lists):
            st.append(s[i])
    if not out_shape:
        return (1,), [[0] for _ in stride_lists]
    return tuple(out_shape), out_strides


def decompose(var: str, shape, prefix: str) -> tuple[list[str], list[str]]:
    """C lines splitting the linear row-major index `var` over `shape` into coordinates
    `prefix0..`; returns (lines, coordinate names)."""
    names = [f"{prefix}{d}" for d in range(len(shape))]
    if len(shape) == 1:
        return [f"const $IDX {names[0]} = {var};"], names
    lines = [f"$IDX {prefix}_r = {var};"]
    for d in range(len(shape) - 1, 0, -1):
        lines.append(f"const $IDX {names[d]} = {prefix}_r % {shape[d]}; {prefix}_r /= {shape[d]};")
    lines.append(f"const $IDX {names[0]} = {prefix}_r;")
    return lines, names


def address(offset: int, coords, strides) -> str:
    terms = [str(offset)] if offset else []
    for c, s in zip(coords, strides):
        if s == 1:
            terms.append(c)
        elif s:
            terms.append(f"{c}*{s}")
    return " + ".join(terms) if terms else "0"


# --- the emitter: kernels, launches, values ---------------------------------------------------------

@attrs.define(eq=False)
class Launch:
    name: str
    gsize: int
    bufs: list
    node: Apply | None
    scalars: list = attrs.field(factory=list)  # int arguments after the buffers


class Emitter:
    """Builds the program for one graph: used by the lowerings (lowering.py).

    `val(node)` gives a node's Val (lowering it first if needed); `kernel(...)` records a
    kernel's source and one launch of it; `new(shape, dtype)` makes a fresh contiguous view.
    """

    def __init__(self, graph: Graph, device, lowerings: Callable):
        self.graph = graph
        self.device = device
        self.lowering_of = lowerings
        self.vals: dict[int, Val] = {}
        self.kernel_names: dict[str, str] = {}  # source text with NAME placeholder -> kernel name
        self.sources: list[str] = []
        self.owners: dict[str, str] = {}
        self.launches: list[Launch] = []
        self.inline: set[int] = set()  # elementwise nodes computed inside their consumer's kernel
        self.bufs: list[Buf] = []
        self.current: Apply | None = None
        self.extras: list[str] = []  # kernels/*.cl helper files the kernels need (once each)
        self.kparams: dict[str, list[str]] = {}  # kernel name -> its C parameter declarations
        self.bundle_max: dict[str, int] = {}  # kernel name -> the most work-items it may bundle

    def need(self, name: str) -> None:
        """Include the helper functions of kernels/<name>.cl in the program."""
        if name not in self.extras:
            self.extras.append(name)

    # -- values ----------------------------------------------------------------------------------
    def new(self, shape, dtype) -> View:
        b = Buf(math.prod(shape), np.dtype(dtype))
        self.bufs.append(b)
        return View(b, 0, tuple(shape), c_strides(shape))

    def val(self, node: Node) -> Val:
        v = self.vals.get(id(node))
        if v is None:
            raise AssertionError(f"OpenCL codegen: {node} used before it was lowered")
        return v

    def view(self, node_or_val) -> View:
        """A View of the value (a literal is written out by a fill kernel)."""
        v = self.val(node_or_val) if isinstance(node_or_val, Node) else node_or_val
        if isinstance(v, Lit):
            out = self.new(v.shape, v.dtype)
            self.copy_into(out, v)
            return out
        return v

    def contiguous(self, node_or_val) -> View:
        """A contiguous View of the value (copied when the view is strided)."""
        v = self.view(node_or_val)
        if v.is_contiguous():
            return v
        out = self.new(v.shape, v.dtype)
        self.copy_into(out, v)
        return out

    def permuted(self, v: View, perm) -> View:
        """A contiguous copy of `v.transpose(perm)` (unless that is already contiguous)."""
        t = v.transpose(perm)
        if t.is_contiguous():
            return t
        out = self.new(t.shape, t.dtype)
        self.copy_into(out, t)
        return out

    # -- kernels ----------------------------------------------------------------------------------
    def kernel(self, source: str, gsize: int, bufs: list, hint: str = "k", scalars=(),
               params=None, bundle_max: int | None = None) -> None:
        """Record a kernel (its `source` says `KNAME` for its name) and one launch of it over
        `gsize` work-items (rounded up to the local size: kernels check their bound) on `bufs`
        (the kernel's buffer arguments, in order), then the int arguments `scalars`.
        Equal sources are one kernel (so sizes passed as arguments share it). `params`: the
        C declarations of the buffer parameters, for a kernel that may join the bundle."""
        if gsize <= 0:
            return
        name = self.kernel_names.get(source)
        if name is None:
            node = self.current
            name = f"k{len(self.sources)}_{hint}"
            self.kernel_names[source] = name
            self.sources.append(source.replace("KNAME", name))
            if params is not None and not scalars:
                self.kparams[name] = list(params)
                self.bundle_max[name] = BUNDLE_MAX if bundle_max is None else bundle_max
            prim = node.prim.name if node is not None else hint
            self.owners[name] = (f"{prim} {node.type.short()} at {node.source or '?'}"
                                 if node is not None else hint)
        k = len(self.launches)
        for b in bufs:
            if b.first < 0:
                b.first = k
            b.last = k
        self.launches.append(Launch(name, gsize, list(bufs), self.current, list(scalars)))

    def copy_into(self, out: View, src: Val) -> None:
        """out[...] = src[...] (equal shapes), through the elementwise kernel."""
        self.elementwise_into(out, [], [src], "l0")

    def index_kernel(self, params: list, bufs: list, n: int, body: list, idx: str = "int",
                     hint: str = "index") -> None:
        """A kernel of `n` work-items (`gid`) over buffer parameters `params` (C declarations,
        one per buffer of `bufs`) running the C lines `body`."""
        src = fill(template("index"), PARAMS=", ".join(params), N=n, BODY="\n    ".join(body), IDX=idx)
        self.kernel(src, n, bufs, hint, params=params)

    def elementwise_into(self, out: View, stmts: list[str], leaves: list[Val], result: str,
                         hint: str = "map") -> None:
        """One kernel computing `out[i] = <result>` at every index i of out's shape.

        `leaves[j]` (Views or Lits of out's shape) are read into variables `l<j>`; `stmts` are
        C statements (SSA lines) that may use them and define the variable `result`.
        """
        views = [v for v in leaves if isinstance(v, View)]
        shape, strides = collapse(out.shape, out.strides, *[v.strides for v in views])
        idx = self.index_type(out, *views)
        lines, coords = decompose("gid", shape, "c")
        params = [f"__global {ctype(out.dtype)}* out"]
        bufs = [out.buf]
        reads = []
        vi = 0
        for j, lv in enumerate(leaves):
            t = ctype(lv.dtype)
            if isinstance(lv, Lit):
                reads.append(f"const {t} l{j} = {c_literal(lv.value, lv.dtype)};")
                continue
            params.append(f"__global const {t}* in{j}")
            bufs.append(lv.buf)
            reads.append(f"const {t} l{j} = in{j}[{address(lv.offset, coords, strides[1 + vi])}];")
            vi += 1
        body = lines + reads + stmts + [f"out[{address(out.offset, coords, strides[0])}] = {result};"]
        src = fill(template("elementwise"), PARAMS=", ".join(params), IDX=idx, N=math.prod(shape),
                   BODY="\n    ".join(body))
        self.kernel(src, math.prod(shape), bufs, hint, params=params, bundle_max=BUNDLE_MAX_MAP)

    def index_type(self, *views) -> str:
        """`int` when every index and address fits, else `long`."""
        big = 0
        for v in views:
            if isinstance(v, View):
                big = max(big, v.size, v.buf.size)
        return "int" if big < 2**31 - 1 else "long"


# The bundle: PoCL compiles every kernel of a program separately at its first launch (~50 ms
# each cold, most of it fixed cost), so the small kernels of a graph (at most BUNDLE_MAX
# work-items per launch: the scalar glue of a loss, bias gradients, parameter updates, and
# the pooling, im2col and activation kernels of a small CNN)
# become inline functions called from one kernel, `fc_bundle`, through a switch on its
# last argument. Large kernels keep their own (the switch per work-item stops PoCL's
# vectorizer, which matters only when there is much work): fused elementwise kernels above
# BUNDLE_MAX_MAP work-items (they vectorize well: LeNet's step 8% faster on one thread for
# six more kernels), other kernels above BUNDLE_MAX.
BUNDLE = "fc_bundle"
BUNDLE_MAX = 1 << 20
BUNDLE_MAX_MAP = 1 << 16


def bundle(em: Emitter) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The program's kernel sources with the small kernels folded into the bundle, and for
    each bundled kernel name its (case number, number of buffer parameters of the bundle)."""
    biggest: dict[str, int] = {}
    for ln in em.launches:
        biggest[ln.name] = max(biggest.get(ln.name, 0), ln.gsize)
    names = [name for name in em.kparams if biggest.get(name, 0) <= em.bundle_max[name]]
    if len(names) < 2:
        return em.sources, {}
    chosen = set(names)
    width = max(len(em.kparams[name]) for name in names)
    sources, calls, cases = [], [], {}
    for src in em.sources:
        name = src.split("__kernel void ", 1)[1].split("(", 1)[0] if "__kernel void " in src else None
        if name in chosen:
            src = src.replace(f"__kernel void {name}(", f"inline void {name}(", 1)
            casts = []
            for j, decl in enumerate(em.kparams[name]):
                ctype_ = decl.rsplit(None, 1)[0]
                casts.append(f"({ctype_})p{j}")
            cases[name] = (len(calls), width)
            calls.append(f"    case {len(calls)}: {name}({', '.join(casts)}); break;")
        sources.append(src)
    params = ", ".join(f"__global uchar* p{j}" for j in range(width))
    sources.append(f"__kernel void {BUNDLE}({params}, const int which) {{\n    switch (which) {{\n"
                   + "\n".join(calls) + "\n    }\n}")
    return sources, cases


def gsize_of(n: int) -> int:
    return -(-n // LOCAL) * LOCAL


# --- the executable ------------------------------------------------------------------------------

class Executable:
    """A graph compiled for one OpenCL device (the `funconv.backends.Executable` protocol).

    `call(*arrays)` uploads the inputs, enqueues every kernel on the device's in-order queue,
    downloads the outputs and waits once; it returns fresh NumPy arrays (so
    `output_aliases` is empty for every output). `source` is the OpenCL C program;
    `launches` lists `(kernel name, work-items, node)` in order.
    """

    def __init__(self, graph: Graph, device, lowering, name: str = "jitted"):
        self.graph = graph
        self.device = device
        self.name = name
        em = Emitter(graph, device, lowering)
        self._lower(em)
        self._plan_and_build(em)
        self.output_aliases = tuple(frozenset() for _ in graph.outputs)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<opencl executable {self.name} on {self.device.name}: {len(self._launches)} launches>"

    # -- lowering ----------------------------------------------------------------------------------
    def _lower(self, em: Emitter) -> None:
        g = self.graph
        nodes = g.nodes()
        _check_dtypes(nodes, self.device)
        for i, inp in enumerate(g.inputs):
            b = Buf(math.prod(inp.shape), inp.dtype, "input", i)
            em.bufs.append(b)
            em.vals[id(inp)] = View(b, 0, inp.shape, c_strides(inp.shape))
        em.inline = fusion_plan(g, em.lowering_of)
        for n in nodes:
            if isinstance(n, Literal):
                em.vals[id(n)] = Lit(n.value, n.dtype, ())
            elif isinstance(n, Const):
                value = np.ascontiguousarray(n.value, n.dtype)
                b = Buf(value.size, n.dtype, "const", host=value)
                em.bufs.append(b)
                em.vals[id(n)] = View(b, 0, n.shape, c_strides(n.shape))
        for n in nodes:
            if isinstance(n, Apply) and id(n) not in em.inline:
                em.current = n
                low = em.lowering_of(n.prim)
                if low is None:
                    raise OpenCLUnsupported(f"the OpenCL backend has no lowering for {n.prim.name} "
                                            f"({n.type.short()}, at {n.source or '?'})")
                v = low(em, n)
                if isinstance(v, View) and v.shape != n.shape:
                    raise AssertionError(f"{n.prim.name}: lowered to shape {v.shape}, expected {n.shape}")
                em.vals[id(n)] = v
        # outputs: contiguous buffers written by kernels (an input or a constant is copied: the
        # outputs live in the output arena), downloaded at the end of each call
        em.current = None
        self._outputs = []
        for o in g.outputs:
            v = em.val(o)
            if not (isinstance(v, View) and v.is_contiguous() and v.buf.kind == "temp"):
                out = em.new(o.shape, o.dtype)
                em.copy_into(out, v)
                v = out
            self._outputs.append((v.buf, o.shape, o.dtype))
        self._em = em

    # -- buffers and the program ---------------------------------------------------------------------
    def _plan_and_build(self, em: Emitter) -> None:
        pcl = cl()
        ctx = self.device.ctx
        n_launch = len(em.launches)
        out_bufs = {id(b) for b, _, _ in self._outputs}
        physical: dict[int, object] = {}  # id(Buf) -> cl.Buffer
        free: list[tuple[int, object]] = []  # (nbytes, cl.Buffer) not in use
        self.nbytes = 0

        def alloc(nbytes):
            best = None
            for k, (nb, _) in enumerate(free):
                if nb >= nbytes and (best is None or nb < free[best][0]) and nb <= 2 * nbytes + 4096:
                    best = k
            if best is not None:
                return free.pop(best)[1]
            self.nbytes += nbytes
            return pcl.Buffer(ctx, pcl.mem_flags.READ_WRITE, nbytes)

        mf = pcl.mem_flags
        ends: dict[int, list[Buf]] = {}
        for b in em.bufs:
            if b.kind == "const":
                physical[id(b)] = pcl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=b.host) \
                    if b.size else pcl.Buffer(ctx, mf.READ_ONLY, b.nbytes)
                continue
            if id(b) in out_bufs or b.kind == "input":
                continue
            if b.first >= 0:
                ends.setdefault(b.last, []).append(b)
        # inputs and outputs keep their own buffers (inputs are rewritten at each call start,
        # outputs read at its end); temporaries share by lifetime. All inputs are sub-buffers
        # of one device buffer, and all outputs of another: one upload and one download per
        # call (each transfer command costs ~20 us on PoCL, whatever its size)
        align = max(int(getattr(self.device.device, "mem_base_addr_align", 1024)) // 8, 128)

        def arena(bufs):
            offs, total = [], 0
            for b in bufs:
                offs.append(total)
                total += -(-b.nbytes // align) * align
            parent = pcl.Buffer(ctx, mf.READ_WRITE, max(total, align))
            for b, off in zip(bufs, offs):
                physical[id(b)] = parent.get_sub_region(off, b.nbytes)
            return parent, offs, total

        ins = [b for b in em.bufs if b.kind == "input"]
        self._in_arena, offs, self._in_total = arena(ins)
        self._inputs = [(off, b.dtype, b.size) for b, off in zip(ins, offs)]
        outs = list({id(b): b for b, _, _ in self._outputs}.values())
        self._out_arena, offs, self._out_total = arena(outs)
        self._out_offsets = {id(b): off for b, off in zip(outs, offs)}
        starts: dict[int, list[Buf]] = {}
        for b in em.bufs:
            if id(b) not in physical and b.first >= 0:
                starts.setdefault(b.first, []).append(b)
        for k in range(n_launch):
            for b in starts.get(k, ()):
                physical[id(b)] = alloc(b.nbytes)
            for b in ends.get(k, ()):
                free.append((b.nbytes, physical[id(b)]))

        header = fill(template("prelude"), FP64="#define FC_FP64 1\n#pragma OPENCL EXTENSION "
                      "cl_khr_fp64 : enable" if self.device.fp64 else "")
        sources, cases = bundle(em)
        self.source = "\n".join([header] + [template(x) for x in em.extras] + sources)
        self.program = self.device.build(self.source, em.owners) if sources else None
        self._launches = []
        for ln in em.launches:
            case = cases.get(ln.name)
            kern = pcl.Kernel(self.program, BUNDLE if case is not None else ln.name)
            for j, b in enumerate(ln.bufs):
                kern.set_arg(j, physical[id(b)])
            if case is not None:
                width = case[1]
                for j in range(len(ln.bufs), width):  # parameters this case does not use
                    kern.set_arg(j, physical[id(ln.bufs[0])])
                kern.set_arg(width, np.int32(case[0]))
            for j, v in enumerate(ln.scalars):
                kern.set_arg(len(ln.bufs) + j, np.int32(v))
            self._launches.append((kern, (gsize_of(ln.gsize),), ln))
        self._outputs = [(self._out_offsets[id(b)], shape, dtype) for b, shape, dtype in self._outputs]
        # clSetKernelArg does not retain its buffers: the executable keeps them alive
        self._buffers = list({id(v): v for v in physical.values()}.values())
        self._em = None  # the Emitter is no longer needed (it holds the graph's values)

    @property
    def launches(self):
        return [(ln.name, ln.gsize, ln.node) for _, _, ln in self._launches]

    # -- calling ----------------------------------------------------------------------------------------
    def call(self, *arrays):
        pcl = cl()
        q = self.device.queue
        with self._lock:  # the device buffers are this executable's own: one call at a time
            stage = self._stage(arrays)
            if self._in_total:
                pcl.enqueue_copy(q, self._in_arena, stage, is_blocking=False)
            enqueue = pcl.enqueue_nd_range_kernel
            for kern, gsize, _ in self._launches:
                enqueue(q, kern, gsize, (LOCAL,))
            host = np.empty(self._out_total, np.uint8)
            if self._out_total:
                pcl.enqueue_copy(q, host, self._out_arena, is_blocking=False)
            q.finish()
        outs = []
        for off, shape, dtype in self._outputs:
            n = math.prod(shape)
            outs.append(host[off:off + n * dtype.itemsize].view(dtype).reshape(shape))
        return tuple(outs)

    __call__ = call

    def _stage(self, arrays) -> np.ndarray:
        """The inputs laid out as the input arena (one host array, uploaded in one copy)."""
        stage = np.empty(self._in_total, np.uint8)
        for (off, dtype, size), a in zip(self._inputs, arrays):
            if size:
                stage[off:off + size * dtype.itemsize].view(dtype)[...] = np.asarray(a).reshape(-1)
        return stage

    def profile(self, values, repeat: int = 10, copy_inputs: bool = False):
        """Time each kernel launch with OpenCL profiling events (median over `repeat` calls)."""
        from funconv.backends.numpy.profile import Profile, Row

        pcl = cl()
        q = self.device.queue
        self.call(*values)  # warm: the first launch of each kernel compiles its work-group code
        per = [[] for _ in self._launches]
        totals = []
        import time

        for _ in range(repeat):
            t0 = time.perf_counter()
            stage = self._stage(values)
            if self._in_total:
                pcl.enqueue_copy(q, self._in_arena, stage, is_blocking=False)
            evs = [pcl.enqueue_nd_range_kernel(q, k, g, (LOCAL,)) for k, g, _ in self._launches]
            q.finish()
            totals.append(time.perf_counter() - t0)
            for lst, ev in zip(per, evs):
                lst.append((ev.profile.end - ev.profile.start) * 1e-6)
        total = float(np.median(totals)) * 1e3
        rows = []
        for lst, (_, _, ln) in zip(per, self._launches):
            ms = float(np.median(lst))
            n = ln.node
            desc = f"{n.prim.name} {n.type.short()}" + (f"  {n.source}" if n.source else "") if n else "output copy"
            rows.append(Row(ms, ms / total if total else 0.0, desc, f"{ln.name} x{ln.gsize}"))
        rows.sort(key=lambda r: -r.ms)
        return Profile(self.name, total, repeat, tuple(rows))


def _check_dtypes(nodes, device) -> None:
    # operations first: they name the user's line
    for n in sorted(nodes, key=lambda n: not isinstance(n, Apply)):
        dts = [n.dtype] + ([a.dtype for a in n.args] if isinstance(n, Apply) else [])
        for dt in dts:
            if dt in (np.float64, np.complex128) and not device.fp64:
                where = f" ({n.prim.name}, at {n.source or '?'})" if isinstance(n, Apply) else ""
                raise OpenCLUnsupported(
                    f"float64 needs the cl_khr_fp64 extension, which the OpenCL device "
                    f"{device.name!r} lacks: {n.type.short()}{where}; use float32, or another "
                    "device (FUNCONV_OPENCL_DEVICE)")
            if np.dtype(dt) not in CTYPE:
                raise OpenCLUnsupported(f"the OpenCL backend does not handle dtype {dt} ({n.type.short()})")


# An elementwise node with several consumers, or read through a broadcast (a reduced value
# combined with the reduction's input: softmax, log_softmax, cross-entropy), is recomputed in
# each consumer's kernel when it has at most this many elements: recomputing a few thousand
# values costs less than the launch (and the write and read back) of its own kernel.
RECOMPUTE_MAX = 1 << 14


def fusion_plan(graph: Graph, lowering_of) -> set[int]:
    """The nodes computed inside their consumers' kernels instead of a kernel of their own.

    An elementwise node joins its consumers' kernels when it is not a graph output and every
    consumer computes it there: an elementwise node of its shape, a reduction reading it
    (`reduce_sum(exp(x - m))` is one kernel), or an elementwise node reading it through
    broadcasts and reshapes that only add or drop unit dims (the reduced value of a softmax,
    read by index arithmetic). With one such consumer it always fuses; with several, or
    through a broadcast, only when it has at most RECOMPUTE_MAX elements (it is recomputed).
    Those broadcasts and reshapes are then inline too (they have no value of their own)."""
    from funconv.backends.opencl.lowering import FUSED_REDUCTIONS, is_elementwise

    nodes = [n for n in graph.nodes() if isinstance(n, Apply)]
    consumers: dict[int, list[Apply]] = {}
    for n in nodes:
        for a in n.args:
            consumers.setdefault(id(a), []).append(n)
    outputs = {id(o) for o in graph.outputs}

    def uses(n):
        """(consumer, through a shape path?, shape nodes on the way) of each use of n, or
        None when some use cannot compute n."""
        out = []
        for c in consumers.get(id(n), ()):
            if (is_elementwise(c) and c.shape == n.shape) or (c.prim in FUSED_REDUCTIONS and c.args[0] is n):
                out.append((c, False, []))
            elif _unit_reshape_or_broadcast(c) and id(c) not in outputs:
                inner = uses(c)
                if inner is None:
                    return None
                out += [(u, True, [c] + path) for u, _, path in inner]
            else:
                return None
        return out

    inline = set()
    for n in nodes:
        if id(n) in outputs or not is_elementwise(n):
            continue
        us = uses(n)
        if not us:
            continue
        if (len(us) > 1 or us[0][1]) and math.prod(n.shape) > RECOMPUTE_MAX:
            continue
        inline.add(id(n))
        for _, _, path in us:
            inline.update(id(c) for c in path)
    return inline


def _unit_reshape_or_broadcast(n: Apply) -> bool:
    name = n.prim.name
    if name == "broadcast_to":
        return True
    if name == "reshape":
        x = n.args[0]
        return [d for d in x.shape if d != 1] == [d for d in n.shape if d != 1]
    return False


def broadcast_view(v, shape):
    """The Val `v` broadcast to `shape` (NumPy's rules): a view, strides 0 where broadcast."""
    shape = tuple(shape)
    if isinstance(v, Lit):
        return Lit(v.value, v.dtype, shape)
    lead = len(shape) - len(v.shape)
    strides = (0,) * lead + tuple(0 if d == 1 and shape[lead + i] != 1 else s
                                  for i, (d, s) in enumerate(zip(v.shape, v.strides)))
    return View(v.buf, v.offset, shape, strides)


def unit_reshape_view(v, shape):
    """The Val `v` reshaped to `shape`, which differs from v's shape by unit dims only."""
    shape = tuple(shape)
    if isinstance(v, Lit):
        return Lit(v.value, v.dtype, shape)
    src = iter([s for d, s in zip(v.shape, v.strides) if d != 1])
    return View(v.buf, v.offset, shape, tuple(0 if d == 1 else next(src) for d in shape))
