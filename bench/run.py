"""Run every benchmark and print one table of medians.

Workloads (all float32, CPU):

* dispatch: the jitted gradient of sum(tanh(W @ x)), W 10x10 (per-call
  overhead; reuses bench/dispatch.py).
* conv3x3:  value and both gradients of sum(conv(x, w)**2), x 16x64x32x32,
  w 64x64x3x3, padding 1 (reuses bench/conv.py).
* lenet:    one jitted SGD step of conv(1->16, 5x5)-relu-maxpool2-
  conv(16->32, 5x5)-relu-maxpool2-dense(512->10)-cross-entropy on a batch
  f32[64,1,28,28] (forward, backward and the parameter update).
* conv11:   value and both gradients of sum(conv(x, w)**2), x f32[4,8,128,128],
  w f32[8,8,11,11], padding 5 (issue 11: funconv picks FFT convolution).
* blur31:   a 512x512 image blurred by a 31x31 Gaussian, padding 15, forward only
  (SciPy: scipy.signal.fftconvolve(mode="same")).
* blur31_const: blur31 with the kernel closed over, a compile-time constant (issue 12:
  funconv folds its spectrum or factors it); peers also "ndimage", two
  scipy.ndimage.correlate1d passes.
* blur3d:   a f32[1,1,128,128,128] volume smoothed by a 15^3 Gaussian closed over, padding 7,
  forward (issue 12); peers scipy.ndimage.gaussian_filter ("ndimage") and
  scipy.signal.fftconvolve ("scipy").
* conv1d:   value and both gradients, x f32[1,16,65536], w f32[16,16,1025], padding 512
  (a long 1-d filter).
* dw31:     value and both gradients, x f32[8,64,64,64], w f32[64,1,31,31], groups 64,
  padding 15 (a large depthwise kernel; no SciPy peer).

`--memory` instead reports the peak extra memory (tracemalloc, which sees NumPy's
allocations) of one jitted call of conv11 and conv1d with every convolution forced to
"fft", to "tiled_fft" and to "im2col", each in its own child process.

Each workload runs in funconv (jit, NumPy backend) and, when importable, in
PyTorch (eager, default threads), JAX (jit) and SciPy (conv3x3 only: FFT
convolutions with scipy.signal.fftconvolve). Every (workload, library) pair
runs in a child process of this one (one process group; Ctrl-C stops all):
libraries that leave spinning thread pools behind (OpenMP, XLA) would
otherwise slow down whoever is measured after them on a 2-core machine.

The ratio columns are funconv's time divided by the peer's: below 1 means
funconv is faster. Medians of `--repeat` timed runs after warm-up
(compilation excluded); a slow step stops after `BUDGET_S` seconds with at least 3 runs.
The lenet runs must agree on the first step's loss
(a warning says when not). Nothing is asserted.

`--plans` instead prints conv3x3's convolutions planned by measurement
(`conv_planning="measure"`): each candidate's predicted and measured time, and the choice.

With `--backend opencl`, funconv also runs with its OpenCL backend (PoCL on the CPU, or
the device FUNCONV_OPENCL_DEVICE names), in its own child process, as the column
`opencl` next to the NumPy backend's `funconv`, and the table ends with the cold-cache and
warm-cache compile time of the LeNet step (cold: a fresh POCL_CACHE_DIR in the child;
warm: a second child on that same directory).

Run: python bench/run.py [--repeat 30] [--only lenet,conv3x3,dispatch,conv11,...] [--threads 1]
     [--backend opencl] [--rounds 3]
     python bench/run.py --memory
     python bench/run.py --plans
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmarks

import funconv as fc  # noqa: E402  (after the sys.path line)
from conv import median_ms, settled  # noqa: E402

PEERS = ("pytorch", "jax", "scipy", "ndimage")
# a workload's timing in one library stops after this many seconds once it has 3 timed runs
# (conv1d takes 2 s a step in PyTorch; conv11 10-15 ms in funconv: all --repeat runs)
BUDGET_S = 3.0
# the workloads that have an "ndimage" peer (scipy.ndimage's separable filters)
NDIMAGE_WORKLOADS = ("blur31_const", "blur3d")


def _try(make):
    """A peer's step function, or None when its library is not importable."""
    try:
        return make()
    except ImportError:
        return None


# --- dispatch ------------------------------------------------------------------------------


def dispatch(lib: str, repeat: int):
    import dispatch as d  # bench/dispatch.py

    rng = np.random.default_rng(0)
    W = rng.standard_normal((10, 10)).astype(np.float32)
    x = rng.standard_normal(10).astype(np.float32)
    calls = 2000 if lib != "pytorch" else 500  # ~100 us a call in PyTorch eager
    reps = max(3, repeat // 5)
    if lib == "funconv":
        us = d.bench_funconv(W, x, calls, reps)[0]
    elif lib == "jax":
        us = d.bench_jax(W, x, calls, reps)
    elif lib == "pytorch":
        us = d.bench_torch(W, x, calls, reps)  # pins PyTorch to one thread: best for tiny ops
    else:
        return None
    return None if us is None else {"ms": us / 1e3}


# --- conv3x3 ---------------------------------------------------------------------------------


def _scipy_conv3x3(x, w):
    """Value and both gradients of sum(conv(x, w, padding=(k-1)/2)**2) ("same", odd kernels,
    one group, any number of spatial dims) with scipy.signal.fftconvolve."""
    from scipy.signal import fftconvolve

    nd = x.ndim - 2
    axes = tuple(range(-nd, 0))
    size = x.shape[2:]
    ks = w.shape[2:]
    flip = (Ellipsis,) + (slice(None, None, -1),) * nd
    centre = (Ellipsis,) + tuple(slice(k // 2, k // 2 + n) for k, n in zip(ks, size))

    def step():
        # mode="full" everywhere: "same"/"valid" would size the result by the first operand's
        # shape on the broadcast (non-convolved) axes too. Correlation = convolution with the
        # flipped kernel; padding (k-1)/2 keeps the centre of the full result.
        y = fftconvolve(x[:, None], w[None][flip], axes=axes)[centre].sum(2)  # (N, O, sp...)
        ct = 2 * y
        x_ct = fftconvolve(ct[:, :, None], w[None], axes=axes)[centre].sum(1)  # (N, C, sp...)
        xp = np.pad(x, ((0, 0), (0, 0)) + tuple((k // 2, k // 2) for k in ks))
        full = fftconvolve(xp[:, None], ct[:, :, None][flip], axes=axes)
        w_ct = full[(Ellipsis,) + tuple(slice(n - 1, n - 1 + k) for k, n in zip(ks, size))].sum(0)
        return (y * y).sum(), x_ct, w_ct

    return step


def conv3x3(lib: str, repeat: int):
    import conv as c  # bench/conv.py

    rng = np.random.default_rng(0)
    x = rng.standard_normal((c.N, c.C, c.H, c.W)).astype(np.float32)
    w = (rng.standard_normal((c.O, c.C, c.K, c.K)) / np.sqrt(c.C * c.K * c.K)).astype(np.float32)
    makers = {"funconv": c.funconv_jit, "pytorch": c.torch_step, "jax": c.jax_step,
              "scipy": lambda x, w: (__import__("scipy.signal"), _scipy_conv3x3(x, w))[1]}
    step = _try(lambda: makers[lib](x, w))
    return None if step is None else {"ms": median_ms(step, repeat, warmup=1, budget_s=BUDGET_S)}


# --- lenet -------------------------------------------------------------------------------------

BATCH, LR = 64, 0.05


def _lenet_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int32)

    def init(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)

    params = {"c1w": init((16, 1, 5, 5), 25), "c1b": np.zeros(16, np.float32),
              "c2w": init((32, 16, 5, 5), 400), "c2b": np.zeros(32, np.float32),
              "dw": init((512, 10), 512), "db": np.zeros(10, np.float32)}
    return params, x, y


def lenet_funconv(params, x, y):
    def loss(p, x, y):
        h = fc.nn.relu(fc.conv(x, p["c1w"]) + p["c1b"].reshape(-1, 1, 1))
        h = fc.max_pool(h, 2)
        h = fc.nn.relu(fc.conv(h, p["c2w"]) + p["c2b"].reshape(-1, 1, 1))
        h = fc.max_pool(h, 2)
        return fc.nn.cross_entropy(h.reshape(x.shape[0], -1) @ p["dw"] + p["db"], y)

    def step(p, x, y):
        value, g = fc.value_and_grad(loss)(p, x, y)
        return fc.tree.map(lambda a, b: a - LR * b, p, g), value

    step = fc.jit(step)
    p = {k: fc.asarray(v) for k, v in params.items()}
    xa, ya = fc.asarray(x), fc.asarray(y)
    state = {"p": p}

    def run():
        state["p"], v = step(state["p"], xa, ya)
        return v

    settled(lambda: step(p, xa, ya))  # (plans the BLAS threads; the parameters stay put)
    return run


def lenet_torch(params, x, y):
    import torch
    import torch.nn.functional as F

    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, yt = torch.tensor(x), torch.tensor(y).long()

    def run():
        h = F.max_pool2d(F.relu(F.conv2d(xt, p["c1w"], p["c1b"])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["c2w"], p["c2b"])), 2)
        v = F.cross_entropy(h.reshape(BATCH, -1) @ p["dw"] + p["db"], yt)
        grads = torch.autograd.grad(v, list(p.values()))
        with torch.no_grad():
            for t, g in zip(p.values(), grads):
                t -= LR * g
        return v.item()

    return run


def lenet_jax(params, x, y):
    import jax
    import jax.numpy as jnp

    def conv(h, w, b):
        out = jax.lax.conv_general_dilated(h, w, (1, 1), "VALID")
        return out + b[:, None, None]

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss(p, x, y):
        h = pool(jax.nn.relu(conv(x, p["c1w"], p["c1b"])))
        h = pool(jax.nn.relu(conv(h, p["c2w"], p["c2b"])))
        logits = h.reshape(x.shape[0], -1) @ p["dw"] + p["db"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    @jax.jit
    def step(p, x, y):
        v, g = jax.value_and_grad(loss)(p, x, y)
        return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), v

    state = {"p": {k: jnp.asarray(v) for k, v in params.items()}}
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def run():
        state["p"], v = step(state["p"], xj, yj)
        return v.block_until_ready()

    return run


def lenet(lib: str, repeat: int):
    params, x, y = _lenet_data()
    makers = {"funconv": lenet_funconv, "pytorch": lenet_torch, "jax": lenet_jax}
    run = _try(lambda: makers[lib](params, x, y)) if lib in makers else None
    if run is None:
        return None
    first_loss = float(run())  # every library starts from the same parameters: the same loss
    return {"ms": median_ms(run, repeat), "check": first_loss}


# --- large kernels: conv11, blur31, conv1d, dw31 (issue 11, FFT convolution) ---------------------


def _convgrad_data(xs, ws, scale=True):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    if scale:
        w /= np.sqrt(np.prod(ws[1:]))
    return x, w


def _funconv_convgrad(x, w, padding, groups):
    f = fc.jit(fc.value_and_grad(
        lambda x, w: (fc.conv(x, w, padding=padding, groups=groups) ** 2).sum(), argnums=(0, 1)))
    xa, wa = fc.asarray(x), fc.asarray(w)
    return settled(lambda: f(xa, wa))


def _torch_convgrad(x, w, padding, groups):
    import torch
    import torch.nn.functional as F

    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.ndim - 2]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)

    def step():
        loss = (conv(xt, wt, padding=padding, groups=groups) ** 2).sum()
        return torch.autograd.grad(loss, [xt, wt])

    return step


def _jax_convgrad(x, w, padding, groups):
    import jax

    nd = x.ndim - 2

    def loss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1,) * nd, [(padding, padding)] * nd,
                                         feature_group_count=groups)
        return (y ** 2).sum()

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    xj, wj = jax.numpy.asarray(x), jax.numpy.asarray(w)
    return lambda: jax.block_until_ready(f(xj, wj))


def _convgrad(xs, ws, padding, groups=1):
    """A value-and-gradients workload of sum(conv(x, w, padding, groups)**2) in every library
    (SciPy's fftconvolve only for one group: it has no grouped form)."""

    def workload(lib: str, repeat: int):
        x, w = _convgrad_data(xs, ws)
        makers = {"funconv": _funconv_convgrad, "pytorch": _torch_convgrad, "jax": _jax_convgrad}
        if groups == 1:
            makers["scipy"] = lambda x, w, p, g: (__import__("scipy.signal"), _scipy_conv3x3(x, w))[1]
        if lib not in makers:
            return None
        step = _try(lambda: makers[lib](x, w, padding, groups))
        return None if step is None else {"ms": median_ms(step, repeat, warmup=1, budget_s=BUDGET_S)}

    return workload


def _gaussian1(k: int, sigma: float) -> np.ndarray:
    """The normalised 1-d Gaussian of k taps (the factor of every blur kernel here)."""
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def _gaussian(k: int, sigma: float) -> np.ndarray:
    g = _gaussian1(k, sigma)
    return np.outer(g, g)


def blur31(lib: str, repeat: int):
    """A 512x512 image blurred by a 31x31 Gaussian (sigma 5), "same" size, forward only."""
    img = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    k = _gaussian(31, 5.0)
    if lib == "funconv":
        f = fc.jit(lambda x, w: fc.conv(x, w, padding=15))
        xa, wa = fc.asarray(img[None, None]), fc.asarray(k[None, None])
        step = settled(lambda: f(xa, wa))
    elif lib == "scipy":
        def make():
            from scipy.signal import fftconvolve

            return lambda: fftconvolve(img, k, mode="same")  # symmetric kernel: = correlation

        step = _try(make)
    elif lib == "pytorch":
        def make():
            import torch
            import torch.nn.functional as F

            xt, wt = torch.tensor(img[None, None]), torch.tensor(k[None, None])

            def run():
                with torch.no_grad():
                    return F.conv2d(xt, wt, padding=15)

            return run

        step = _try(make)
    else:
        def make():
            import jax

            f = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), [(15, 15)] * 2))
            xj, wj = jax.numpy.asarray(img[None, None]), jax.numpy.asarray(k[None, None])
            return lambda: jax.block_until_ready(f(xj, wj))

        step = _try(make)
    return None if step is None else {"ms": median_ms(step, repeat, warmup=1)}


def blur31_const(lib: str, repeat: int):
    """blur31 with the kernel closed over (a compile-time constant: funconv may factor it,
    fold its spectrum); peers: PyTorch and JAX as in blur31 (JAX's jit closes over it too),
    scipy.signal.fftconvolve ("scipy") and two scipy.ndimage.correlate1d passes ("ndimage",
    the separable direct form, zero padding as conv's)."""
    img = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    k = _gaussian(31, 5.0)
    if lib == "funconv":
        kc = k[None, None]
        f = fc.jit(lambda x: fc.conv(x, kc, padding=15))
        xa = fc.asarray(img[None, None])
        step = lambda: f(xa)  # noqa: E731
    elif lib == "ndimage":
        def make():
            from scipy.ndimage import correlate1d

            g = _gaussian1(31, 5.0)

            def run():
                rows = correlate1d(img, g, axis=1, mode="constant")
                return correlate1d(rows, g, axis=0, mode="constant")

            return run

        step = _try(make)
    else:
        return blur31(lib, repeat)
    return None if step is None else {"ms": median_ms(step, repeat, warmup=1)}


def blur3d(lib: str, repeat: int):
    """A 128^3 volume smoothed by a 15^3 Gaussian (sigma 2.5), the kernel closed over,
    "same" size, forward only. Peers: scipy.ndimage.gaussian_filter ("ndimage": three
    correlate1d passes, truncate 2.8 gives the same 15 taps, zero borders as conv's) and
    scipy.signal.fftconvolve ("scipy")."""
    vol = np.random.default_rng(0).random((128, 128, 128)).astype(np.float32)
    g = _gaussian1(15, 2.5)
    k = np.einsum("i,j,k->ijk", g, g, g)
    if lib == "funconv":
        kc = k[None, None]
        f = fc.jit(lambda x: fc.conv(x, kc, padding=7))
        xa = fc.asarray(vol[None, None])
        step = lambda: f(xa)  # noqa: E731
    elif lib == "ndimage":
        def make():
            from scipy.ndimage import gaussian_filter

            return lambda: gaussian_filter(vol, sigma=2.5, truncate=2.8, mode="constant")

        step = _try(make)
    elif lib == "scipy":
        def make():
            from scipy.signal import fftconvolve

            return lambda: fftconvolve(vol, k, mode="same")

        step = _try(make)
    else:
        return None
    return None if step is None else {"ms": median_ms(step, repeat, warmup=1, budget_s=BUDGET_S)}


# --- measured convolution plans (conv_planning="measure") ---------------------------------------


def plans_report() -> None:
    """conv3x3's three convolutions (forward, input and weight gradients) planned by
    measurement: every candidate's predicted and measured time, and the choice. Measures in
    a fresh cache directory (FUNCONV_CACHE_DIR, unless set), so it always times."""
    import tempfile

    import conv as c  # bench/conv.py

    os.environ.setdefault("FUNCONV_CACHE_DIR", tempfile.mkdtemp(prefix="funconv-plans-"))
    from funconv.passes import plans

    rng = np.random.default_rng(0)
    x = rng.standard_normal((c.N, c.C, c.H, c.W)).astype(np.float32)
    w = (rng.standard_normal((c.O, c.C, c.K, c.K)) / np.sqrt(c.C * c.K * c.K)).astype(np.float32)
    fc.config.update("conv_planning", "measure")
    step = fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=1) ** 2).sum(), argnums=(0, 1)))
    lowered = step.lower(x, w)
    print(f"conv3x3 training step, measured plans ({os.cpu_count()} CPUs, cache "
          f"{os.environ['FUNCONV_CACHE_DIR']}):")
    print(plans.table(lowered.conv_plans))
    step(x, w)  # compiled: one call, then the step's median with the chosen algorithms
    print(f"step with these choices: {median_ms(lambda: step(x, w), 5, warmup=1):.2f} ms")


# --- memory: FFT vs im2col (tracemalloc) ---------------------------------------------------------

MEMORY_CASES = {"conv11": ((4, 8, 128, 128), (8, 8, 11, 11), 5),
                "conv1d": ((1, 16, 65536), (16, 16, 1025), 512)}


def memory_worker(case: str, algorithm: str) -> None:
    """Child process: peak extra bytes (tracemalloc) of one jitted value-and-gradients call
    with every convolution forced to `algorithm`, after a warm-up call."""
    import tracemalloc

    xs, ws, pad = MEMORY_CASES[case]
    x, w = _convgrad_data(xs, ws)
    fc.config.update("conv_force_algorithm", algorithm)
    step = _funconv_convgrad(x, w, pad, 1)
    step()  # compile, plans, malloc tuning
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    out = step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    print("RESULT " + json.dumps({"peak_mb": peak / 2**20}))


def memory_report() -> None:
    print("peak extra memory of one jitted value+grads call (tracemalloc, NumPy allocations)")
    algorithms = ("fft", "tiled_fft", "im2col")
    print(f"{'workload':<10}" + "".join(f" {a:>10}" for a in algorithms))
    for case in MEMORY_CASES:
        row = []
        for algorithm in algorithms:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-worker", case, algorithm]
            r = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
            if r.returncode != 0 or not lines:
                print(f"  {case}/{algorithm} failed: {(r.stderr or r.stdout).strip()[-300:]}",
                      file=sys.stderr)
                row.append("-")
            else:
                row.append(f"{json.loads(lines[-1][7:])['peak_mb']:.1f} MB")
        print(f"{case:<10}" + "".join(f" {v:>10}" for v in row))


# --- the table -----------------------------------------------------------------------------------

WORKLOADS = {
    "dispatch": (dispatch, "jitted grad of sum(tanh(W@x)), W f32[10,10]"),
    "conv3x3": (conv3x3, "value+grads of sum(conv(x,w)^2), x f32[16,64,32,32], w 64x64x3x3"),
    "lenet": (lenet, "jitted SGD step, LeNet-5-like, batch f32[64,1,28,28]"),
    "conv11": (_convgrad((4, 8, 128, 128), (8, 8, 11, 11), 5),
               "value+grads of sum(conv(x,w)^2), x f32[4,8,128,128], w 8x8x11x11, padding 5"),
    "blur31": (blur31, "512x512 image * 31x31 Gaussian, padding 15, forward"),
    "blur31_const": (blur31_const, "blur31 with the kernel closed over (a compile-time constant)"),
    "blur3d": (blur3d, "128^3 volume * 15^3 Gaussian (closed over), padding 7, forward"),
    "conv1d": (_convgrad((1, 16, 65536), (16, 16, 1025), 512),
               "value+grads, x f32[1,16,65536], w f32[16,16,1025], padding 512"),
    "dw31": (_convgrad((8, 64, 64, 64), (64, 1, 31, 31), 15, groups=64),
             "value+grads, x f32[8,64,64,64], w f32[64,1,31,31], groups 64, padding 15"),
}
OPENCL = "opencl"  # funconv with backend="opencl": a library column of its own


def lenet_compile(repeat: int):
    """Seconds from the first call of the jitted LeNet step to its result (trace, passes,
    compile, one run), in this process: with a fresh POCL_CACHE_DIR it is the cold compile."""
    import time

    params, x, y = _lenet_data()
    t0 = time.perf_counter()
    run = lenet_funconv(params, x, y)
    run()
    return {"ms": (time.perf_counter() - t0) * 1e3}


def _fmt(ms):
    if ms is None:
        return "-"
    return f"{ms * 1e3:.1f} us" if ms < 1 else f"{ms:.2f} ms"


def worker(workload: str, lib: str, repeat: int) -> None:
    """Child process: measure one (workload, library) pair, print one JSON line."""
    if lib == OPENCL:
        fc.config.update("backend", "opencl")
        lib = "funconv"
    if workload == "lenet_compile":
        res = lenet_compile(repeat)
    else:
        res = WORKLOADS[workload][0](lib, repeat)
    if res is not None:
        mod = {"funconv": "funconv", "pytorch": "torch", "jax": "jax", "scipy": "scipy",
               "ndimage": "scipy"}[lib]
        res["version"] = sys.modules[mod].__version__
    print("RESULT " + json.dumps(res))


def _thread_env(threads: int | None) -> dict:
    """The environment of a child: with `threads`, every library's pools capped to that size."""
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POCL_MAX_PTHREAD_COUNT"):
            env[var] = str(threads)  # NumPy's BLAS, PyTorch's OpenMP/MKL and PoCL read these at start
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
    return env


def _measure(workload: str, lib: str, repeat: int, threads: int | None = None, env=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", workload, lib, "--repeat", str(repeat)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**_thread_env(threads), **(env or {})})
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        print(f"  {workload}/{lib} failed: {' | '.join(tail)}", file=sys.stderr)
        return None
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run every funconv benchmark and print one table.")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per workload (median)")
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    ap.add_argument("--threads", type=int, default=None,
                    help="cap every library's thread pools (default: each library's own default); "
                         "--threads 1 gives steadier numbers on a busy machine")
    ap.add_argument("--memory", action="store_true",
                    help="report the peak extra memory of FFT, tiled FFT and im2col (conv11, conv1d) instead")
    ap.add_argument("--plans", action="store_true",
                    help="print conv3x3's convolution candidates with measured planning instead")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every (workload, library) pair this many times, the libraries "
                         "interleaved, and report the median round (steadier on a shared machine)")
    ap.add_argument("--backend", choices=["numpy", "opencl"], default="numpy",
                    help="opencl: also run funconv on its OpenCL backend (column 'opencl') and "
                         "time the LeNet step's cold and warm compile")
    ap.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "LIBRARY"), help=argparse.SUPPRESS)
    ap.add_argument("--memory-worker", nargs=2, metavar=("CASE", "ALGORITHM"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(*args.worker, args.repeat)
    if args.memory_worker:
        return memory_worker(*args.memory_worker)
    if args.memory:
        return memory_report()
    if args.plans:
        return plans_report()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")

    peers = ((OPENCL,) if args.backend == "opencl" else ()) + PEERS
    results, versions = {}, {"python": platform.python_version(), "numpy": np.__version__}
    for name in names:
        print(f"running {name}: {WORKLOADS[name][1]} ...", file=sys.stderr, flush=True)
        results[name] = {}
        runs: dict[str, list] = {}
        for _ in range(max(1, args.rounds)):
            for lib in ("funconv",) + peers:
                if lib == "ndimage" and name not in NDIMAGE_WORKLOADS:
                    continue
                res = _measure(name, lib, args.repeat, args.threads)
                if res is not None:
                    runs.setdefault(lib, []).append(res)
        for lib in ("funconv",) + peers:
            rs = runs.get(lib)
            results[name][lib] = None if not rs else float(np.median([r["ms"] for r in rs]))
            res = rs[0] if rs else None
            if res is not None and lib != OPENCL:
                versions[lib] = res["version"]
            if res is not None and "check" in res:
                ref = results[name].setdefault("_check", res["check"])
                if abs(res["check"] - ref) > 1e-4 * abs(ref):
                    print(f"WARNING {name}: first-step loss {res['check']} in {lib} differs "
                          f"from funconv's {ref}", file=sys.stderr)

    head = f"{'workload':<12} {'funconv':>10} " + " ".join(f"{p:>10}" for p in peers) + "   " + \
        " ".join(f"{'fc/' + p:>10}" for p in peers)
    threads = f"threads capped at {args.threads}" if args.threads else "default threads"
    rounds = f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"\nmedian time per call ({os.cpu_count()} CPUs, {threads}{rounds}; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()) + ")")
    print(head)
    print("-" * len(head))
    for name in names:
        r = results[name]
        ratios = []
        for p in peers:
            ok = r.get(p) is not None and r.get("funconv") is not None
            ratios.append(f"{r['funconv'] / r[p]:>9.2f}x" if ok else f"{'-':>10}")
        print(f"{name:<12} {_fmt(r.get('funconv')):>10} "
              + " ".join(f"{_fmt(r.get(p)):>10}" for p in peers) + "   " + " ".join(ratios))
    print("fc/peer: funconv's time over the peer's (below 1: funconv is faster); "
          "'-': not installed, or no such implementation")
    if args.backend == "opencl":
        print("opencl: funconv with backend='opencl' (fc/opencl above 1: the OpenCL backend is faster)")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="funconv-pocl-cache-") as cache:
            env = {"POCL_CACHE_DIR": cache}
            cold = _measure("lenet_compile", OPENCL, 1, args.threads, env)
            warm = _measure("lenet_compile", OPENCL, 1, args.threads, env)
        results["lenet_compile"] = {"cold": cold and cold["ms"], "warm": warm and warm["ms"]}
        print(f"opencl LeNet step, first call (trace + compile + one run): cold cache "
              f"{_fmt(cold and cold['ms'])}, warm cache {_fmt(warm and warm['ms'])}")
    return results


if __name__ == "__main__":
    main()
