"""Tiled FFT convolution ("tiled_fft"): overlap-save, for large images with moderate kernels.

Notes: ../shared/notes/fft-conv.md section 3. Per spatial axis, in the terms of passes/conv.py
(xp: the input dilated and padded, wd: the dilated kernel of Kd taps, R1 = (L - 1)*s + 1 the
stride-1 outputs that the L kept ones need), a node is one of two shapes:

- "output tiles" (the kernel is the short operand, Kd <= R1: the forward, conv_transpose):
  overlap-save. The outputs are cut into disjoint tiles of T; output tile t reads
  xp[t*T : t*T + T + Kd - 1], an input tile of n_t = T + Kd - 1 samples (neighbours overlap
  by Kd - 1), which is transformed at size n_t; the kernel is placed at the origin of n_t.
  Every tile's circular correlation with the kernel is exact on its first T outputs (the
  overlap-discard argument of conv.py, per tile). The tiles join the batch: the mixing is one
  GEMM per frequency of (tiles*N, C) @ (C, O), bigger and fewer than the whole-image FFT's.
- "kernel tiles" (the kernel is the long operand, Kd > R1: the weight gradient, whose
  "kernel" is the output cotangent and whose output is the small kernel): the kernel is cut
  into disjoint tiles of T, each placed at the origin of n_t = T + R1 - 1, and tile t of the
  kernel meets input tile t, xp[t*T : t*T + n_t] -- the same overlapping tiles as the
  forward's when T is equal. y[k] = sum_t sum_{j<T} xp[tT + j + k] wd[tT + j] for k < R1:
  per tile a circular correlation without wrap (j + k < n_t), and the sum over tiles is a
  contraction, so the tiles join the channels: one GEMM per frequency contracting
  (tiles*C), i.e. dW accumulated in frequency, one inverse per (output, input) channel pair
  at the tile size.

Tile sizes (`tile_sizes`) depend only on the per-axis (window, long) lengths and the
channel counts of the forward the node belongs to, so a training step's forward and weight
gradient pick equal tiles, build the input tiles by equal nodes and share their spectra
(interning). Spectral memory: the kernel's spectra (O*C planes, the largest for many
channels) and the weight gradient's are tile-sized, not image-sized; the input and output
tiles' spectra together are about the image's size (plus the overlap), as the image is.

The input gradient (a correlation of the dilated, padded cotangent with the flipped,
transposed kernel) is output-tiled like a forward, in convolution form as the whole-image
FFT's (conv.py): correlation with flip(w0) is convolution with w0, so the spectrum of w0 at
the origin, unconjugated, serves -- the forward's own kernel spectrum when the tile sizes
agree -- and tile t's outputs are v[Kd - 1 : Kd - 1 + T] of v = irfft(X_t * W0) (v[t'] reads
the tile's samples t' - Kd + 1 .. t', inside the tile: no wrap). For conv1d of bench/run.py
this saves a transform of 256 planes of 4116 (2.8 ms of one thread), its pad and a
conjugate. Overlap-add (disjoint cotangent tiles, overlapping output tiles accumulated)
would be the alternative; overlap-save needs no accumulation. An axis where
the window is longer than the rest is one tile. Imports passes.conv lazily (it holds the
records) and conv_cost.
"""

from __future__ import annotations

import itertools
import math

from funconv.ir import Apply, Node
from funconv.ops._window import dilate
from funconv.ops.elementwise import conj_p
from funconv.ops.shape import concatenate_p, pad_p, reshape_p, slice_p, transpose_p
from funconv.passes import conv_cost

# The model counts transforms, mixing and spectra like the whole-image FFT's, but not the
# tile assembly (pad, two slices and a concatenation of the input per tiled axis) nor the
# relayouts of tile spectra into and out of the GEMMs. Measured (2 loaded cores, one
# thread): conv11 forced tiled ran 33 ms against 26 ms whole (the model had tiled 7%
# cheaper); conv1d tiled 157-171 ms against 211-232 ms whole (the model: 5x cheaper). So
# "auto" takes tiles only where they are estimated cheaper by more than this factor.
OVERHEAD = 1.5

# tile sizes tried per axis: the 2,3-smooth sizes from two windows up (pocketfft's fastest
# lengths, conv_cost.RADIX_COST; dense enough, ~7% apart, that the tile count is not
# constrained), and the whole length; at most this many per axis, by the number of tiled axes
# (thinned evenly in log size), so that the product stays small
_MAX_CANDIDATES = {1: 64, 2: 24}
_MAX_CANDIDATES_MORE = 10


def _smooth23(lo: int, hi: int) -> list[int]:
    """The 2,3-smooth integers in [lo, hi), ascending."""
    out, p2 = [], 1
    while p2 < hi:
        v = p2
        while v < hi:
            if v >= lo:
                out.append(v)
            v *= 3
        p2 *= 2
    return sorted(out)


def _geometry(node: Apply) -> list[tuple]:
    """Per spatial axis: (Hd, Kd, a, s, L, R1) (see the module docstring)."""
    p = node.params
    x, w = node.args
    nd = w.type.ndim - 2
    out = []
    for i in range(nd):
        Hd = dilate(x.type.shape[2 + i], p["lhs_dilation"][i])
        Kd = dilate(w.type.shape[2 + i], p["rhs_dilation"][i])
        s, L = p["window_strides"][i], node.type.shape[2 + i]
        out.append((Hd, Kd, p["padding"][i][0], s, L, (L - 1) * s + 1))
    return out


def _mode(node: Apply) -> str:
    """"output" tiles where the kernel is the short operand overall (by the product of its
    lengths against the stride-1 outputs'), else "kernel" tiles. An axis where the chosen
    mode's window is longer than its long operand (a kernel longer than the output along one
    axis of an output-tiled node, say) is one tile: the whole-signal FFT along it."""
    g = _geometry(node)
    return "output" if math.prod(Kd for _, Kd, *_ in g) <= math.prod(g_[5] for g_ in g) else "kernel"


def why_not(node: Apply) -> str | None:
    if node.type.dtype.kind != "f":
        return "its operands are complex (the FFT path uses real transforms)"
    return None


def _forward_terms(node: Apply, mode: str) -> tuple:
    """(N, C, O, window, long) of the forward this node belongs to: equal for a training
    step's forward ("output" mode) and weight gradient ("kernel" mode)."""
    x, w = node.args
    N, C = x.type.shape[:2]
    O = w.type.shape[0]
    g = _geometry(node)
    if mode == "output":
        win = tuple(Kd for _, Kd, _, _, _, R1 in g)
        long = tuple(R1 for _, Kd, _, _, _, R1 in g)
    else:
        win = tuple(R1 for _, Kd, _, _, _, R1 in g)
        long = tuple(Kd for _, Kd, _, _, _, R1 in g)
    if mode == "kernel":  # x is the forward's x transposed, w its cotangent transposed
        N, C = C, N
    return N, C, O, win, long


def _step_flops(N, C, O, n_t, tiles) -> tuple[float, float]:
    """(transform flops, mixing flops) of a forward and a weight gradient at tile sizes n_t
    with `tiles` tiles (the input tiles' spectra shared)."""
    plane = math.prod(n_t)
    per = 2.5 * plane * math.log2(max(plane, 2))
    F = math.prod(n_t[:-1]) * (n_t[-1] // 2 + 1)
    planes = N * C * tiles + O * C + 2 * N * O * tiles + O * C
    return per * planes, 2 * 8 * tiles * N * C * O * F


def tile_sizes(N: int, C: int, O: int, win: tuple, long: tuple) -> tuple:
    """Per axis the transform size n_t of a tile (2,3-smooth, at least 2*win - 1 so that the
    overlap fits in one neighbour; or the whole length, 2,3,5,7-smooth), chosen by the cost
    model (radix-aware: conv_cost.radix_factor) over the candidates above."""
    from funconv.passes.conv import smooth_size

    r = conv_cost.rates()
    cands = []
    limit = _MAX_CANDIDATES.get(len(win), _MAX_CANDIDATES_MORE)
    for W, Lg in zip(win, long):
        whole = smooth_size(Lg + W - 1)
        # (a window longer than the rest: one tile)
        cs = _smooth23(max(2 * W - 1, 8), whole) if W <= Lg else []
        if len(cs) > limit:
            cs = [cs[round(i * (len(cs) - 1) / (limit - 1))] for i in range(limit)]
        cands.append(sorted(set(cs) | {whole}))
    best, best_s = None, math.inf
    for n_t in itertools.product(*cands):
        tiles = math.prod(_count(L, n, W) for n, W, L in zip(n_t, win, long))
        tf, mf = _step_flops(N, C, O, n_t, tiles)
        tf *= sum(math.log2(n) * conv_cost.radix_factor(n) for n in n_t) / math.log2(
            max(math.prod(n_t), 2))
        F = tiles * math.prod(n_t[:-1]) * (n_t[-1] // 2 + 1)
        nbytes = (N * C + 2 * N * O) * F * 8 + 2 * O * C * F // tiles * 8
        sec = tf / r.fft + mf / r.mixing + 6 * nbytes / r.bandwidth
        if sec < best_s:
            best, best_s = n_t, sec
    return best


def _count(long: int, n_t: int, win: int) -> int:
    T = n_t - win + 1
    return -(-long // T)


def _plan(node: Apply):
    """(mode, n_t, T, nt, window) per axis (module docstring)."""
    mode = _mode(node)
    N, C, O, win, long = _forward_terms(node, mode)
    n_t = tile_sizes(N, C, O, win, long)
    T = tuple(n - W + 1 for n, W in zip(n_t, win))
    nt = tuple(-(-L // t) for L, t in zip(long, T))
    return mode, n_t, T, nt, win


def cost(node: Apply) -> float:
    """Estimated seconds of this node alone (as passes/conv.py costs the whole-image FFT)."""
    if conv_cost.small_window(node):
        return math.inf
    plan = _plan(node)
    mode, n_t, T, nt, win = plan
    x, w = node.args
    N, C = x.type.shape[:2]
    O, Cg = w.type.shape[:2]
    tiles = math.prod(nt)
    plane = math.prod(n_t)
    per = 2.5 * plane * math.log2(max(plane, 2))
    F = math.prod(n_t[:-1]) * (n_t[-1] // 2 + 1)
    if mode == "output":
        planes = N * C * tiles + O * Cg + N * O * tiles
        spectra = (N * C + N * O) * tiles * F + O * Cg * F
    else:
        planes = N * C * tiles + O * Cg * tiles + N * O
        spectra = (N * C + O * Cg) * tiles * F + N * O * F
    return OVERHEAD * conv_cost.fft_seconds(node, per * planes, tiles * F, spectra,
                                            conv_cost.rates())


def _tiles(b, x: Node, axes: tuple, T: tuple, nt: tuple, extra: tuple, source) -> Node:
    """Split each array axis `axes[j]` (of length (nt+1)*T, or nt*T when extra is 0) into
    (nt, T + extra) tiles starting every T: tile t holds x[t*T : t*T + T + extra]
    (overlapping when extra > 0). The tile axis comes right before the in-tile axis."""
    shift = 0
    for j, ax0 in enumerate(axes):
        ax = ax0 + shift
        r = x.type.ndim
        shp = x.type.shape

        def cut(start, stop, xx=x, ax=ax, r=r):
            st = [0] * r
            lim = list(xx.type.shape)
            st[ax], lim[ax] = start, stop
            return b.apply(slice_p, [xx], {"start_indices": tuple(st), "limit_indices": tuple(lim),
                                           "strides": (1,) * r}, source)

        if nt[j] == 1:  # one tile (the overlap may then exceed T)
            A = cut(0, T[j] + extra[j])
            x = b.apply(reshape_p, [A], {"shape": shp[:ax] + (1, T[j] + extra[j]) + shp[ax + 1:]},
                        source)
            shift += 1
            continue
        A = cut(0, nt[j] * T[j])
        A = b.apply(reshape_p, [A], {"shape": shp[:ax] + (nt[j], T[j]) + shp[ax + 1:]}, source)
        if extra[j] > 0:
            B = cut(T[j], (nt[j] + 1) * T[j])
            B = b.apply(reshape_p, [B], {"shape": shp[:ax] + (nt[j], T[j]) + shp[ax + 1:]}, source)
            st = [0] * (r + 1)
            lim = list(B.type.shape)
            lim[ax + 1] = extra[j]
            B = b.apply(slice_p, [B], {"start_indices": tuple(st), "limit_indices": tuple(lim),
                                       "strides": (1,) * (r + 1)}, source)
            A = b.apply(concatenate_p, [A, B], {"axis": ax + 1}, source)
        x = A
        shift += 1
    return x


def _tile_spectrum(b, op, px: dict, n_t: tuple, T: tuple, nt: tuple, extra: tuple, source):
    """Spectrum of op.src placed by px (per axis (lo, hi, interior)), cut into tiles of
    T + extra (zero-padded to n_t):
    complex (f_1, ..., f_k, nt_1, ..., nt_k, lead...) with op.ops replayed on lead."""
    from funconv.passes import conv as c

    x = op.src
    r = x.type.ndim
    nd = len(px)
    lead = r - nd
    cfg = ((0, 0, 0),) * lead + tuple(px[i] for i in range(nd))
    if any(q != (0, 0, 0) for q in cfg):
        x = c._emit(b, pad_p, [x, b.literal(0, x.type.dtype)], {"config": cfg}, source)
    x = _tiles(b, x, tuple(range(lead, r)), T, nt, extra, source)
    # (lead..., nt_1, n_1, ..., nt_k, n_k) -> (lead..., nt..., n...) for the transform
    perm = tuple(range(lead)) + tuple(lead + 2 * i for i in range(nd)) + tuple(
        lead + 2 * i + 1 for i in range(nd))
    x = b.apply(transpose_p, [x], {"perm": perm}, source)
    plan = c.FFTPlan(n_t, (0,) * nd, (0,) * nd, False, tuple(range(nd)))
    place = {i: (0, n_t[i] - T[i] - extra[i], 0, 1) for i in range(nd)}
    spec = c._spectrum(b, c._Peeled(x, (), False), plan, place, (), source)
    # spec: (f..., lead..., nt...) -> (f..., nt..., lead...), then op.ops on lead
    R = spec.type.ndim
    perm = tuple(range(nd)) + tuple(range(nd + lead, R)) + tuple(range(nd, nd + lead))
    spec = b.apply(transpose_p, [spec], {"perm": perm}, source)
    for kind, param in reversed(op.ops):
        if kind == "transpose":
            q = tuple(range(2 * nd)) + tuple(2 * nd + v for v in param[:len(param) - nd])
            spec = b.apply(transpose_p, [spec], {"perm": q}, source)
        else:
            spec = b.apply(reshape_p, [spec], {"shape": spec.type.shape[:2 * nd] + param}, source)
    return spec


def lower(b, node: Apply, args: list) -> Node:
    """The node by tiles (module docstring)."""
    from funconv.passes import conv as c

    plan = _plan(node)
    mode, n_t, T, nt, win = plan
    p, src = node.params, node.source
    nd = node.type.ndim - 2
    geo = _geometry(node)
    xo = c._peel(args[0], nd, allow_flip=False)
    # a flipped kernel (the input gradient's) in convolution form (module docstring)
    wo = c._peel(args[1], nd, allow_flip=mode == "output")
    G = p["feature_group_count"]
    # input tiles: x dilated at offset a, padded (or cropped) to (nt + 1) * T
    px = {i: (a, (nt[i] + 1) * T[i] - a - Hd if nt[i] > 1 else T[i] + win[i] - 1 - a - Hd,
              p["lhs_dilation"][i] - 1)
          for i, (Hd, Kd, a, s, L, R1) in enumerate(geo)}
    X = _tile_spectrum(b, xo, px, n_t, T, nt, tuple(W - 1 for W in win), src)
    F = n_t[:-1] + (n_t[-1] // 2 + 1,)
    tiles = math.prod(nt)
    if mode == "output":
        ext = tuple(Kd for _, Kd, _, _, _, _ in geo)
        kplan = c.FFTPlan(n_t, (0,) * nd, (0,) * nd, False, tuple(range(nd)), (),
                          c._choose_pruned(n_t, ext, False), ())
        pw = {}
        for i, (Hd, Kd, a, s, L, R1) in enumerate(geo):
            ew = Kd if i in kplan.w_prune else n_t[i]
            pw[i] = (0, ew - Kd, p["rhs_dilation"][i] - 1, 1)
        W = c._spectrum(b, wo, kplan, pw, kplan.w_prune, src)  # (f..., O, Cg)
        if not wo.flipped:  # correlation: multiply by the conjugate spectrum
            W = c._emit(b, conj_p, [W], {}, src)
        N, C = X.type.shape[-2:]
        Xr = b.apply(reshape_p, [X], {"shape": F + (tiles * N, C)}, src)
        Y = c._mix(b, Xr, W, G, src)  # (f..., tiles*N, O)
        O = Y.type.shape[-1]
        Y = b.apply(reshape_p, [Y], {"shape": F + nt + (N, O)}, src)
        y = c._at(b, Y, tuple(range(nd)), "irfft", n_t, src)  # (n_t..., nt..., N, O)
        r = y.type.ndim
        st = tuple(g[1] - 1 if wo.flipped else 0 for g in geo) + (0,) * (r - nd)
        y = b.apply(slice_p, [y], {"start_indices": st,
                                   "limit_indices": tuple(a + t for a, t in zip(st, T))
                                   + y.type.shape[nd:], "strides": (1,) * r}, src)
        # (T..., nt..., N, O) -> (N, O, nt_1, T_1, ...) -> (N, O, nt_1*T_1, ...)
        perm = (2 * nd, 2 * nd + 1) + tuple(v for i in range(nd) for v in (nd + i, i))
        y = b.apply(transpose_p, [y], {"perm": perm}, src)
        y = b.apply(reshape_p, [y], {"shape": (N, O) + tuple(a * t for a, t in zip(nt, T))}, src)
        out = node.type.shape
        lim = (N, O) + tuple((out[2 + i] - 1) * geo[i][3] + 1 for i in range(nd))
        sd = (1, 1) + tuple(g[3] for g in geo)
        if lim != y.type.shape or any(v != 1 for v in sd):
            y = b.apply(slice_p, [y], {"start_indices": (0,) * (nd + 2), "limit_indices": lim,
                                       "strides": sd}, src)
        return y
    # kernel tiles: the kernel dilated, cut into disjoint tiles of T, each padded to n_t
    pk = {i: (0, nt[i] * T[i] - Kd, p["rhs_dilation"][i] - 1)
          for i, (Hd, Kd, a, s, L, R1) in enumerate(geo)}
    Wt = _tile_spectrum(b, wo, pk, n_t, T, nt, (0,) * nd, src)  # (f..., nt..., O, Cg)
    Wt = c._emit(b, conj_p, [Wt], {}, src)
    N, C = X.type.shape[-2:]
    O, Cg = Wt.type.shape[-2:]
    Cgx = C // G
    # contraction over (group-local channel, tile): X (f, N, G, tiles, Cg), W (f, O, tiles, Cg)
    k = len(F)
    Xr = b.apply(reshape_p, [X], {"shape": F + (tiles, N, G, Cgx)}, src)
    Xr = b.apply(transpose_p, [Xr], {"perm": tuple(range(k)) + (k + 1, k + 2, k, k + 3)}, src)
    Xr = b.apply(reshape_p, [Xr], {"shape": F + (N, G * tiles * Cgx)}, src)
    Wr = b.apply(reshape_p, [Wt], {"shape": F + (tiles, O, Cg)}, src)
    Wr = b.apply(transpose_p, [Wr], {"perm": tuple(range(k)) + (k + 1, k, k + 2)}, src)
    Wr = b.apply(reshape_p, [Wr], {"shape": F + (O, tiles * Cg)}, src)
    Y = c._mix(b, Xr, Wr, G, src)  # (f..., N, O)
    ext = tuple(R1 for *_, R1 in geo)
    yplan = c.FFTPlan(n_t, (0,) * nd, (0,) * nd, False, tuple(range(nd)), (), (),
                      c._choose_pruned(n_t, ext, True))
    return c._inverse(b, Y, yplan, node, src)

