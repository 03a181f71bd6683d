"""The cost model of `algorithm="auto"` for convolutions: seconds per node, im2col vs FFT.

Each algorithm's time is a sum over its stages of flops / rate and bytes / bandwidth, with
four machine rates (`Rates`): a float32 GEMM (im2col's column-matrix product), the batched
small complex products of the FFT's channel mixing, real FFTs, and memory bandwidth. The
stage counts follow ../shared/notes/fft-conv.md section 2:

- im2col: `2 N O Cg prod(out) prod(k)` GEMM flops (divided by prod(lhs_dilation): the NumPy
  kernel skips the inserted zeros by phases), plus the column matrix written and read.
- FFT: `2.5 n log2 n` flops per real plane transformed (n = prod of the transform sizes;
  N C + O Cg forward planes and N O inverse ones), as staged by passes/conv.py
  (`staged_fft_flops`: pruned axes transform only their data rows or kept outputs; axes
  of one kernel tap are not transformed), none for a constant kernel (its spectrum is
  folded at compile time), `8 N O Cg F` for the mixing (F complex frequencies), plus the
  spectra written and read about three times each (pad, transform, relayout for the
  batched product).

Shared spectra (a training step transforms x, w and the cotangent once for three nodes) are
not credited: each node is costed alone, which favours im2col a little (conservative).

The rates come from `calibrate()` (micro-benchmarks, ~1 s once per machine, cached on disk
under the user's cache directory, `platformdirs`) or, with `fc.config.update(
"conv_calibration", False)` (the test suite does that), from `DEFAULT_RATES`.
`FUNCONV_CACHE_DIR` overrides the cache directory (`cache_dir`). Imports numpy,
attrs, platformdirs, config and (optionally) scipy.fft; no backend.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
import warnings

import attrs
import numpy as np

from funconv import config
from funconv.ops._window import dilate

FORMAT = 1  # bump when the cached file's layout or the benchmarks change


@attrs.frozen
class Rates:
    """Machine rates: flop/s (real flops; complex multiply-add = 8) and bytes/s."""

    gemm: float  # float32 GEMM of im2col's shape class
    mixing: float  # batched complex64 products of small matrices (FFT channel mixing)
    fft: float  # real FFT "flop/s" counted as 2.5 n log2 n per plane
    bandwidth: float  # a large array copy (read + write counted)


# Measured by `measure()` on the development machine, quiet (2-core EPYC, AVX2, NumPy 2.4
# with OpenBLAS, scipy.fft 1.17; medians of 5 calibrations, 2026-11-30: gemm 1.51e11,
# mixing 2.12e10, fft 2.07e10, bandwidth 4.13e10). Used when calibration is off, so that
# choices are deterministic (the tests) and sensible on a machine of that class, and while
# the machine is too busy to calibrate (see `rates`). NOTE: rates measured beside other busy
# processes were 3-18x lower (gemm 8.4e9) and made "auto" pick FFT where im2col is 3x faster.
DEFAULT_RATES = Rates(gemm=1.5e11, mixing=2.1e10, fft=2.1e10, bandwidth=4.1e10)

# Windows this small stay with im2col under "auto", whatever the rates say: Vasilache et al.
# (fbfft, ICLR 2015) find FFT loses to GEMM for 3x3 kernels and small problems, and the
# notes (fft-conv.md section 2) put the single-channel break-even at k ~ 7 in 2-d. The
# "window" of a node is, per axis, the smaller of its (dilated) kernel and its output: a
# weight gradient's "kernel" is the whole output cotangent, its output the small one.
SMALL_WINDOW = 5


def small_window(node) -> bool:
    """True when every spatial axis has a kernel or an output of at most SMALL_WINDOW
    (conv3x3 and LeNet layers, and their gradients): "auto" keeps im2col for these."""
    return small_window_shapes(node.args[1].type.shape, node.type.shape[2:],
                               node.params["rhs_dilation"])


def small_window_shapes(w_shape: tuple, out_spatial: tuple, rhs_dilation: tuple) -> bool:
    """`small_window` from the kernel's shape, the output's spatial shape and the kernel
    dilation (the NumPy conv kernel asks this of eager calls)."""
    return all(min(dilate(k, d), o) <= SMALL_WINDOW
               for k, d, o in zip(w_shape[2:], rhs_dilation, out_spatial))


def _sizes(node):
    p = node.params
    x, w = node.args
    nd = w.type.ndim - 2
    N, C = x.type.shape[:2]
    O, Cg = w.type.shape[:2]
    out = node.type.shape[2:]
    k = w.type.shape[2:]
    return p, nd, N, C, O, Cg, out, k


def im2col_seconds(node, rates: Rates) -> float:
    p, nd, N, C, O, Cg, out, k = _sizes(node)
    item = node.type.dtype.itemsize
    taps = math.prod(k) / math.prod(p["lhs_dilation"])  # polyphase: zeros are skipped
    flops = 2 * N * O * Cg * math.prod(out) * taps
    column = N * C * math.prod(out) * taps * item  # the column matrix, written then read
    return flops / rates.gemm + 2 * column / rates.bandwidth


def group_start(k: int, pruned: tuple) -> int:
    """The first axis of the trailing run of unpruned axes (the last axis always in it)."""
    g = k
    while g > 0 and (g - 1 == k - 1 or g - 1 not in pruned):
        g -= 1
    return g


def dft_by_gemm(n: int, e: int) -> bool:
    """Whether a pruned one-axis DFT of length n, over e data rows (forward) or to e kept
    outputs (inverse), is cheaper as one GEMM with the (n x e or e x n) DFT matrix than as
    FFT lines: 8 n e flops per line at the GEMM rate against 5 n log2 n at the FFT rate.
    (Measured, conv11's kernel: 140 x 11 over 4544 lines, 0.5 ms as a GEMM against 1.6 ms
    by scipy.fft; the GEMM is one call only because the axis leads, frequency-major.)"""
    r = rates()
    return 8 * e / r.gemm < 5 * math.log2(max(n, 2)) / r.fft


def staged_fft_flops(n: tuple, ext: tuple, pruned: tuple, inverse: bool) -> float:
    """Real flops of one plane's transform over sizes `n` as passes/conv.py stages it: an
    rfft (irfft) over the trailing run of unpruned axes, one complex pass per other axis
    (5 m log2 m per line of length m), the pruned axes `pruned` (indices) only over their
    `ext` data rows (forward: transformed last; inverse: first, then sliced to `ext`), as a
    DFT-matrix GEMM where `dft_by_gemm` says so (its flops scaled to the FFT rate).
    With nothing pruned this is the usual 2.5 N log2 N of a real n-d transform."""
    k = len(n)
    g = group_start(k, pruned)
    h = n[-1] // 2 + 1
    group = math.prod(n[g:])
    group_flops = 2.5 * group * math.log2(max(group, 2))

    def line(m, cur, j):
        rest = math.prod(cur[:j] + cur[j + 1:])
        if j in pruned and dft_by_gemm(m, ext[j]):  # priced at the GEMM rate, in FFT flops
            r = rates()
            return 8 * m * ext[j] * rest * r.fft / r.gemm
        return 5 * m * math.log2(max(m, 2)) * rest

    if not inverse:
        cur = [ext[j] if j in pruned else n[j] for j in range(k)]
        flops = group_flops * math.prod(cur[:g])
        cur[g:] = list(n[g:-1]) + [h]
        for j in sorted(range(g), key=lambda j: j in pruned):
            cur[j] = n[j]
            flops += line(n[j], cur, j)
        return flops
    cur = list(n[:-1]) + [h]
    flops = 0.0
    for j in sorted(range(g), key=lambda j: j not in pruned):
        flops += line(n[j], cur, j)
        if j in pruned:
            cur[j] = ext[j]
    return flops + group_flops * math.prod(cur[:g])


# pocketfft's time per flop by radix, relative to radices 2 and 3. Measured on the 2-core
# machine, 352 real transforms of each length on one thread: 4096 = 2^12 2.17 ms, 4374 =
# 2*3^7 2.50 ms, 4608 = 2^9*3^2 2.49 ms, 4480 = 2^7*5*7 2.91 ms, 4410 = 2*3^2*5*7^2 3.23 ms,
# 4116 = 2^2*3*7^3 3.19 ms: per flop 1.0, 1.0, 1.0, 1.21, 1.37, 1.46, which these weights
# (per factor, by its share of log2 n) reproduce within 3%.
RADIX_COST = {2: 1.0, 3: 1.0, 5: 1.3, 7: 1.65}


def radix_factor(n: int) -> float:
    """pocketfft's time per flop at length n (2,3,5,7-smooth) relative to a 2,3-smooth one."""
    bits = weighted = 0.0
    for p, c in RADIX_COST.items():
        while n % p == 0 and n > 1:
            n //= p
            bits += math.log2(p)
            weighted += c * math.log2(p)
    return weighted / bits if bits else 1.0


def fft_seconds(node, transform_flops: float, freqs: int, spectra: int, rates: Rates) -> float:
    """FFT convolution: `transform_flops` (every plane's staged transforms, summed),
    the complex mixing over `freqs` frequencies (8 N O Cg F), and `spectra` complex
    values (the spectra that are computed at run time) written and read about three times
    each (pad, transform, relayout for the batched product)."""
    p, nd, N, C, O, Cg, out, k = _sizes(node)
    mixing = 8 * N * O * Cg * freqs
    nbytes = spectra * 2 * node.type.dtype.itemsize  # complex: twice the real itemsize
    return (transform_flops / rates.fft + mixing / rates.mixing
            + 3 * 2 * nbytes / rates.bandwidth)


# --- calibration -----------------------------------------------------------------------------------


def _best_seconds(f, repeat: int = 5) -> float:
    """The fastest of `repeat` runs after a warm-up: the machine's rate, not its load (on a
    shared 2-core machine the median GEMM rate scattered from 6e9 to 1.4e11 flop/s)."""
    f()  # warm-up (plans, allocations)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def _rfftn():
    try:
        import scipy.fft as sf

        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return lambda a: sf.rfftn(a, axes=(-2, -1), workers=workers)
    except ImportError:
        return lambda a: np.fft.rfftn(a, axes=(-2, -1))


def measure() -> Rates:
    """Micro-benchmarks (a fraction of a second in all): the four rates on this machine."""
    rng = np.random.default_rng(0)
    # GEMM: an im2col-like product (64 x 576) @ (576 x 4096) in float32
    a = rng.standard_normal((64, 576), np.float32)
    b = rng.standard_normal((576, 4096), np.float32)
    gemm = 2 * 64 * 576 * 4096 / _best_seconds(lambda: a @ b)
    # mixing: 8192 frequencies of (4 x 8) @ (8 x 8) complex64, conv11's forward class
    c = (rng.standard_normal((8192, 4, 8)) + 1j).astype(np.complex64)
    d = (rng.standard_normal((8192, 8, 8)) + 1j).astype(np.complex64)
    mixing = 8 * 8192 * 4 * 8 * 8 / _best_seconds(lambda: np.matmul(c, d))
    # FFT: 32 real planes of 128 x 128
    rfftn = _rfftn()
    e = rng.standard_normal((32, 128, 128), np.float32)
    fft = 32 * 2.5 * 128 * 128 * 14 / _best_seconds(lambda: rfftn(e))
    # bandwidth: a 32 MB copy, read + written
    f = np.ones(8 << 20, np.float32)
    g = np.empty_like(f)
    bandwidth = 2 * f.nbytes / _best_seconds(lambda: np.copyto(g, f))
    return Rates(gemm=gemm, mixing=mixing, fft=fft, bandwidth=bandwidth)


def machine() -> dict:
    """What a cached calibration is valid for: the same CPU count, CPU and libraries."""
    try:
        import scipy

        scipy_version = scipy.__version__
    except ImportError:
        scipy_version = None
    return {"machine": platform.machine(), "processor": platform.processor(),
            "node": platform.node(), "cpus": os.cpu_count(), "numpy": np.__version__,
            "scipy": scipy_version}


def cache_dir() -> str:
    """Where the calibration (and the measured convolution plans, passes/plans.py) are cached:
    `$FUNCONV_CACHE_DIR` when set, else the user's cache directory (platformdirs)."""
    env = os.environ.get("FUNCONV_CACHE_DIR")
    if env:
        return env
    import platformdirs

    return platformdirs.user_cache_dir("funconv")


def cache_path() -> str:
    """The calibration file, in `cache_dir()`."""
    return os.path.join(cache_dir(), "conv_rates.json")


def _load(path: str) -> Rates | None:
    """The cached rates, or None (with a warning when the file exists but is not usable)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != FORMAT or data.get("machine") != machine():
            warnings.warn(f"funconv: {path} holds a convolution calibration of another machine "
                          "or version; measuring again", RuntimeWarning, stacklevel=3)
            return None
        rates = Rates(**{k: float(data["rates"][k]) for k in attrs.fields_dict(Rates)})
        if not all(math.isfinite(v) and v > 0 for v in attrs.astuple(rates)):
            raise ValueError("non-positive rate")
        return rates
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        warnings.warn(f"funconv: the convolution calibration {path} is unreadable ({e}); "
                      "measuring again", RuntimeWarning, stacklevel=3)
        return None


def store_json(path: str, data: dict, what: str) -> None:
    """Write `data` to `path` atomically (a temporary file in the same directory, then
    os.replace): a concurrent reader sees the old file or the new one, never half of one.
    A read-only cache directory only warns (`what` names the file in the warning)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".funconv.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"funconv: cannot cache the convolution {what} in {path}: {e}",
                      RuntimeWarning, stacklevel=4)


def _store(path: str, rates: Rates) -> None:
    store_json(path, {"format": FORMAT, "machine": machine(), "rates": attrs.asdict(rates)},
               "calibration")


_RATES: Rates | None = None  # this process's rates, once loaded or measured


def rates() -> Rates:
    """The machine's rates: DEFAULT_RATES when calibration is off, else the cached
    calibration (measured and cached on first use, when the machine is not busy; while it
    is, DEFAULT_RATES)."""
    global _RATES
    if not config.conv_calibration:
        return DEFAULT_RATES
    if _RATES is None:
        path = cache_path()
        r = _load(path)
        if r is None:
            if _busy():
                # rates measured beside other busy processes are a fraction of the machine's
                # and a cached calibration lasts: use the defaults now, calibrate another time
                return DEFAULT_RATES
            r = measure()
            _store(path, r)
        _RATES = r
    return _RATES


def _busy() -> bool:
    """Is the machine busy with other work? The 1-minute load average (which counts this
    process too) at or above the number of usable cores."""
    try:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return os.getloadavg()[0] >= (cores or 1)
    except OSError:  # no load average on this platform: calibrate
        return False


__all__ = ["DEFAULT_RATES", "Rates", "cache_dir", "dft_by_gemm", "fft_seconds", "im2col_seconds",
           "measure", "rates", "staged_fft_flops"]
