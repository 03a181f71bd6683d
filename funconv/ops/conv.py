"""Convolution: the general dilated convolution primitive `conv_general` and the
user-facing wrappers `conv` (PyTorch's options, JAX's `dimension_numbers`
layouts), `conv_transpose` (PyTorch's) and `conv_general_dilated` (JAX's).

One primitive covers every convolution of a training step (in the spirit of
`lax.conv_general_dilated`):

    out[n, o, p] = sum_{c, k} xd[n, g(o)*Cg + c, p*stride + k*rhs_dilation] * w[o, c, k]

where `xd` is the input dilated by `lhs_dilation` (zeros inserted between
samples: the transposed convolution) and padded by `padding` (one `(lo, hi)`
pair per spatial dim; negative pads crop), `g(o) = o // (O / groups)` and
`Cg = C / groups`. Layouts: input N C spatial..., kernel O (C/groups)
spatial..., output N O spatial... (cross-correlation, as in every deep-learning
framework; 1-d, 2-d, 3-d, any number of spatial dims really).

Its VJPs are again `conv_general` applications (so second derivatives work
and a later rewrite pass sees every convolution of a training step, forward
and backward, as one kind of node):
- input cotangent: the cotangent convolved with the kernel flipped in space
  and with in/out channels swapped per group; the forward stride becomes the
  input dilation and the forward input dilation becomes the stride;
- weight cotangent: a correlation of the input with the cotangent, batch and
  channel axes exchanged (groups folded into the channel axis so that it is
  again a grouped convolution); the forward stride becomes the kernel
  dilation and the kernel dilation becomes the stride.

`algorithm` param: "auto" (the default), "direct", "im2col", "fft", "separable", "helix",
"winograd" or "winograd4" (`ALGORITHMS`).
It never changes the value, only how it is computed. funconv/passes/conv.py
chooses for every "auto" node under `jit` and records the choice on the node
(or rewrites it, e.g. a 1x1 convolution as `dot_general`), so the printed
graph shows it; a backend's kernel reads it. The VJP's two convolutions inherit
a forced choice that applies to every convolution (`EVERYWHERE`: "direct",
"im2col", "fft", "tiled_fft"), so that `algorithm="im2col"`, the escape hatch
from FFT convolution's global rounding error, keeps the gradients exact-per-output
too, and "direct" checks a whole training step; the others ("separable", "helix",
"winograd", ...) depend on the kernel's shape or values, which the derivative
convolutions do not share (kernels as large as the output, input dilation), so
those leave the derivative "auto".

The impl is the reference definition (what the interpreter, the oracle,
evaluates): the direct sum over kernel taps, vectorized over batch, channels
and output positions. The fast im2col/GEMM engine is the NumPy backend's
kernel (backends/numpy/kernels/conv.py), which eager mode and the generated
code call. Imports ops._core, ops._window, ops.shape, primitive, types and
errors; must not import funconv.backends, funconv.passes or funconv.jit.
"""

from __future__ import annotations

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops._core import asarray, operand, per_dim, to_dtype
from funconv.ops._window import dilate as _dilate
from funconv.ops._window import dilate_and_pad, padding_pairs, same_padding, tap_slices
from funconv.primitive import Primitive
from funconv.tracing import labelled
from funconv.types import DEFAULT_FLOAT, ArrayType, is_inexact, result_type

# The algorithms a conv_general node may name. "auto": passes/conv.py chooses (a kernel
# that meets it unchosen, in eager mode, picks its own fast path); "direct": the reference
# definition below; "im2col": column matrix + GEMM (the NumPy kernel's layouts); "fft": a
# graph rewrite under jit into pad/rfft/complex dot_general/irfft/crop; "tiled_fft": the same
# by overlap-save tiles (passes/tiled_fft.py). A new
# algorithm adds its name here and its rule in passes/conv.py.
ALGORITHMS = ("auto", "direct", "im2col", "fft", "tiled_fft", "separable", "helix", "winograd",
              "winograd4")
# the forced choices that apply to any conv_general node: the VJP's convolutions inherit them
EVERYWHERE = ("direct", "im2col", "fft", "tiled_fft")

# --- the primitive: shape rule ----------------------------------------------------------


def _params_str(window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count,
                algorithm) -> str:
    return (f"window_strides={window_strides}, padding={padding}, lhs_dilation={lhs_dilation}, "
            f"rhs_dilation={rhs_dilation}, feature_group_count={feature_group_count}"
            + ("" if algorithm == "auto" else f", algorithm={algorithm!r}"))


def _conv_rule(x: ArrayType, w: ArrayType, *, window_strides, padding, lhs_dilation,
               rhs_dilation, feature_group_count, algorithm="auto") -> ArrayType:
    ps = _params_str(window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count,
                     algorithm)
    where = f"conv_general({x.short()}, {w.short()}; {ps})"
    if algorithm not in ALGORITHMS:
        raise ArgumentError(f"{where}: unknown algorithm {algorithm!r}; use one of {ALGORITHMS}")
    if x.dtype != w.dtype:
        raise DTypeError(f"{where}: operand dtypes differ; convert one with .astype() first")
    if not is_inexact(x.dtype):
        raise DTypeError(f"{where}: convolution needs float or complex operands; "
                         "convert with .astype(fc.float32)")
    nd = w.ndim - 2
    if nd < 1 or x.ndim != w.ndim:
        raise ShapeError(f"{where}: input (N, C, spatial...) and kernel (O, C/groups, "
                         "spatial...) need the same rank, at least 3")
    for name, v in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                    ("rhs_dilation", rhs_dilation), ("padding", padding)):
        if len(v) != nd:
            raise ShapeError(f"{where}: {name} needs one entry per spatial dim ({nd})")
    if any(s < 1 for s in window_strides + lhs_dilation + rhs_dilation):
        raise ShapeError(f"{where}: strides and dilations must be positive")
    g = feature_group_count
    if g < 1 or w.shape[0] % g:
        raise ShapeError(f"{where}: feature_group_count={g} must divide the kernel's "
                         f"{w.shape[0]} output channels")
    if x.shape[1] != g * w.shape[1]:
        raise ShapeError(f"{where}: the input has {x.shape[1]} channels but the kernel expects "
                         f"feature_group_count * kernel.shape[1] = {g} * {w.shape[1]} = "
                         f"{g * w.shape[1]}")
    out = []
    for i in range(nd):
        padded = _dilate(x.shape[2 + i], lhs_dilation[i]) + padding[i][0] + padding[i][1]
        window = _dilate(w.shape[2 + i], rhs_dilation[i])
        if window < 1 or padded < window:
            raise ShapeError(f"{where}: along spatial dim {i} the (dilated) kernel spans "
                             f"{window} but the (dilated, padded) input has only {padded}; "
                             "pad more, or use a smaller kernel or dilation")
        out.append((padded - window) // window_strides[i] + 1)
    return ArrayType((x.shape[0], w.shape[0]) + tuple(out), x.dtype)


# --- the primitive: the reference definition ----------------------------------------------


def _conv_impl(x, w, *, window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count,
               algorithm="auto"):
    """The definition: out[n, o, p] = sum over taps k and the group's channels c of
    xd[n, g(o)*Cg + c, p*stride + k*rhs_dilation] * w[o, c, k], one whole-array
    contraction per kernel tap (xd: x dilated by lhs_dilation and zero-padded).

    Every `algorithm` has this value; the reference ignores it.
    """
    N, G = x.shape[0], feature_group_count
    O, Cg = w.shape[:2]
    ksp = w.shape[2:]
    xd = dilate_and_pad(x, lhs_dilation, padding, 0)
    osp = tuple((xd.shape[2 + i] - _dilate(k, d)) // s + 1
                for i, (k, d, s) in enumerate(zip(ksp, rhs_dilation, window_strides)))
    xg = xd.reshape((N, G, Cg) + xd.shape[2:])
    wg = w.reshape((G, O // G, Cg) + ksp)
    out = np.zeros((N, G, O // G) + osp, np.result_type(x.dtype, w.dtype))
    for k, taps in tap_slices(ksp, rhs_dilation, window_strides, osp):
        # (N, G, Cg, out...) against (G, O/G, Cg): sum over the group's channels c
        out += np.einsum("ngc...,goc->ngo...", xg[(Ellipsis,) + taps], wg[(Ellipsis,) + k])
    return out.reshape((N, O) + osp)



# --- the primitive: VJP (both cotangents are conv_general again) --------------------------


def _transpose_kernel(w: Array, groups: int) -> Array:
    """Kernel (O, C/G, k...) -> (C, O/G, k...), flipped in space, channels swapped per group.

    This is the kernel of the adjoint convolution (the input gradient, and
    conv_transpose).
    """
    from funconv.ops.shape import flip_p, reshape_p, transpose_p

    O, Cg = w.shape[:2]
    ksp = w.shape[2:]
    nd = len(ksp)
    w = flip_p(w, axes=tuple(range(2, 2 + nd)))
    if groups == 1:
        return transpose_p(w, perm=(1, 0) + tuple(range(2, 2 + nd)))
    w = reshape_p(w, shape=(groups, O // groups, Cg) + ksp)
    w = transpose_p(w, perm=(0, 2, 1) + tuple(range(3, 3 + nd)))
    return reshape_p(w, shape=(groups * Cg, O // groups) + ksp)


def _conv_vjp(ct, out, x, w, *, window_strides, padding, lhs_dilation, rhs_dilation,
              feature_group_count, algorithm="auto"):
    # (both cotangent convolutions inherit a choice that applies everywhere, else "auto":
    # see the module docstring)
    from funconv.ops.shape import reshape_p, transpose_p

    algorithm = algorithm if algorithm in EVERYWHERE else "auto"

    G = feature_group_count
    nd = w.ndim - 2
    sp = tuple(range(2, 2 + nd))
    N, Cg = x.shape[0], w.shape[1]
    in_dil = [_dilate(x.shape[2 + i], lhs_dilation[i]) for i in range(nd)]
    k_dil = [_dilate(w.shape[2 + i], rhs_dilation[i]) for i in range(nd)]
    out_dil = [_dilate(ct.shape[2 + i], window_strides[i]) for i in range(nd)]

    # input cotangent: "full" correlation of ct (dilated by the stride) with the
    # transposed kernel; the padding makes the result exactly x's size (it crops
    # the input positions a floor-rounded forward never read).
    lo_x = [k_dil[i] - 1 - padding[i][0] for i in range(nd)]
    pad_x = tuple((lo_x[i], in_dil[i] + k_dil[i] - 1 - out_dil[i] - lo_x[i]) for i in range(nd))
    with labelled("input gradient"):
        x_ct = conv_general_p(ct, _transpose_kernel(w, G), window_strides=tuple(lhs_dilation),
                              padding=pad_x, lhs_dilation=tuple(window_strides),
                              rhs_dilation=tuple(rhs_dilation), feature_group_count=G,
                              algorithm=algorithm)

    # weight cotangent: the input's channels become the batch and its batch the
    # features (groups folded in front: feature g*N + n), the cotangent becomes
    # the kernel; the output (Cg, O, k...) is transposed back to (O, Cg, k...).
    if G == 1:
        lhs = transpose_p(x, perm=(1, 0) + sp)
    else:
        lhs = reshape_p(x, shape=(N, G, Cg) + x.shape[2:])
        lhs = transpose_p(lhs, perm=(2, 1, 0) + tuple(range(3, 3 + nd)))
        lhs = reshape_p(lhs, shape=(Cg, G * N) + x.shape[2:])
    rhs = transpose_p(ct, perm=(1, 0) + sp)
    pad_w = tuple((padding[i][0], out_dil[i] - in_dil[i] + k_dil[i] - padding[i][0] - 1)
                  for i in range(nd))
    with labelled("weight gradient"):
        w_ct = conv_general_p(lhs, rhs, window_strides=tuple(rhs_dilation), padding=pad_w,
                              lhs_dilation=tuple(lhs_dilation),
                              rhs_dilation=tuple(window_strides), feature_group_count=G,
                              algorithm=algorithm)
        w_ct = transpose_p(w_ct, perm=(1, 0) + sp)
    return x_ct, w_ct


conv_general_p = Primitive("conv_general", _conv_rule, _conv_impl, _conv_vjp)

# --- wrappers -----------------------------------------------------------------------------

def _operands(opname, x, w):
    """Both operands as Arrays of one float (or complex) dtype."""
    x, w = operand(x, opname), operand(w, opname)
    x = x if isinstance(x, Array) else asarray(x)
    w = w if isinstance(w, Array) else asarray(w)
    dt = result_type(x.dtype, w.dtype)
    if not is_inexact(dt):
        dt = DEFAULT_FLOAT
    return to_dtype(x, dt), to_dtype(w, dt)


def _check_algorithm(opname: str, algorithm) -> None:
    """A wrapper's `algorithm=`: one of ALGORITHMS, else a clear error."""
    if algorithm in ALGORITHMS:
        return
    raise ArgumentError(f"{opname}: unknown algorithm {algorithm!r}; use one of {ALGORITHMS}")


def _check_kernel(opname, x: Array, w: Array, groups, x_channels_name="input"):
    """Rank and group checks shared by conv and conv_transpose, in the user's terms."""
    if w.ndim < 3:
        raise ShapeError(f"{opname}: the kernel {w.aval.short()} must be (out_channels, "
                         "in_channels/groups, spatial...) with at least one spatial dim")
    if x.ndim != w.ndim:
        raise ShapeError(f"{opname}: {x_channels_name} {x.aval.short()} and kernel "
                         f"{w.aval.short()} must have the same rank: (N, C, spatial...) and "
                         "(O, C/groups, spatial...); add a batch axis with x[None] if it is missing")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ArgumentError(f"{opname}: groups must be a positive int, got {groups!r}")


# PyTorch's padding_mode -> fc.pad's mode
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}


def _layout_perms(opname, dimension_numbers, nd: int):
    """JAX's `dimension_numbers=(lhs, rhs, out)` specs, e.g. ("NHWC", "HWIO", "NHWC"), ->
    the permutations taking x and w to (N, C, spatial...) and (O, I, spatial...), and the
    one taking the (N, O, spatial...) result to `out`'s layout.

    As in `jax.lax.conv_general_dilated`, spatial dims are matched by letter and come
    in the kernel spec's order, which is also the order of stride, padding and dilation.
    """
    where = f"{opname}(dimension_numbers={dimension_numbers!r})"
    try:
        lhs, rhs, out = dimension_numbers
        ok = all(isinstance(spec, str) for spec in (lhs, rhs, out))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArgumentError(f"{where}: expected three layout strings (lhs, rhs, out) as in JAX, "
                            "e.g. ('NHWC', 'HWIO', 'NHWC')")
    spatial = "".join(c for c in rhs if c not in "OI")
    for spec, fixed in ((lhs, "NC"), (rhs, "OI"), (out, "NC")):
        if (len(spec) != nd + 2 or len(set(spec)) != len(spec) or not set(fixed) <= set(spec)
                or sorted(c for c in spec if c not in fixed) != sorted(spatial)):
            raise ArgumentError(
                f"{where}: the spec {spec!r} must have {nd + 2} distinct letters: {fixed[0]!r}, "
                f"{fixed[1]!r} and the kernel spec's spatial letters {spatial!r} (the kernel "
                f"has {nd} spatial dims)")
    lhs_perm = tuple(lhs.index(c) for c in "NC" + spatial)
    rhs_perm = tuple(rhs.index(c) for c in "OI" + spatial)
    out_perm = tuple(("NC" + spatial).index(c) for c in out)  # (N, C, spatial...) -> out
    return lhs_perm, rhs_perm, out_perm


def _in_layout(opname, dimension_numbers, x, w, groups, call) -> Array:
    """`call(x, w)` (operands (N, C, spatial...) and (O, I, spatial...), result (N, O,
    spatial...)) applied to operands and result in JAX's `dimension_numbers` layout."""
    from funconv.ops.shape import transpose

    x, w = _operands(opname, x, w)
    if x.ndim != w.ndim:
        _check_kernel(opname, x, w, groups)
    x_perm, w_perm, out_perm = _layout_perms(opname, dimension_numbers, w.ndim - 2)
    try:
        y = call(transpose(x, x_perm), transpose(w, w_perm))
    except ShapeError as e:
        raise ShapeError(f"{opname}({x.aval.short()}, {w.aval.short()}, dimension_numbers="
                         f"{dimension_numbers!r}), in the (N, C, spatial...) and (O, I, "
                         f"spatial...) layout: {e}") from None
    return transpose(y, out_perm)


def conv(x, w, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         dimension_numbers=None, algorithm="auto") -> Array:
    """N-d convolution (cross-correlation, as in PyTorch's conv2d and JAX's conv).

    Args:
        x: input (N, C, spatial...); the number of spatial dims is `w.ndim - 2`.
        w: kernel (O, C/groups, window...).
        stride: int or one int per spatial dim.
        padding: "SAME" (output = ceil(input / stride), as JAX/TF: the odd
            extra pad on the high side), "VALID" (none), an int, one int per
            spatial dim, or one `(lo, hi)` pair per spatial dim (negative crops).
        dilation: kernel dilation, int or per dim.
        groups: feature groups: C and O must be divisible by it (depthwise:
            groups == C).
        padding_mode: what the padding holds, as PyTorch's `Conv2d(padding_mode=)`:
            "zeros", "reflect", "replicate" or "circular".
        dimension_numbers: other layouts, as JAX's `conv_general_dilated`: three
            strings (input, kernel, output), e.g. `("NHWC", "HWIO", "NHWC")`. Per-dim
            arguments follow the kernel spec's spatial order. None means
            ("NC...", "OI...", "NC...").
        algorithm: "auto" (`jit` chooses by a cost model; the choice shows in
            `jitted.lower(...).conv_plans` and in the lowered graph: "im2col" on the
            node, or FFT nodes in its place; eagerly, a large convolution, with a kernel
            above 5 taps along some axis and an im2col of over ~2 ms, gets the same
            choice, run as this one convolution compiled, cached per shape; others
            im2col),
            "direct" (the reference sum over kernel taps: slow, for checking),
            "im2col" (column matrix + GEMM), "fft" (FFT convolution), "tiled_fft" (FFT by
            overlap-save tiles: long signals with moderate kernels, funconv/passes/
            tiled_fft.py), "separable" (a kernel known at compile time, closed over
            rather than passed, of low numerical rank: row and column passes, see
            funconv/passes/separable.py), "helix" (a 2-d or 3-d convolution as one 1-d
            convolution of the flattened signal, Claerbout 1998: funconv/passes/
            helix.py) or "winograd" / "winograd4" (3x3 kernels, stride 1: Winograd's
            F(2x2,3x3) / F(4x4,3x3), Lavin and Gray 2016: funconv/passes/winograd.py).
            Under `jit` a forced choice that cannot compute this convolution raises
            ArgumentError saying why; eagerly, every forced choice but "direct"
            computes by im2col. The value is the same for every choice up to
            rounding. The derivative's convolutions use the same choice when it is
            "direct", "im2col", "fft" or "tiled_fft", else "auto".

    Accuracy of FFT convolution: its rounding error is global, relative to the largest
    values of the whole output, not to each output. In float32 the overall relative
    error is that of direct summation (2e-7 to 4e-7, relative L2), but a region 1e4
    times quieter than the rest of the output was measured at 1.2e-3 relative error
    where direct summation had 9e-8 (../shared/notes/fft-conv.md section 7). "auto"
    picks FFT for large kernels (more than 5 taps per axis, when the cost model says it
    is faster); pass `algorithm="im2col"` where quiet regions must keep their relative
    accuracy. FFT paths are tested to max|err| / max|ref| <= 2e-6 + 5e-7 log10(N) in
    float32 (N the transform size) and 1e-12 in float64.

    Returns:
        (N, O, out...), with out = (in + lo + hi - dilation*(k - 1) - 1) // stride + 1.
        Add a bias yourself: `conv(x, w) + b[:, None, None]`.
    """
    if dimension_numbers is not None:
        return _in_layout("conv", dimension_numbers, x, w, groups, lambda x, w: conv(
            x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
            padding_mode=padding_mode, algorithm=algorithm))
    if padding_mode not in _PADDING_MODES:
        raise ArgumentError(f"conv: unknown padding_mode {padding_mode!r}; use one of "
                            f"{tuple(_PADDING_MODES)}")
    _check_algorithm("conv", algorithm)
    x, w = _operands("conv", x, w)
    _check_kernel("conv", x, w, groups)
    nd = w.ndim - 2
    strides = per_dim(stride, nd, "stride", "conv")
    dil = per_dim(dilation, nd, "dilation", "conv")
    where = (f"conv({x.aval.short()}, {w.aval.short()}, stride={stride}, padding={padding!r}, "
             f"dilation={dilation}, groups={groups})")
    O, Cg = w.shape[:2]
    if O % groups:
        raise ShapeError(f"{where}: groups={groups} does not divide the kernel's {O} output channels")
    if x.shape[1] != groups * Cg:
        hint = ""
        if x.shape[-1] == groups * Cg and nd <= 3:  # a channels-last input, as flax's
            sp = "DHW"[3 - nd:]
            hint = (f"; the input looks channels-last: pass dimension_numbers=('N{sp}C', "
                    f"'OI{sp}', 'N{sp}C') (or 'N{sp}C', '{sp}IO', 'N{sp}C' for a flax kernel)")
        raise ShapeError(f"{where}: the input has {x.shape[1]} channels but the kernel expects "
                         f"groups * kernel.shape[1] = {groups} * {Cg} = {groups * Cg} (kernel "
                         f"layout: out_channels, in_channels/groups, window...){hint}")
    windows = [_dilate(k, d) for k, d in zip(w.shape[2:], dil)]
    pads = padding_pairs(padding, x.shape[2:], windows, strides, where)
    if padding_mode != "zeros" and any(p != (0, 0) for p in pads):
        from funconv.ops.shape import pad

        if any(lo < 0 or hi < 0 for lo, hi in pads):
            raise ArgumentError(f"{where}: padding_mode={padding_mode!r} needs non-negative "
                                f"padding, got {pads}")
        x = pad(x, ((0, 0), (0, 0)) + pads, mode=_PADDING_MODES[padding_mode])
        pads = ((0, 0),) * nd
    for i in range(nd):
        padded = x.shape[2 + i] + pads[i][0] + pads[i][1]
        if padded < windows[i]:
            # (a "kernel" at least twice the input on every axis: likely conv(w, x))
            swapped = all(a >= 2 * b for a, b in zip(w.shape[2:], x.shape[2:]))
            raise ShapeError(f"{where}: along spatial dim {i} the kernel spans {windows[i]} "
                             f"(dilated) but the padded input has only {padded}: the output "
                             "would be empty; pad more, or use a smaller kernel"
                             + ("; or are the input and the kernel swapped? conv(x, w) takes "
                                "the input first" if swapped else ""))
    return conv_general_p(x, w, window_strides=strides, padding=pads, lhs_dilation=(1,) * nd,
                          rhs_dilation=dil, feature_group_count=int(groups), algorithm=algorithm)


def conv_transpose(y, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                   algorithm="auto") -> Array:
    """Transposed convolution ("deconvolution"): the adjoint of `x -> conv(x, w, ...)`.

    Same numbers as PyTorch's `conv_transpose2d(y, w, stride=, padding=,
    output_padding=, dilation=, groups=)` and the same weight tensor: `w` has
    conv's layout (O, I/groups, window...), `y` has O channels and the result
    I channels.

    Args:
        y: (N, O, spatial...).
        w: (O, I/groups, window...).
        stride, dilation: int or per dim, of the convolution this is the adjoint of.
        padding: that convolution's padding: an int, per-dim ints, per-dim
            `(lo, hi)` pairs, "VALID" (0) or "SAME" (the adjoint of a SAME
            convolution of an input `stride` times larger: output = in * stride).
        output_padding: int or per dim, added at the high end of each spatial
            dim to pick among the input sizes that the strided convolution maps
            to the same output size; must be < max(stride, dilation) (and
            < stride for the adjoint identity to hold).
        groups: feature groups.
        algorithm: as `conv`'s.

    Returns:
        (N, I, out...) with out = (in - 1)*stride + dilation*(k - 1) + 1 - lo - hi
        + output_padding.
    """
    _check_algorithm("conv_transpose", algorithm)
    y, w = _operands("conv_transpose", y, w)
    _check_kernel("conv_transpose", y, w, groups, "y")
    nd = w.ndim - 2
    strides = per_dim(stride, nd, "stride", "conv_transpose")
    dil = per_dim(dilation, nd, "dilation", "conv_transpose")
    opad = per_dim(output_padding, nd, "output_padding", "conv_transpose", minimum=0)
    where = (f"conv_transpose({y.aval.short()}, {w.aval.short()}, stride={stride}, "
             f"padding={padding!r}, output_padding={output_padding}, dilation={dilation}, "
             f"groups={groups})")
    O = w.shape[0]
    if O % groups:
        raise ShapeError(f"{where}: groups={groups} does not divide the kernel's {O} channels "
                         "(dim 0)")
    if y.shape[1] != O:
        raise ShapeError(f"{where}: y has {y.shape[1]} channels but the kernel's dim 0 is {O}: "
                         "conv_transpose takes conv's weight layout (O, I/groups, window...) and "
                         "maps O channels to I")
    for i in range(nd):
        if opad[i] >= max(strides[i], dil[i]):
            raise ArgumentError(f"{where}: output_padding must be smaller than stride or "
                                f"dilation (as in PyTorch), got {opad[i]} in dim {i}")
    windows = [_dilate(k, d) for k, d in zip(w.shape[2:], dil)]
    if isinstance(padding, str) and padding.upper() == "SAME":
        pads = same_padding([n * s for n, s in zip(y.shape[2:], strides)], windows, strides)
        # the extra output padding that makes the output exactly in * stride
        opad = tuple(opad[i] + y.shape[2 + i] * strides[i]
                     - ((y.shape[2 + i] - 1) * strides[i] + windows[i] - pads[i][0] - pads[i][1])
                     for i in range(nd))
    else:
        pads = padding_pairs(padding, y.shape[2:], windows, strides, where)
    full = [(windows[i] - 1 - pads[i][0], windows[i] - 1 - pads[i][1] + opad[i]) for i in range(nd)]
    for i in range(nd):
        size = _dilate(y.shape[2 + i], strides[i]) + full[i][0] + full[i][1] - windows[i] + 1
        if size < 1:
            raise ShapeError(f"{where}: the output would have size {size} along spatial dim {i}; "
                             "use less padding")
    return conv_general_p(y, _transpose_kernel(w, int(groups)), window_strides=(1,) * nd,
                          padding=tuple(full), lhs_dilation=strides, rhs_dilation=dil,
                          feature_group_count=int(groups), algorithm=algorithm)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None,
                         preferred_element_type=None, *, algorithm="auto") -> Array:
    """`jax.lax.conv_general_dilated`: the general convolution, with JAX's signature.

    Args:
        lhs: input, (N, C, spatial...) unless `dimension_numbers` says otherwise.
        rhs: kernel, (O, C/feature_group_count, window...) likewise.
        window_strides: int or one per spatial dim.
        padding: "SAME", "SAME_LOWER" (the odd extra pad low), "VALID", or one
            `(lo, hi)` pair per spatial dim (the only form allowed with lhs_dilation,
            as in JAX).
        lhs_dilation: input dilation (zeros between samples: a transposed
            convolution without the kernel flip, as flax's ConvTranspose); None is 1.
        rhs_dilation: kernel dilation ("atrous"); None is 1.
        dimension_numbers: None or three layout strings, e.g. ("NHWC", "HWIO", "NHWC").
        feature_group_count: feature groups (depthwise: the input channels).
        batch_group_count: only 1 (JAX's grouped weight-gradient form is not supported).
        precision: accepted for compatibility; funconv on the CPU always computes at
            the operands' precision.
        preferred_element_type: if given, the dtype the operands are converted to
            (and so the result's dtype).
        algorithm: funconv's own (keyword only): as `conv`'s.

    Returns:
        The result in the output layout of `dimension_numbers`.
    """
    opname = "conv_general_dilated"
    _check_algorithm(opname, algorithm)
    if batch_group_count != 1:
        raise NotImplementedError(f"{opname}: batch_group_count={batch_group_count} (JAX's "
                                  "grouped weight-gradient form) is not supported; use "
                                  "feature_group_count, or fc.grad of a grouped conv")
    x, w = _operands(opname, lhs, rhs)
    if preferred_element_type is not None:
        dt = np.dtype(preferred_element_type)
        if not is_inexact(dt):
            raise DTypeError(f"{opname}: preferred_element_type must be a float or complex "
                             f"dtype, got {dt}")
        x, w = to_dtype(x, dt), to_dtype(w, dt)
    if dimension_numbers is not None:
        return _in_layout(opname, dimension_numbers, x, w, feature_group_count,
                          lambda x, w: conv_general_dilated(
                              x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                              feature_group_count=feature_group_count, algorithm=algorithm))
    _check_kernel(opname, x, w, feature_group_count)
    nd = w.ndim - 2
    strides = per_dim(window_strides, nd, "window_strides", opname)
    lhs_dil = per_dim(1 if lhs_dilation is None else lhs_dilation, nd, "lhs_dilation", opname)
    rhs_dil = per_dim(1 if rhs_dilation is None else rhs_dilation, nd, "rhs_dilation", opname)
    where = (f"{opname}({x.aval.short()}, {w.aval.short()}, window_strides={window_strides}, "
             f"padding={padding!r}, lhs_dilation={lhs_dilation}, rhs_dilation={rhs_dilation}, "
             f"feature_group_count={feature_group_count})")
    windows = [_dilate(k, d) for k, d in zip(w.shape[2:], rhs_dil)]
    if isinstance(padding, str) and any(d > 1 for d in lhs_dil):
        raise ArgumentError(f"{where}: string padding with lhs_dilation is ambiguous (JAX "
                            "refuses it too); pass one (lo, hi) pair per spatial dim, or use "
                            "fc.conv_transpose")
    if isinstance(padding, str) and padding.upper() == "SAME_LOWER":
        pads = tuple((hi, lo) for lo, hi in same_padding(x.shape[2:], windows, strides))
    else:
        pads = padding_pairs(padding, x.shape[2:], windows, strides, where)
    return conv_general_p(x, w, window_strides=strides, padding=pads, lhs_dilation=lhs_dil,
                          rhs_dilation=rhs_dil, feature_group_count=int(feature_group_count),
                          algorithm=algorithm)


__all__ = ["conv", "conv_general_dilated", "conv_general_p", "conv_transpose"]
