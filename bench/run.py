"""Run every benchmark and print one table of medians.

Workloads (all float32, CPU):

* dispatch: the jitted gradient of sum(tanh(W @ x)), W 10x10 (per-call
  overhead; reuses bench/dispatch.py).
* conv3x3:  value and both gradients of sum(conv(x, w)**2), x 16x64x32x32,
  w 64x64x3x3, padding 1 (reuses bench/conv.py).
* lenet:    one jitted SGD step of conv(1->16, 5x5)-relu-maxpool2-
  conv(16->32, 5x5)-relu-maxpool2-dense(512->10)-cross-entropy on a batch
  f32[64,1,28,28] (forward, backward and the parameter update).

Each workload runs in funconv (jit, NumPy backend) and, when importable, in
PyTorch (eager, default threads), JAX (jit) and SciPy (conv3x3 only: FFT
convolutions with scipy.signal.fftconvolve). Every (workload, library) pair
runs in a child process of this one (one process group; Ctrl-C stops all):
libraries that leave spinning thread pools behind (OpenMP, XLA) would
otherwise slow down whoever is measured after them on a 2-core machine.

The ratio columns are funconv's time divided by the peer's: below 1 means
funconv is faster. Medians of `--repeat` timed runs after warm-up
(compilation excluded). The lenet runs must agree on the first step's loss
(a warning says when not). Nothing is asserted.

* conv11:   value and both gradients of sum(conv(x, w)**2), x 4x8x128x128, w 8x8x11x11,
  padding 5 (a large kernel on few channels).

With `--backend opencl`, funconv also runs with its OpenCL backend (PoCL on the CPU, or
the device FUNCONV_OPENCL_DEVICE names), in its own child process, as the column
`opencl` next to the NumPy backend's `funconv`, and the table ends with the cold-cache and
warm-cache compile time of the LeNet step (cold: a fresh POCL_CACHE_DIR in the child;
warm: a second child on that same directory).

Run: python bench/run.py [--repeat 30] [--only lenet,conv3x3,dispatch,conv11] [--threads 1]
     [--backend opencl] [--rounds 3]
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
from conv import median_ms  # noqa: E402

PEERS = ("pytorch", "jax", "scipy")


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
    """Value and both gradients of sum(conv(x, w, padding=1)**2) with FFT convolutions."""
    from scipy.signal import fftconvolve

    H, W = x.shape[2:]
    kh, kw = w.shape[2:]

    def step():
        # mode="full" everywhere: "same"/"valid" would size the result by the first operand's
        # shape on the broadcast (non-convolved) axes too. Correlation = convolution with the
        # flipped kernel; padding 1 of a 3x3 kernel keeps the centre of the full result.
        full = fftconvolve(x[:, None], w[None, :, :, ::-1, ::-1], axes=(-2, -1))
        y = full[..., kh // 2:kh // 2 + H, kw // 2:kw // 2 + W].sum(2)  # (N, O, H, W)
        ct = 2 * y
        full = fftconvolve(ct[:, :, None], w[None], axes=(-2, -1))
        x_ct = full[..., kh // 2:kh // 2 + H, kw // 2:kw // 2 + W].sum(1)  # (N, C, H, W)
        xp = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
        full = fftconvolve(xp[:, None], ct[:, :, None, ::-1, ::-1], axes=(-2, -1))
        w_ct = full[..., H - 1:H - 1 + kh, W - 1:W - 1 + kw].sum(0)  # (O, C, kh, kw)
        return (y * y).sum(), x_ct, w_ct

    return step


def conv3x3(lib: str, repeat: int):
    import conv as c  # bench/conv.py

    rng = np.random.default_rng(0)
    x = rng.standard_normal((c.N, c.C, c.H, c.W)).astype(np.float32)
    w = (rng.standard_normal((c.O, c.C, c.K, c.K)) / np.sqrt(c.C * c.K * c.K)).astype(np.float32)
    reps = max(3, repeat // 3)  # each run is ~0.03-5 s
    makers = {"funconv": c.funconv_jit, "pytorch": c.torch_step, "jax": c.jax_step,
              "scipy": lambda x, w: (__import__("scipy.signal"), _scipy_conv3x3(x, w))[1]}
    step = _try(lambda: makers[lib](x, w))
    return None if step is None else {"ms": median_ms(step, reps, warmup=1)}


def conv11(lib: str, repeat: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 128, 128)).astype(np.float32)
    w = (rng.standard_normal((8, 8, 11, 11)) / np.sqrt(8 * 121)).astype(np.float32)
    reps = max(3, repeat // 3)
    if lib == "funconv":
        def loss(x, w):
            y = fc.conv(x, w, padding=5)
            return (y * y).sum()

        f = fc.jit(fc.value_and_grad(loss, argnums=(0, 1)))
        xa, wa = fc.asarray(x), fc.asarray(w)

        def step():
            v, (gx, gw) = f(xa, wa)
            return np.asarray(gw)
    elif lib == "pytorch":
        def make():
            import torch

            xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)

            def run():
                y = torch.nn.functional.conv2d(xt, wt, padding=5)
                v = (y * y).sum()
                return torch.autograd.grad(v, (xt, wt))
            return run
        step = _try(make)
    elif lib == "jax":
        def make():
            import jax

            def loss(x, w):
                y = jax.lax.conv_general_dilated(x, w, (1, 1), ((5, 5), (5, 5)))
                return (y * y).sum()
            g = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            return lambda: jax.block_until_ready(g(x, w))
        step = _try(make)
    else:
        return None
    return None if step is None else {"ms": median_ms(step, reps, warmup=1)}


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


# --- the table -----------------------------------------------------------------------------------

WORKLOADS = {
    "dispatch": (dispatch, "jitted grad of sum(tanh(W@x)), W f32[10,10]"),
    "conv3x3": (conv3x3, "value+grads of sum(conv(x,w)^2), x f32[16,64,32,32], w 64x64x3x3"),
    "lenet": (lenet, "jitted SGD step, LeNet-5-like, batch f32[64,1,28,28]"),
    "conv11": (conv11, "value+grads of sum(conv(x,w)^2), x f32[4,8,128,128], w 8x8x11x11, pad 5"),
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
        mod = {"funconv": "funconv", "pytorch": "torch", "jax": "jax", "scipy": "scipy"}[lib]
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
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every (workload, library) pair this many times, the libraries "
                         "interleaved, and report the median round (steadier on a shared machine)")
    ap.add_argument("--backend", choices=["numpy", "opencl"], default="numpy",
                    help="opencl: also run funconv on its OpenCL backend (column 'opencl') and "
                         "time the LeNet step's cold and warm compile")
    ap.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "LIBRARY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(*args.worker, args.repeat)
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

    head = f"{'workload':<10} {'funconv':>10} " + " ".join(f"{p:>10}" for p in peers) + "   " + \
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
        print(f"{name:<10} {_fmt(r.get('funconv')):>10} "
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
