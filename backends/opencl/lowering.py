"""The OpenCL backend's lowering table: how each primitive becomes kernels (or a view).

`LOWERINGS[prim]` is a function `(em, node) -> Val` (codegen.Emitter, ir.Apply): it
records the kernels computing `node` on the emitter and returns the node's value (a
View of a buffer, or a literal). Families:

- elementwise primitives: fused chains (`elementwise`), one SSA line of C per node from
  the primitive's own `c_expr` template for its operands' dtype kind (`ew_template`;
  tests/backends/test_opencl_templates.py checks each against NumPy, special values too);
- shape ops: views (no kernel) where the result is a strided view of the operand, else a
  copy; pad and concatenate write into strided views of their result;
- reductions: one work-item per output element looping over the reduced dims (split in
  two stages when few outputs reduce many elements each);
- dot_general: on a GPU, the local-memory tiled kernel of kernels/gemm_local.cl (32x32
  tiles of C per work-group, 4x4 per work-item); on a CPU device, float32 GEMMs of >=
  _SMALL_GEMM multiply-adds pack both operands into panels (kernels/pack.cl) and run the
  6x16 float8 register-tiled kernel of kernels/gemm_cpu.cl (every size a kernel argument:
  one kernel for all of them); otherwise (other dtypes, small GEMMs) the register-blocked
  kernel of kernels/gemm.cl. All read strided (batch, M, K) and (batch, K, N) views.
  `FUNCONV_OPENCL_GEMM=local` picks the GPU kernel on any device (CI runs it on PoCL).
  conv_general: im2col then the same GEMM, which
  writes the result straight into (N, O, spatial) order; grouped convolutions with short
  reductions (depthwise) are computed directly (`_conv_direct`);
- gather, scatter_add (no atomics: each work-item owns one column of the result and adds
  the rows in order), pooling (reduce_window; max pooling's derivatives in two passes, or
  one when the windows tile the input),
  argsort/random_permutation (ranking by counting), Threefry random bits.

A primitive missing here raises OpenCLUnsupported at compile time, naming it
(tests/backends/test_opencl_registry.py lists the known-missing ones).
"""

from __future__ import annotations

import math
import os

import attrs
import numpy as np

from funconv.backends.opencl.codegen import (LOCAL, Emitter, Lit, View, address, broadcast_view,
                                             c_literal, c_strides, collapse, ctype, decompose, fill,
                                             template, unit_reshape_view)
from funconv.backends.opencl.device import OpenCLUnsupported
from funconv.ir import Apply
from funconv.ops import elementwise as ew
from funconv.ops import indexing, linalg, pool, random as rnd, reduce as red, shape as sh, special
from funconv.ops.conv import conv_general_p
from funconv.primitive import REGISTRY

# --- elementwise ---------------------------------------------------------------------------------

def is_elementwise(n: Apply) -> bool:
    """Is `n` computed by an elementwise C expression (and so fusible)?"""
    return n.prim.c_expr is not None


def ew_template(n: Apply) -> str:
    """The C template of elementwise node `n` ({0}, {1}: operands; {dtype}: result C type):
    the primitive's own `c_expr` for its operands' dtype kind (funconv/ops/)."""
    if n.prim is ew.convert_element_type_p:
        return _convert_template(n.args[0].dtype, n.dtype)
    kind = n.args[-1].dtype.kind
    t = n.prim.c_template(kind)
    if t is None:
        what = "complex " if kind == "c" else ""
        raise OpenCLUnsupported(f"the OpenCL backend has no {what}{n.prim.name} ({n.type.short()}, at "
                                f"{n.source or '?'})")
    return t


def _convert_template(src, dst) -> str:
    s, d = np.dtype(src), np.dtype(dst)
    if s == d:
        return "{0}"
    if d.kind == "b":
        return "((({0}).x!=0)||(({0}).y!=0))" if s.kind == "c" else "(({0})!=0)"
    if d.kind == "c":
        if s.kind == "c":
            return "convert_{dtype}({0})"
        rt = "float" if d == np.complex64 else "double"
        return f"(({{dtype}})(({rt})({{0}}), ({rt})0))"
    if s.kind == "c":
        return "(({dtype})(({0}).x))"
    return "(({dtype})({0}))"


@attrs.frozen(eq=False)
class Fused:
    """An elementwise expression over leaves: `stmts` (C lines, SSA) compute the variable
    `result` at one index of `shape` from the variables l<j>, each leaf j (a View or Lit of
    `shape`) read at that index."""

    shape: tuple
    dtype: np.dtype
    leaves: list
    stmts: list
    result: str


def fused(em: Emitter, n: Apply) -> Fused:
    """`n` with the nodes fused into it (em.inline, codegen.fusion_plan) as one expression.
    Inline broadcasts and unit reshapes (a reduced value read by a map of the full shape)
    become index arithmetic: the leaves below them are read through broadcast views."""
    stmts: list[str] = []
    leaves: list = []
    leaf_names: dict[tuple, str] = {}
    names: dict[tuple, str] = {}

    def visit(m, path: tuple) -> str:
        # path: the inline shape nodes between m and n, innermost first (m is read through them)
        key = (id(m), tuple(id(p) for p in path))
        v = names.get(key)
        if v is not None:
            return v
        # (n itself may be one: a reduction reading an inline broadcast of a fused node)
        if isinstance(m, Apply) and id(m) in em.inline and m.prim.name in _SHAPE_PATH:
            v = visit(m.args[0], (m,) + path)
        elif m is n or (isinstance(m, Apply) and id(m) in em.inline):
            args = [visit(a, path) for a in m.args]
            v = f"v{len(stmts)}"
            expr = ew_template(m).format(*args, dtype=ctype(m.dtype))
            stmts.append(f"const {ctype(m.dtype)} {v} = {expr};  // {m.prim.name}")
        else:
            val = em.val(m)
            for p in path:
                val = _SHAPE_PATH[p.prim.name](val, p.shape)
            lkey = (id(val.buf), val.offset, val.strides) if isinstance(val, View) else None
            v = leaf_names.get(lkey) if lkey is not None else None
            if v is None:
                v = f"l{len(leaves)}"
                leaves.append(val)
                if lkey is not None:
                    leaf_names[lkey] = v
        names[key] = v
        return v

    result = visit(n, ())
    return Fused(n.shape, n.dtype, leaves, stmts, result)


_SHAPE_PATH = {"broadcast_to": broadcast_view, "reshape": unit_reshape_view}


def elementwise(em: Emitter, n: Apply):
    """`n` and the nodes fused into it (em.inline): one kernel."""
    out = em.new(n.shape, n.dtype)
    f = fused(em, n)
    em.elementwise_into(out, f.stmts, f.leaves, f.result, n.prim.name)
    return out


# --- shape ops: views --------------------------------------------------------------------------

def _identity(em, n):
    return em.val(n.args[0])


def _broadcast_to(em, n):
    return broadcast_view(em.val(n.args[0]), n.params["shape"])


def _reshape(em, n):
    v = em.val(n.args[0])
    shape = tuple(n.params["shape"])
    if isinstance(v, Lit):
        return Lit(v.value, v.dtype, shape)
    if v.size == 0:
        return View(v.buf, v.offset, shape, c_strides(shape))
    cshape, (cst,) = collapse(v.shape, v.strides)
    if len(cshape) != 1:  # not one linear walk: copy to a contiguous buffer first
        v = em.contiguous(v)
        cst = [1]
    return View(v.buf, v.offset, shape, tuple(s * cst[0] for s in c_strides(shape)))


def _transpose(em, n):
    v = em.val(n.args[0])
    perm = n.params["perm"]
    if isinstance(v, Lit):
        return Lit(v.value, v.dtype, n.shape)
    return v.transpose(perm)


def _slice(em, n):
    v = em.val(n.args[0])
    if isinstance(v, Lit):
        return Lit(v.value, v.dtype, n.shape)
    p = n.params
    off = v.offset + sum(s * st for s, st in zip(p["start_indices"], v.strides))
    return View(v.buf, off, n.shape, tuple(st * k for st, k in zip(v.strides, p["strides"])))


def _flip(em, n):
    v = em.val(n.args[0])
    if isinstance(v, Lit):
        return v
    off, strides = v.offset, list(v.strides)
    for a in n.params["axes"]:
        if v.shape[a] > 0:
            off += (v.shape[a] - 1) * strides[a]
            strides[a] = -strides[a]
    return View(v.buf, off, v.shape, tuple(strides))


def _scalar_as(em, node, shape):
    """A 0-d operand broadcast to `shape` (a literal stays a literal)."""
    v = em.val(node)
    if isinstance(v, Lit):
        return Lit(v.value, v.dtype, tuple(shape))
    return View(v.buf, v.offset, tuple(shape), (0,) * len(shape))


def _pad(em, n):
    x, value = n.args
    out = em.new(n.shape, n.dtype)
    em.copy_into(out, _scalar_as(em, value, n.shape))
    xv = em.val(x)
    if len(x.shape) == 0:
        em.copy_into(out, xv)
        return out
    # the elements of x that land inside the result, and where: per axis, element i goes to
    # lo + i * (interior + 1); negative lo/hi crop
    src_start, src_stop, dst_off, dst_strides = [], [], out.offset, []
    for d, ((lo, hi, interior), size, m) in enumerate(zip(n.params["config"], x.shape, n.shape)):
        step = interior + 1
        i0 = max(0, -(lo // step) if lo < 0 else 0)
        while i0 < size and lo + i0 * step < 0:
            i0 += 1
        i1 = size
        while i1 > i0 and lo + (i1 - 1) * step > m - 1:
            i1 -= 1
        src_start.append(i0)
        src_stop.append(max(i1, i0))
        dst_off += (lo + i0 * step) * out.strides[d] if i1 > i0 else 0
        dst_strides.append(out.strides[d] * step)
    inner = tuple(b - a for a, b in zip(src_start, src_stop))
    if math.prod(inner) == 0:
        return out
    if isinstance(xv, Lit):
        src = Lit(xv.value, xv.dtype, inner)
    else:
        src = View(xv.buf, xv.offset + sum(a * s for a, s in zip(src_start, xv.strides)), inner, xv.strides)
    em.copy_into(View(out.buf, dst_off, inner, tuple(dst_strides)), src)
    return out


def _concatenate(em, n):
    axis = n.params["axis"]
    out = em.new(n.shape, n.dtype)
    start = 0
    for a in n.args:
        if a.shape[axis]:
            dst = View(out.buf, out.offset + start * out.strides[axis], a.shape, out.strides)
            em.copy_into(dst, em.val(a))
        start += a.shape[axis]
    return out


# --- reductions ---------------------------------------------------------------------------------

def _init(op: str, dtype) -> str:
    dt = np.dtype(dtype)
    t = ctype(dt)
    if op in ("sum",):
        return f"(({t})(0))"
    if op == "prod":
        return c_literal(1, dt)
    if dt.kind == "f":
        return f"(-({t})INFINITY)" if op == "max" else f"(({t})INFINITY)"
    if dt.kind == "b":
        return "((uchar)0)" if op == "max" else "((uchar)1)"
    info = np.iinfo(dt)
    return c_literal(info.min if op == "max" else info.max, dt)


def _combine(op: str, dtype, acc: str, v: str) -> str:
    dt = np.dtype(dtype)
    if op == "sum":
        return f"{acc} = {acc} | {v};" if dt.kind == "b" else f"{acc} += {v};"
    if op == "prod":
        if dt.kind == "c":
            return f"{acc} = fc_cmul_{ctype(dt)}({acc}, {v});"
        return f"{acc} = {acc} & {v};" if dt.kind == "b" else f"{acc} *= {v};"
    cmp = ">" if op == "max" else "<"
    if dt.kind == "f":
        return f"if ({v} {cmp} {acc} || FC_ISNAN({v})) {acc} = {v};"
    return f"if ({v} {cmp} {acc}) {acc} = {v};"


def reduce_into(em: Emitter, out: View, x, axes, op: str, parts: int = 1) -> None:
    """out (contiguous, the kept dims of x in order, then `parts` if > 1) = the `op`
    reduction of x (a View, or a Fused expression: its elementwise producer computed in the
    loop) over `axes`; with parts > 1 the first reduced dim is cut in `parts`."""
    if isinstance(x, View):
        x = Fused(x.shape, x.dtype, [x], [], "l0")
    views = [(j, v) for j, v in enumerate(x.leaves) if isinstance(v, View)]
    kept = [d for d in range(len(x.shape)) if d not in axes]
    kshape = [x.shape[d] for d in kept]
    kshape_c, (_, *kst) = collapse(kshape, c_strides(kshape),
                                   *[[v.strides[d] for d in kept] for _, v in views])
    rshape, rst = collapse([x.shape[d] for d in axes], *[[v.strides[d] for d in axes] for _, v in views])
    t = ctype(x.dtype)
    lines = []
    if parts > 1:
        lines += [f"const $IDX p = gid % {parts};", f"const $IDX kg = gid / {parts};"]
        kvar = "kg"
    else:
        kvar = "gid"
    dec, kc = decompose(kvar, kshape_c, "k")
    lines += dec
    for (j, v), st in zip(views, kst):
        lines.append(f"const $IDX base{j} = {address(v.offset, kc, st)};")
    for j, v in enumerate(x.leaves):
        if isinstance(v, Lit):
            lines.append(f"const {ctype(v.dtype)} l{j} = {c_literal(v.value, v.dtype)};")
    lines.append(f"{t} acc = {_init(op, x.dtype)};")
    depth = len(rshape)
    # float sums: the innermost loop adds blocks of 128 into a partial sum first (a plain
    # running float32 sum of 131072 equal values was 1.1e-3 off; blocked, ~1e-7)
    chunk = op == "sum" and x.dtype.kind in "fc"
    for d in range(depth):
        r = f"r{d}"
        lo, hi = "0", f"($IDX){rshape[d]}"
        if d == 0 and parts > 1:  # this work-item's part of the first reduced dim
            per = -(-rshape[0] // parts)
            lo, hi = f"p * {per}", f"min(($IDX)((p + 1) * {per}), ($IDX){rshape[0]})"
        if d == depth - 1 and chunk:
            lines.append(f"for ($IDX {r}o = {lo}; {r}o < {hi}; {r}o += 128) {{ {t} part = ({t})(0);")
            lines.append(f"for ($IDX {r} = {r}o; {r} < min(($IDX)({r}o + 128), {hi}); ++{r}) {{")
        else:
            lines.append(f"for ($IDX {r} = {lo}; {r} < {hi}; ++{r}) {{")
    rc = [f"r{d}" for d in range(depth)]
    for (j, v), st in zip(views, rst):
        lines.append(f"const {ctype(v.dtype)} l{j} = in{j}[base{j} + {address(0, rc, st)}];")
    lines += x.stmts
    lines.append(f"const {t} v = {x.result};")
    if chunk:
        lines.append("part += v; }  acc += part; }")
        lines.append("}" * (depth - 1))
    else:
        lines.append(_combine(op, x.dtype, "acc", "v"))
        lines.append("}" * depth)
    lines.append("out[gid] = acc;")
    nout = math.prod(kshape) * parts
    idx = em.index_type(out, *[v for _, v in views])
    em.index_kernel([f"__global {ctype(out.dtype)}* out"]
                    + [f"__global const {ctype(v.dtype)}* in{j}" for j, v in views],
                    [out.buf] + [v.buf for _, v in views], nout, lines, idx, f"reduce_{op}")


def _reducer(op: str):
    def lower(em, n):
        axes = tuple(n.params["axes"])
        a = n.args[0]
        x = fused(em, a) if id(a) in em.inline else em.view(a)
        out = em.new(n.shape, n.dtype)
        if not axes:
            if isinstance(x, Fused):
                em.elementwise_into(out, x.stmts, x.leaves, x.result, n.prim.name)
            else:
                em.copy_into(out, x)
            return out
        nout = out.size
        r = math.prod(x.shape[a] for a in axes)
        # the first reduced dim as reduce_into sees it: the run of adjacent reduced axes
        # from axes[0], merged (when their strides let them; else empty parts do nothing)
        first = 1
        for k, ax in enumerate(axes):
            if ax != axes[0] + k:
                break
            first *= x.shape[ax]
        if nout <= 256 and r >= 16384 and r > 0:
            # few outputs, long reductions: cut the first reduced dim in parts, then reduce those
            parts = max(2, min(64, first, r // 4096))
            if parts > 1:
                mid = em.new(n.shape + (parts,), n.dtype)
                reduce_into(em, mid, x, axes, op, parts)
                reduce_into(em, out, mid, (len(n.shape),), op)
                return out
        reduce_into(em, out, x, axes, op)
        return out

    return lower


def _argreduce(op: str):
    def lower(em, n):
        axis = n.params["axis"]
        x = em.view(n.args[0])
        out = em.new(n.shape, n.dtype)
        kept = [d for d in range(len(x.shape)) if d != axis]
        kshape = [x.shape[d] for d in kept]
        kshape_c, (kst,) = collapse(kshape, [x.strides[d] for d in kept])
        t = ctype(x.dtype)
        dec, kc = decompose("gid", kshape_c, "k")
        cmp = ">" if op == "max" else "<"
        better = f"v {cmp} best" + (" || (FC_ISNAN(v) && !FC_ISNAN(best))" if x.dtype.kind == "f" else "")
        lines = dec + [f"const $IDX base = {address(x.offset, kc, kst)};",
                       f"{t} best = in[base]; int bi = 0;",
                       f"for (int r = 1; r < {x.shape[axis]}; ++r) {{",
                       f"    const {t} v = in[base + ($IDX)r * {x.strides[axis]}];",
                       f"    if ({better}) {{ best = v; bi = r; }}", "}", "out[gid] = bi;"]
        em.index_kernel(["__global int* out", f"__global const {t}* in"], [out.buf, x.buf], out.size,
                        lines, em.index_type(x, out), f"arg{op}")
        return out

    return lower


def _cumsum(em, n):
    axis = n.params["axis"]
    x = em.view(n.args[0])
    out = em.new(n.shape, n.dtype)
    others = [d for d in range(len(x.shape)) if d != axis]
    oshape = [x.shape[d] for d in others]
    oshape_c, (ost, xst) = collapse(oshape, [out.strides[d] for d in others], [x.strides[d] for d in others])
    t = ctype(x.dtype)
    dec, c = decompose("gid", oshape_c, "c")
    add = "acc = acc | v;" if x.dtype.kind == "b" else "acc += v;"
    lines = dec + [f"const $IDX ib = {address(x.offset, c, xst)};",
                   f"const $IDX ob = {address(0, c, ost)};",
                   f"{t} acc = ({t})(0);",
                   f"for ($IDX r = 0; r < {x.shape[axis]}; ++r) {{",
                   f"    const {t} v = in[ib + r * {x.strides[axis]}]; {add}",
                   f"    out[ob + r * {out.strides[axis]}] = acc;", "}"]
    em.index_kernel([f"__global {t}* out", f"__global const {t}* in"], [out.buf, x.buf],
                    math.prod(oshape), lines, em.index_type(x, out), "cumsum")
    return out


# --- dot_general: the GEMM ---------------------------------------------------------------------

_TM, _TN, _KB = 4, 8, 256
# the local-memory GEMM (GPUs): TS x TS tiles of C per work-group of LOCAL work-items, TK deep in k
_TS, _TK = 32, 16


def _group(v: View, groups):
    """`v` seen as one dim per group of its dims (each group walked as one stride), or None."""
    sizes, strides = [], []
    for g in groups:
        if not g:
            sizes.append(1)
            strides.append(0)
            continue
        shape, (st,) = collapse([v.shape[d] for d in g], [v.strides[d] for d in g])
        if len(shape) != 1:
            return None
        sizes.append(math.prod(v.shape[d] for d in g))
        strides.append(st[0] if sizes[-1] > 1 else 0)
    return sizes, strides


GEMM_CHOICES = ("auto", "local", "register")


def gemm_choice(device) -> str:
    """Which GEMM kernel dot_general and im2col convolutions use: "local" (local-memory tiles,
    kernels/gemm_local.cl: GPUs), or "register" (on a CPU the packed float8 kernel for large
    float32 GEMMs, the portable register-blocked one otherwise). `FUNCONV_OPENCL_GEMM` ("auto",
    the default: by device type; "local"; "register") overrides it, so that CI tests the GPU
    kernel on PoCL; read when a function is compiled."""
    want = os.environ.get("FUNCONV_OPENCL_GEMM", "auto").strip().lower() or "auto"
    if want not in GEMM_CHOICES:
        raise OpenCLUnsupported(f"FUNCONV_OPENCL_GEMM={want!r} is not one of {', '.join(GEMM_CHOICES)}")
    if want == "auto":
        return "register" if getattr(device, "is_cpu", False) else "local"
    return want


def _cpu_gemm_ok(em: Emitter, dtype, sizes, B, M, N, K) -> bool:
    """Does the packed CPU GEMM apply (float32, a CPU device, not a small GEMM, every index
    fits an int)?"""
    big = max(list(sizes) + [B * (M + _MR) * (N + _NR), B * (M + _NR) * K, B * (N + _NR) * K])
    return (np.dtype(dtype) == np.float32 and big < 2**31 - 1 and B * M * N * K >= _SMALL_GEMM
            and getattr(em.device, "is_cpu", False) and gemm_choice(em.device) == "register")


def gemm(em: Emitter, c_buf, c_addr: str, a: View, a_str, b: View, b_str, B, M, N, K, dtype,
         c_store=None, bp=None, a_k2=None):
    """Record the GEMM kernel: C_AT(b, m, n) = sum_k a(b, m, k) * b(b, k, n), with a's and b's
    element strides (batch, row, col) given and C's address expression `c_addr`.

    float32 on a CPU device: the packed-panel kernel (`gemm_cpu`), when `c_store` gives C's
    address as (P, sNP, sB, sM) (see kernels/gemm_cpu.cl); otherwise the portable
    register-blocked kernel (kernels/gemm.cl)."""
    t = ctype(dtype)
    if dtype.kind == "b":
        raise OpenCLUnsupported("dot_general of bool arrays is not supported on the OpenCL backend")
    if c_store is not None and _cpu_gemm_ok(em, dtype, (a.buf.size, b.buf.size, c_buf.size), B, M, N, K):
        return gemm_cpu(em, c_buf, c_store, a, a_str, b, b_str, B, M, N, K, bp, a_k2)
    if a_k2 is not None:
        raise AssertionError("a two-level k walk of A needs the CPU GEMM")
    mac = (f"part[i][j] += fc_cmul_{t}(av[i], bv[j])" if dtype.kind == "c"
           else "part[i][j] += av[i] * bv[j]")
    a_addr = f"{a.offset} + (b)*{a_str[0]} + (m)*{a_str[1]} + (k)*{a_str[2]}"
    b_addr = f"{b.offset} + (b)*{b_str[0]} + (k)*{b_str[1]} + (n)*{b_str[2]}"
    if gemm_choice(em.device) == "local":
        mt, nt = -(-M // _TS), -(-N // _TS)
        src = fill(template("gemm_local"), T=t, B=B, M=M, N=N, K=K, TS=_TS, TK=_TK, KB=_KB, MT=mt, NT=nt,
                   MAC=mac, A_ADDR=a_addr, B_ADDR=b_addr, C_ADDR=c_addr)
        # one work-group of LOCAL (64) work-items per tile; never bundled (it has barriers)
        em.kernel(src, B * mt * nt * LOCAL, [c_buf, a.buf, b.buf], "gemm_local")
        return
    mt, nt = -(-M // _TM), -(-N // _TN)
    src = fill(template("gemm"), T=t, B=B, M=M, N=N, K=K, TM=_TM, TN=_TN, KB=_KB, MT=mt, NT=nt,
               NWI=B * mt * nt, MAC=mac, A_ADDR=a_addr, B_ADDR=b_addr, C_ADDR=c_addr)
    em.kernel(src, B * mt * nt, [c_buf, a.buf, b.buf], "gemm",
              params=[f"__global {t}* c", f"__global const {t}* a", f"__global const {t}* bm"])


# GEMMs of fewer multiply-adds take the plain kernel (it may join the bundle): three
# launches (two packs and the GEMM) cost more than they save there
_SMALL_GEMM = 1 << 18
# the CPU GEMM's register tile: MR rows x NR columns (NR/8 float8 accumulators per row)
_MR, _NR = 6, 16


def _gemm_cpu_source() -> str:
    nv = _NR // 8
    decl = " ".join(f"float8 c{i}_{j} = (float8)(0.0f);" for i in range(_MR) for j in range(nv))
    loadb = " ".join(f"const float8 b{j} = pb[{j}];" for j in range(nv))
    body = "\n        ".join(
        f"{{ const float8 a = (float8)(pa[{i}]); "
        + " ".join(f"c{i}_{j} += a * b{j};" for j in range(nv)) + " }" for i in range(_MR))
    fast = []
    for i in range(_MR):
        fast.append(f"if (m0 + {i} < M) {{ __global float* cr = cb + (m0 + {i}) * sM; "
                    + " ".join(f"vstore8(c{i}_{j}, {j}, cr);" for j in range(nv))
                    + " }")
    # the ragged edge: through a private tile, in a loop (short code: it compiles faster)
    slow = ["float8 tile[" + str(_MR * nv) + "];"]
    slow += [f"tile[{i * nv + j}] = c{i}_{j};" for i in range(_MR) for j in range(nv)]
    slow.append("const float* tf = (const float*)tile;")
    slow.append(f"for (int i = 0; i < {_MR} && m0 + i < M; ++i) {{ const int rb = b * sB + (m0 + i) * sM; "
                f"for (int j = 0; j < {_NR} && n0 + j < N; ++j) "
                f"c[((n0 + j) / P) * sNP + rb + (n0 + j) % P] = tf[i * {_NR} + j]; }}")
    return fill(template("gemm_cpu"), MR=_MR, NR=_NR, NV=nv, DECL=decl, LOADB=loadb, BODY=body,
                STORE_FAST="\n        ".join(fast), STORE_SLOW="\n        ".join(slow))


def _pack(em: Emitter, x: View, xs, B, R, K, rows, k2=None) -> View:
    """x(b, r, k) (element strides `xs`: batch, row, k) packed as [B][ceil(R/rows)][K][rows]
    (rows past R zero): the GEMM's A (rows = _MR, r = m) or B (rows = _NR, r = n) panels.
    k2 = (K2, sk1, sk2): k walks x in two levels instead (k = k1 * K2 + k2; xs[2] unused)."""
    rt = -(-R // rows)
    out = em.new((B * rt * K * rows,), np.dtype("float32"))
    src = fill(template("pack"), ROWS=rows)
    em.kernel(src, B * rt * K, [out.buf, x.buf], f"pack{rows}",
              scalars=[B, R, K, rt, x.offset, xs[0], xs[1]] + (list(k2) if k2 else [K, 0, xs[2]]))
    return out


def gemm_cpu(em: Emitter, c_buf, c_store, a: View, a_str, b: View, b_str, B, M, N, K, bp=None,
             a_k2=None):
    """The packed CPU GEMM; `bp`: B already packed in _NR-column panels (else packed here);
    `a_k2`: A's k walked in two levels (see _pack)."""
    ap = _pack(em, a, a_str, B, M, K, _MR, a_k2)
    if bp is None:
        bp = _pack(em, b, (b_str[0], b_str[2], b_str[1]), B, N, K, _NR)
    mt, nt = -(-M // _MR), -(-N // _NR)
    src = _gemm_cpu_source()
    src = src.replace("$BATCH", "B_")  # the batch count is an argument too
    src = src.replace("const int M, const int N,", "const int B_, const int M, const int N,")
    P, sNP, sB, sM = c_store
    em.kernel(src, B * mt * nt, [c_buf, ap.buf, bp.buf], "gemm",
              scalars=[B, M, N, K, mt, nt, P, sNP, sB, sM])


def _dot(em, n):
    x, y = n.args
    (xc, yc), (xb, yb) = n.params["dimension_numbers"]
    xf = [i for i in range(len(x.shape)) if i not in xc and i not in xb]
    yf = [i for i in range(len(y.shape)) if i not in yc and i not in yb]
    out = em.new(n.shape, n.dtype)
    if out.size == 0:
        return out
    xv, yv = em.view(x), em.view(y)
    ga = _group(xv, [xb, xf, xc])
    if ga is None:
        xv = em.permuted(xv, tuple(xb) + tuple(xf) + tuple(xc))
        k = len(xb)
        ga = _group(xv, [range(k), range(k, k + len(xf)), range(k + len(xf), len(x.shape))])
    gb = _group(yv, [yb, yc, yf])
    if gb is None:
        yv = em.permuted(yv, tuple(yb) + tuple(yc) + tuple(yf))
        k = len(yb)
        gb = _group(yv, [range(k), range(k, k + len(yc)), range(k + len(yc), len(y.shape))])
    (B, M, K), ast = ga
    (_, _, N), bst = gb
    if K == 0:
        em.copy_into(out, Lit(0, n.dtype, n.shape))
        return out
    gemm(em, out.buf, f"((b)*{M * N} + (m)*{N} + (n))", xv, ast, yv, bst, B, M, N, K, n.dtype,
         c_store=(N, 0, M * N, N))
    return out


# --- convolution: im2col + GEMM -----------------------------------------------------------------

def _im2col_rows(em, col, xv, G, Cg, N, K, NP, isp, ksp, osp, strides, padding, ldil, rdil, t):
    """col[g, k, j] (contiguous (G, K, N * P)): one work-item per run of output positions (the
    trailing output dims, as many as make a run of >= _IM2COL_RUN, looped inside): the index
    arithmetic (divisions) is done once per run, and the run is written contiguously."""
    nd = len(ksp)
    r = 1
    while r < nd and math.prod(osp[nd - r:]) < _IM2COL_RUN:
        r += 1
    run = math.prod(osp[nd - r:])
    dec, cs = decompose("gid", (G, Cg) + tuple(ksp) + (N,) + tuple(osp[:nd - r]), "c")
    g_, c_, taps, n_ = cs[0], cs[1], cs[2:2 + nd], cs[2 + nd]
    outs = list(cs[3 + nd:]) + [f"o{i}" for i in range(nd - r, nd)]
    lines = list(dec) + [f"__global {t}* dst = out + gid * {run};"]
    flat = address(0, [f"o{i}" for i in range(nd - r, nd)], c_strides(osp[nd - r:]))
    conds, coords = [], []
    for i in range(nd):
        span = (isp[i] - 1) * ldil[i] + 1
        if i >= nd - r:
            lines.append(f"for (int o{i} = 0; o{i} < {osp[i]}; ++o{i}) {{")
        lines.append(f"const int q{i} = {outs[i]} * {strides[i]} + {taps[i]} * {rdil[i]} - ({padding[i][0]});")
        conds.append(f"q{i} >= 0 && q{i} < {span}" + (f" && q{i} % {ldil[i]} == 0" if ldil[i] > 1 else ""))
        coords.append(f"(q{i} / {ldil[i]})" if ldil[i] > 1 else f"q{i}")
    xaddr = address(xv.offset, [n_, f"({g_} * {Cg} + {c_})"] + coords, xv.strides)
    lines.append(f"dst[{flat}] = ({' && '.join(conds)}) ? in[{xaddr}] : ({t})(0);")
    lines.append("}" * r)
    em.index_kernel([f"__global {t}* out", f"__global const {t}* in"], [col.buf, xv.buf], G * K * NP // run,
                    lines, em.index_type(xv, col), "im2col")


_IM2COL_RUN = 16


# grouped convolutions (depthwise, small groups) with at most this many multiply-adds per
# output are computed directly: im2col would copy the input K times for a batch of GEMMs of
# a few rows each. (Measured on PoCL: a depthwise 3x3 training step as fast as im2col + GEMM,
# without the K-fold copy; for an ungrouped conv with small K, such as LeNet's first layer,
# the direct kernel measured slower than im2col + GEMM, so those keep the GEMM.)
_DIRECT_K = 32


def _conv_direct(em, out, xv, wv, G, Cg, Og, isp, ksp, osp, strides, padding, ldil, rdil, t):
    """One work-item per output element, summing its Cg x taps products in order."""
    nd = len(ksp)
    dec, cs = decompose("gid", out.shape, "c")
    n_, o_, oc = cs[0], cs[1], cs[2:]
    lines = dec + [f"const int g = {o_} / {Og};", f"{t} acc = ({t})(0);",
                   f"for (int c = 0; c < {Cg}; ++c) {{"]
    for i in range(nd):
        lines.append(f"for (int t{i} = 0; t{i} < {ksp[i]}; ++t{i}) {{")
    conds, coords = [], []
    for i in range(nd):
        span = (isp[i] - 1) * ldil[i] + 1
        lines.append(f"const int q{i} = {oc[i]} * {strides[i]} + t{i} * {rdil[i]} - ({padding[i][0]});")
        conds.append(f"q{i} >= 0 && q{i} < {span}" + (f" && q{i} % {ldil[i]} == 0" if ldil[i] > 1 else ""))
        coords.append(f"(q{i} / {ldil[i]})" if ldil[i] > 1 else f"q{i}")
    xa = address(xv.offset, [n_, f"(g * {Cg} + c)"] + coords, xv.strides)
    wa = address(wv.offset, [o_, "c"] + [f"t{i}" for i in range(nd)], wv.strides)
    mac = f"acc = acc + fc_cmul_{t}(x[{xa}], w[{wa}]);" if out.dtype.kind == "c" else f"acc += x[{xa}] * w[{wa}];"
    lines.append(f"if ({' && '.join(conds)}) {mac}")
    lines.append("}" * (nd + 1))
    lines.append("out[gid] = acc;")
    em.index_kernel([f"__global {t}* out", f"__global const {t}* x", f"__global const {t}* w"],
                    [out.buf, xv.buf, wv.buf], out.size, lines, em.index_type(xv, wv, out), "conv_direct")


def _conv(em, n):
    x, w = n.args
    p = n.params
    G = p["feature_group_count"]
    strides, padding = p["window_strides"], p["padding"]
    ldil, rdil = p["lhs_dilation"], p["rhs_dilation"]
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    isp, ksp, osp = x.shape[2:], w.shape[2:], n.shape[2:]
    nd = len(ksp)
    Og = O // G
    K = Cg * math.prod(ksp)
    P = math.prod(osp)
    out = em.new(n.shape, n.dtype)
    if out.size == 0:
        return out
    xv = em.view(x)
    t = ctype(n.dtype)
    if G > 1 and K <= _DIRECT_K:
        _conv_direct(em, out, xv, em.view(w), G, Cg, Og, isp, ksp, osp, strides, padding, ldil, rdil, t)
        return out
    # col[g, (c, taps...), (n, out positions...)]: the input patch of every output position
    # (written in im2col's own order: writing the CPU GEMM's packed panels directly measured
    # slower than im2col followed by the pack kernel)
    NP = N * P
    col = em.new((G, K, NP), n.dtype)
    _im2col_rows(em, col, xv, G, Cg, N, K, NP, isp, ksp, osp, strides, padding, ldil, rdil, t)
    # the kernel (O, Cg, k...) as (G, Og, K); the GEMM writes out[n, g*Og + m, position]
    wv = em.view(w)
    gw = _group(View(wv.buf, wv.offset, (G, Og) + tuple(w.shape[1:]),
                     (Og * wv.strides[0], wv.strides[0]) + tuple(wv.strides[1:])),
                [[0], [1], list(range(2, 3 + nd))])
    a_k2 = None
    if gw is None:
        # a weight operand that is a transposed view (the weight gradient's cotangent): the
        # CPU GEMM's pack reads k in two levels instead of copying it first
        kshape, (kst,) = collapse(w.shape[1:], wv.strides[1:])
        if len(kshape) == 2:
            if _cpu_gemm_ok(em, n.dtype, (wv.buf.size, out.size, G * K * N * P), G, Og, N * P, K):
                a_k2 = (kshape[1], kst[0], kst[1])
                gw = ([G, Og, K], [Og * wv.strides[0], wv.strides[0], 0])
    if gw is None:
        wv = em.contiguous(wv)
        gw = ([G, Og, K], [Og * K, K, 1])
    c_addr = f"(((n) / {P}) * {O * P} + ((b) * {Og} + (m)) * {P} + (n) % {P})"
    gemm(em, out.buf, c_addr, wv, gw[1], col, (K * N * P, N * P, 1), G, Og, N * P, K, n.dtype,
         c_store=(P, O * P, Og * P, P), a_k2=a_k2)
    return out


# --- pooling -------------------------------------------------------------------------------------

def _pool_ident(computation: str, dtype) -> str:
    dt = np.dtype(dtype)
    if computation == "sum":
        return f"(({ctype(dt)})(0))"
    return _init("max", dt)


# windows of at most this many taps, inside the input (no padding, no dilation), are
# unrolled: straight-line code with constant offsets, which PoCL vectorizes across
# work-items (LeNet's 2x2 max pooling and its gradient: 3.5 -> 1 ms)
_UNROLL_TAPS = 16


def _inside(padding, base_dilation) -> bool:
    """Does every window lie inside the input (no padding, no base dilation)?"""
    return all(lo == 0 and hi == 0 for lo, hi in padding) and all(d == 1 for d in base_dilation)


def _window_loop(x: View, window, strides, padding, base_dilation, oc, lead_c, body_valid,
                 body_pad=None):
    """C lines looping over the taps of the window at output coords `oc` (the trailing dims);
    `body_valid` runs with `xa` the address of the tapped element (and `tap` its number),
    `body_pad` on padding."""
    nd = len(window)
    lead = len(x.shape) - nd
    if _inside(padding, base_dilation) and math.prod(window) <= _UNROLL_TAPS:
        base = address(x.offset, lead_c + [f"{oc[i]} * {strides[i]}" for i in range(nd)], x.strides)
        lines = [f"const $IDX xa0 = {base};"]
        for tap, ts in enumerate(np.ndindex(*window)):
            off = sum(t * x.strides[lead + i] for i, t in enumerate(ts))
            lines.append(f"{{ const int tap = {tap}; const $IDX xa = xa0 + {off}; {body_valid} }}")
        return lines
    lines = []
    for i in range(nd):
        lines.append(f"for (int t{i} = 0; t{i} < {window[i]}; ++t{i}) {{")
    conds, coords = [], []
    for i in range(nd):
        bd = base_dilation[i]
        span = (x.shape[lead + i] - 1) * bd + 1
        lines.append(f"const int q{i} = {oc[i]} * {strides[i]} + t{i} - ({padding[i][0]});")
        conds.append(f"q{i} >= 0 && q{i} < {span}" + (f" && q{i} % {bd} == 0" if bd > 1 else ""))
        coords.append(f"(q{i} / {bd})" if bd > 1 else f"q{i}")
    tap = " + ".join(f"t{i} * {math.prod(window[i + 1:])}" for i in range(nd))
    lines.append(f"const int tap = {tap};")
    xa = address(x.offset, lead_c + coords, x.strides)
    lines.append(f"if ({' && '.join(conds)}) {{ const $IDX xa = {xa}; {body_valid} }}"
                 + (f" else {{ {body_pad} }}" if body_pad else ""))
    lines.append("}" * nd)
    return lines


def _reduce_window(em, n):
    p = n.params
    x = em.view(n.args[0])
    out = em.new(n.shape, n.dtype)
    if out.size == 0:
        return out
    nd = len(p["window"])
    comp = p["computation"]
    t = ctype(n.dtype)
    dec, cs = decompose("gid", n.shape, "c")
    lead_c, oc = cs[:len(n.shape) - nd], cs[len(n.shape) - nd:]
    if comp == "sum":
        body = "acc += in[xa];" if n.dtype.kind != "b" else "acc = acc | in[xa];"
    else:
        body = "{ const " + t + " v = in[xa]; " + _combine("max", n.dtype, "acc", "v") + " }"
    lines = dec + [f"{t} acc = {_pool_ident(comp, n.dtype)};"]
    lines += _window_loop(x, p["window"], p["strides"], p["padding"], p["base_dilation"], oc, lead_c, body)
    lines.append("out[gid] = acc;")
    em.index_kernel([f"__global {t}* out", f"__global const {t}* in"], [out.buf, x.buf], out.size, lines,
                    em.index_type(x, out), "reduce_window")
    return out


def _first_max_lines(x: View, window, strides, padding, oc, lead_c):
    """C lines leaving in `sel` the tap of the first maximum of the window (padding counts as
    the identity -inf; ties keep the earlier tap; NaN as the NumPy reference (ops/pool.py
    _first_max): a strict `>` running maximum, so a NaN tap is selected only when it is the
    first tap, and never replaces the running best)."""
    t = ctype(x.dtype)
    ident = _init("max", x.dtype)
    upd = "if (v > best) { sel = tap; best = v; }"
    nd = len(window)
    if _inside(padding, (1,) * nd):
        # every tap is in the input: start from the first (comparing it again changes nothing)
        first = address(x.offset, lead_c + [f"{oc[i]} * {strides[i]}" for i in range(nd)], x.strides)
        lines = [f"{t} best = in[{first}]; int sel = 0;"]
        valid = f"const {t} v = in[xa]; {upd}"
        return lines + _window_loop(x, window, strides, padding, (1,) * nd, oc, lead_c, valid)
    lines = [f"{t} best = {ident}; int sel = 0; int started = 0;"]
    valid = f"const {t} v = in[xa]; if (!started) {{ best = v; started = 1; }} else {{ {upd} }}"
    pad = f"const {t} v = {ident}; if (!started) {{ best = v; started = 1; }} else {{ {upd} }}"
    lines += _window_loop(x, window, strides, padding, (1,) * nd, oc, lead_c, valid, pad)
    return lines


def _select_and_gather(em, n):
    # out[window] = t at the first maximum of x in the window (0 where that is padding)
    p = n.params
    tv, x = em.view(n.args[0]), em.view(n.args[1])
    out = em.new(n.shape, n.dtype)
    if out.size == 0:
        return out
    nd = len(p["window"])
    dec, cs = decompose("gid", n.shape, "c")
    lead_c, oc = cs[:len(n.shape) - nd], cs[len(n.shape) - nd:]
    lines = dec + _first_max_lines(x, p["window"], p["strides"], p["padding"], oc, lead_c)
    # the selected tap's position, and t there
    tt = ctype(n.dtype)
    lead = len(x.shape) - nd
    conds, coords = [], []
    for i in range(nd):
        div = math.prod(p["window"][i + 1:])
        lines.append(f"const int s{i} = {oc[i]} * {p['strides'][i]} + (sel / {div}) % {p['window'][i]} "
                     f"- ({p['padding'][i][0]});")
        conds.append(f"s{i} >= 0 && s{i} < {x.shape[lead + i]}")
        coords.append(f"s{i}")
    ta = address(tv.offset, lead_c + coords, tv.strides)
    lines.append(f"out[gid] = ({' && '.join(conds)}) ? tin[{ta}] : ({tt})(0);")
    em.index_kernel([f"__global {tt}* out", f"__global const {ctype(x.dtype)}* in",
                     f"__global const {tt}* tin"], [out.buf, x.buf, tv.buf], out.size, lines,
                    em.index_type(x, out, tv), "select_gather")
    return out


def _select_and_scatter_add(em, n):
    # pass 1: the first-maximum tap of every window; pass 2: each element of x adds the
    # cotangents of the windows that selected it (no atomics)
    p = n.params
    ct, x = em.view(n.args[0]), em.view(n.args[1])
    window, strides, padding = p["window"], p["strides"], p["padding"]
    nd = len(window)
    out = em.new(n.shape, n.dtype)
    if out.size == 0:
        return out
    pooled = ct.shape
    lead = len(n.shape) - nd
    if (all(lo == 0 and hi == 0 for lo, hi in padding) and tuple(strides) == tuple(window)
            and all(pooled[lead + i] * window[i] == n.shape[lead + i] for i in range(nd))):
        # windows tile x exactly (2x2 pooling of an even map): every element is in one window,
        # so one work-item per window finds its first maximum and writes the whole window
        t = ctype(n.dtype)
        dec, cs = decompose("gid", pooled, "c")
        lead_c, oc = cs[:lead], cs[lead:]
        lines = dec + _first_max_lines(x, window, strides, padding, oc, lead_c)
        lines.append(f"const {t} g = ct[{address(ct.offset, cs, ct.strides)}];")
        for i in range(nd):
            lines.append(f"for (int t{i} = 0; t{i} < {window[i]}; ++t{i}) {{")
        tap = " + ".join(f"t{i} * {math.prod(window[i + 1:])}" for i in range(nd))
        oa = address(0, lead_c + [f"({oc[i]} * {window[i]} + t{i})" for i in range(nd)], out.strides)
        lines.append(f"out[{oa}] = ({tap}) == sel ? g : ({t})(0);")
        lines.append("}" * nd)
        em.index_kernel([f"__global {t}* out", f"__global const {ctype(x.dtype)}* in",
                         f"__global const {t}* ct"], [out.buf, x.buf, ct.buf], math.prod(pooled), lines,
                        em.index_type(x, out, ct), "select_scatter_tiled")
        return out
    sel = em.new(pooled, np.dtype("int32"))
    if sel.size:
        dec, cs = decompose("gid", pooled, "c")
        lead_c, oc = cs[:len(pooled) - nd], cs[len(pooled) - nd:]
        lines = dec + _first_max_lines(x, window, strides, padding, oc, lead_c) + ["out[gid] = sel;"]
        em.index_kernel(["__global int* out", f"__global const {ctype(x.dtype)}* in"], [sel.buf, x.buf],
                        sel.size, lines, em.index_type(x, sel), "select_argmax")
    t = ctype(n.dtype)
    lead = len(n.shape) - nd
    dec, cs = decompose("gid", n.shape, "c")
    lead_c, ic = cs[:lead], cs[lead:]
    lines = dec + [f"{t} acc = ({t})(0);"]
    for i in range(nd):
        # the windows o holding element e (in padded coordinates): o*s <= e <= o*s + k - 1
        k_, s_ = window[i], strides[i]
        lines.append(f"const int e{i} = {ic[i]} + {padding[i][0]};")
        lines.append(f"const int olo{i} = e{i} - {k_ - 1} <= 0 ? 0 : (e{i} - {k_ - 1} + {s_ - 1}) / {s_};")
        lines.append(f"const int ohi{i} = min({pooled[lead + i] - 1}, e{i} / {s_});")
    for i in range(nd):
        lines.append(f"for (int o{i} = olo{i}; o{i} <= ohi{i}; ++o{i}) {{")
    tap = " + ".join(f"(e{i} - o{i} * {strides[i]}) * {math.prod(window[i + 1:])}" for i in range(nd))
    sa = address(0, lead_c + [f"o{i}" for i in range(nd)], sel.strides)
    ca = address(ct.offset, lead_c + [f"o{i}" for i in range(nd)], ct.strides)
    lines.append(f"if (sel[{sa}] == {tap}) acc += ct[{ca}];")
    lines.append("}" * nd)
    lines.append("out[gid] = acc;")
    em.index_kernel([f"__global {t}* out", "__global const int* sel", f"__global const {t}* ct"],
                    [out.buf, sel.buf, ct.buf], out.size, lines, em.index_type(out, ct), "select_scatter")
    return out


# --- gather / scatter_add -------------------------------------------------------------------------

def _index_cols(idx: View, k: int, row: str, xshape) -> list[str]:
    """C expressions of the k clamped indices of row `row` of idx (contiguous, (rows, k))."""
    return [f"clamp(({'long' if idx.dtype.itemsize == 8 else 'int'})ix[{row} * {k} + {j}], "
            f"({'long' if idx.dtype.itemsize == 8 else 'int'})0, "
            f"({'long' if idx.dtype.itemsize == 8 else 'int'}){xshape[j] - 1})" for j in range(k)]


def _gather(em, n):
    x, idx = n.args
    k = idx.shape[-1]
    out = em.new(n.shape, n.dtype)
    if out.size == 0:
        return out
    if any(x.shape[j] == 0 for j in range(k)):
        em.copy_into(out, Lit(0, n.dtype, n.shape))
        return out
    xv, iv = em.view(x), em.contiguous(idx)
    tail = x.shape[k:]
    T = math.prod(tail)
    t = ctype(n.dtype)
    lines = [f"const $IDX r = gid / {T};", f"const $IDX tt = gid % {T};"]
    dec, tc = decompose("tt", tail, "c") if tail else ([], [])
    lines += dec
    cols = _index_cols(iv, k, "r", x.shape)
    xa = address(xv.offset, cols + tc, xv.strides)
    lines.append(f"out[gid] = in[{xa}];")
    em.index_kernel([f"__global {t}* out", f"__global const {t}* in", f"__global const {ctype(idx.dtype)}* ix"],
                    [out.buf, xv.buf, iv.buf], out.size, lines, em.index_type(xv, out, iv), "gather")
    return out


def _scatter_add(em, n):
    x, idx, upd = n.args
    k = idx.shape[-1]
    out = em.new(n.shape, n.dtype)
    em.copy_into(out, em.val(x))
    R = math.prod(idx.shape[:-1])
    tail = x.shape[k:]
    T = math.prod(tail)
    if R == 0 or T == 0 or any(x.shape[j] == 0 for j in range(k)):
        return out
    iv, uv = em.contiguous(idx), em.contiguous(upd)
    t = ctype(n.dtype)
    # one work-item per element of the tail: it adds the rows in order (deterministic, no atomics)
    cols = _index_cols(iv, k, "r", x.shape)
    pos = address(0, cols, out.strides[:k])
    add = "out[o] = out[o] | u;" if n.dtype.kind == "b" else "out[o] += u;"
    lines = [f"for ($IDX r = 0; r < {R}; ++r) {{",
             f"    const $IDX o = {pos} + gid;",
             f"    const {t} u = upd[r * {T} + gid]; {add}", "}"]
    em.index_kernel([f"__global {t}* out", f"__global const {ctype(idx.dtype)}* ix", f"__global const {t}* upd"],
                    [out.buf, iv.buf, uv.buf], T, lines, em.index_type(out, iv, uv), "scatter_add")
    return out


def _iota(em, n):
    p = n.params
    out = em.new(n.shape, n.dtype)
    inner = math.prod(n.shape[p["dimension"] + 1:])
    t = ctype(n.dtype)
    em.index_kernel([f"__global {t}* out"], [out.buf], out.size,
                    [f"out[gid] = ({t})((gid / {inner}) % {n.shape[p['dimension']]});"],
                    em.index_type(out), "iota")
    return out


def _less(t_kind: str) -> str:
    if t_kind == "f":  # NaN sorts last, as NumPy
        return "((a < b) || (FC_ISNAN(b) && !FC_ISNAN(a)))"
    return "(a < b)"


def _rank_lines(kind: str, T: str, n_axis: int, stride: int) -> list[str]:
    """Lines computing `rank`: the position of element `i` (of its line at `base`) in a stable
    sort of the line: the number of elements before it in sorted order."""
    eq = "((a == b) || (FC_ISNAN(a) && FC_ISNAN(b)))" if kind == "f" else "(a == b)"
    return [f"const {T} b = in[base + i * {stride}];", "int rank = 0;",
            f"for (int j = 0; j < {n_axis}; ++j) {{",
            f"    const {T} a = in[base + j * {stride}];",
            f"    rank += {_less(kind)} || ({eq} && j < i);", "}"]


def _argsort(em, n):
    axis = n.params["axis"]
    x = em.contiguous(n.args[0])
    out = em.new(n.shape, np.dtype("int32"))
    if out.size == 0:
        return out
    L = x.shape[axis]
    inner = math.prod(x.shape[axis + 1:])
    t = ctype(x.dtype)
    lines = [f"const int i = (gid / {inner}) % {L};",
             f"const $IDX base = (gid / {inner * L}) * {inner * L} + gid % {inner};"]
    lines += _rank_lines(x.dtype.kind if x.dtype.kind != "b" else "i", t, L, inner)
    lines.append(f"out[base + rank * {inner}] = i;")
    em.index_kernel(["__global int* out", f"__global const {t}* in"], [out.buf, x.buf], out.size, lines,
                    em.index_type(x, out), "argsort")
    return out


# --- random bits ---------------------------------------------------------------------------------

def _random_bits(em, n):
    em.need("threefry")
    key = em.contiguous(n.args[0])
    out = em.new(n.shape, np.dtype("int32"))
    size = out.size
    tag = n.params["tag"]
    lines = [f"uint y0, y1; fc_block(key, (ulong)gid, {tag}u, &y0, &y1);",
             "out[2 * gid] = (int)y0;", f"if (2 * gid + 1 < {size}) out[2 * gid + 1] = (int)y1;"]
    em.index_kernel(["__global int* out", "__global const int* key"], [out.buf, key.buf], -(-size // 2),
                    lines, "long", "random_bits")
    return out


def _random_uniform(em, n):
    em.need("threefry")
    key = em.contiguous(n.args[0])
    out = em.new(n.shape, n.dtype)
    size = out.size
    t = ctype(n.dtype)
    if n.dtype == np.float32:
        # word j of the sampling stream: its top 24 bits scaled by 2**-24
        lines = ["uint y0, y1; fc_block(key, (ulong)gid, 0u, &y0, &y1);",
                 "out[2 * gid] = (float)(y0 >> 8) * 0x1p-24f;",
                 f"if (2 * gid + 1 < {size}) out[2 * gid + 1] = (float)(y1 >> 8) * 0x1p-24f;"]
        work = -(-size // 2)
    else:
        # block j: the top 53 bits of hi << 32 | lo, scaled by 2**-53
        lines = ["uint y0, y1; fc_block(key, (ulong)gid, 0u, &y0, &y1);",
                 f"out[gid] = ({t})(double)((((ulong)y0 << 32) | (ulong)y1) >> 11) * 0x1p-53;"]
        work = size
    em.index_kernel([f"__global {t}* out", "__global const int* key"], [out.buf, key.buf], work,
                    lines, "long", "random_uniform")
    return out


def _random_fold_in(em, n):
    em.need("threefry")
    key = em.contiguous(n.args[0])
    data = em.contiguous(n.args[1])
    out = em.new((2,), np.dtype("int32"))
    lines = ["uint y0 = 2u << 30, y1 = (uint)(data[0] & 0xFFFFFFFF);",
             "fc_threefry2x32((uint)key[0], (uint)key[1], &y0, &y1);",
             "out[0] = (int)y0; out[1] = (int)y1;"]
    em.index_kernel(["__global int* out", "__global const int* key",
                     f"__global const {ctype(data.dtype)}* data"], [out.buf, key.buf, data.buf], 1,
                    lines, "int", "fold_in")
    return out


def _random_permutation(em, n):
    em.need("threefry")
    key = em.contiguous(n.args[0])
    size = n.params["n"]
    out = em.new((size,), np.dtype("int32"))
    if size == 0:
        return out
    keys = em.new((size,), np.dtype("uint64"))
    em.index_kernel(["__global ulong* out", "__global const int* key"], [keys.buf, key.buf], size,
                    ["uint y0, y1; fc_block(key, (ulong)gid, 0u, &y0, &y1);",
                     "out[gid] = ((ulong)y0 << 32) | (ulong)y1;"], "int", "perm_keys")
    lines = ["const int i = gid;", "const int base = 0;"] + _rank_lines("u", "ulong", size, 1)
    lines.append("out[rank] = i;")
    em.index_kernel(["__global int* out", "__global const ulong* in"], [out.buf, keys.buf], size, lines,
                    "int", "perm_rank")
    return out


# reductions that compute an elementwise producer inside their loop (codegen.fusion_plan)
FUSED_REDUCTIONS = frozenset({red.reduce_sum_p, red.reduce_max_p, red.reduce_min_p, red.reduce_prod_p})

# --- the table -----------------------------------------------------------------------------------

LOWERINGS: dict = {
    sh.broadcast_to_p: _broadcast_to, sh.reshape_p: _reshape, sh.transpose_p: _transpose,
    sh.slice_p: _slice, sh.flip_p: _flip, sh.pad_p: _pad, sh.concatenate_p: _concatenate,
    special.stop_gradient_p: _identity, special.custom_vjp_call_p: _identity,
    red.reduce_sum_p: _reducer("sum"), red.reduce_max_p: _reducer("max"),
    red.reduce_min_p: _reducer("min"), red.reduce_prod_p: _reducer("prod"),
    red.argmax_p: _argreduce("max"), red.argmin_p: _argreduce("min"), red.cumsum_p: _cumsum,
    linalg.dot_general_p: _dot, conv_general_p: _conv,
    pool.reduce_window_p: _reduce_window, pool.select_and_scatter_add_p: _select_and_scatter_add,
    pool.select_and_gather_p: _select_and_gather,
    indexing.gather_p: _gather, indexing.scatter_add_p: _scatter_add, indexing.iota_p: _iota,
    indexing.argsort_p: _argsort,
    rnd.random_bits_p: _random_bits, rnd.random_uniform_p: _random_uniform,
    rnd.random_fold_in_p: _random_fold_in, rnd.random_permutation_p: _random_permutation,
}

# primitives that have no OpenCL kernel yet, by name: a graph holding one fails to compile
# with this message (the FFT primitives get funconv's own OpenCL FFT in a later issue)
NOT_YET = "the OpenCL backend has no FFT yet (a convolution picks im2col on it by itself)"


def _not_implemented(reason: str):
    def lower(em, n):
        raise OpenCLUnsupported(f"{n.prim.name} ({n.type.short()}, at {n.source or '?'}): {reason}; "
                                "use backend='numpy' for this function")

    return lower


def lowering(prim):
    """The lowering function of `prim`, or None when the backend has none."""
    low = LOWERINGS.get(prim)
    if low is not None:
        return low
    if prim.c_expr is not None:
        return elementwise
    if _not_yet(prim.name):
        return _not_implemented(NOT_YET if prim.name == "fft" else
                                "the OpenCL backend has no dense decompositions (fc.linalg) "
                                "or searchsorted yet")
    return None


def _not_yet(name: str) -> bool:
    from funconv.backends.opencl import LACKS

    return name in LACKS


def missing() -> list[str]:
    """Names of the registered primitives without an OpenCL lowering (or lowered to an error)."""
    out = []
    for name, prim in sorted(REGISTRY.items()):
        low = lowering(prim)
        if low is None or getattr(low, "__name__", "") == "lower" and _not_yet(name):
            out.append(name)
    return out
