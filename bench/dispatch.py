"""Per-call overhead of a compiled training-style step: the gradient of
sum(tanh(W @ x)) with respect to W, W 10x10 and x 10 (float32).

The arrays are tiny, so this measures dispatch: argument handling, the cache
lookup and the generated code's own overhead. Prints the median microseconds
per call for funconv's jit (and, when importable, JAX jit, PyTorch eager and
HIPS autograd) measured in the same run; funconv and JAX also with x passed
as a NumPy array (a data batch fed each step). Printed, not asserted.

Also prints the compile time (trace + passes + code generation, no run) of a
jitted SGD step of a LeNet-style CNN (batch 32, 1x28x28), best of 3.

    python bench/dispatch.py [--calls 20000] [--repeats 7] [--profile] [--cnn]

`--profile` also prints a cProfile of funconv's call path; `--cnn` splits the
time of a jitted SGD step of a small CNN between jit's call path, the
generated code and the impls it calls.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def median_us(fn, calls: int, repeats: int) -> float:
    """Median over `repeats` batches of the mean time of one call, in microseconds."""
    for _ in range(min(calls, 1000)):  # warm up (and compile)
        fn()
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(per_call)


def bench_funconv(W, x, calls, repeats):
    import funconv as fc

    step = fc.jit(fc.grad(lambda W, x: fc.tanh(W @ x).sum()))
    Wa, xa = fc.array(W), fc.array(x)
    g = np.asarray(step(Wa, xa))
    ref = np.outer(1 - np.tanh(W @ x) ** 2, x)
    assert np.allclose(g, ref, rtol=1e-5, atol=1e-6)
    return median_us(lambda: step(Wa, xa), calls, repeats), step, (Wa, xa)


def bench_funconv_numpy(W, x, calls, repeats):
    """The same step with x a NumPy array (a data batch fed every step), W an Array."""
    import funconv as fc

    step = fc.jit(fc.grad(lambda W, x: fc.tanh(W @ x).sum()))
    Wa = fc.array(W)
    ref = np.outer(1 - np.tanh(W @ x) ** 2, x)
    assert np.allclose(np.asarray(step(Wa, x)), ref, rtol=1e-5, atol=1e-6)
    return median_us(lambda: step(Wa, x), calls, repeats)


def bench_jax(W, x, calls, repeats, numpy_x=False):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    step = jax.jit(jax.grad(lambda W, x: jnp.tanh(W @ x).sum()))
    Wj, xj = jnp.asarray(W), (x if numpy_x else jnp.asarray(x))
    # block_until_ready: JAX dispatches asynchronously; wait, as the NumPy path does
    return median_us(lambda: step(Wj, xj).block_until_ready(), calls, repeats)


def bench_torch(W, x, calls, repeats):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    Wt, xt = torch.tensor(W, requires_grad=True), torch.tensor(x)

    def step():
        (g,) = torch.autograd.grad(torch.tanh(Wt @ xt).sum(), Wt)
        return g

    return median_us(step, calls, repeats)


def bench_autograd(W, x, calls, repeats):
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None
    step = autograd.grad(lambda W, x: anp.tanh(anp.dot(W, x)).sum())
    return median_us(lambda: step(W, x), calls, repeats)


def compile_lenet_s(repeats: int = 3) -> float:
    """Best-of-`repeats` seconds to trace, optimise and generate a LeNet SGD step."""
    import funconv as fc

    rng = np.random.default_rng(0)

    def w(*shape):
        return fc.array(rng.standard_normal(shape).astype(np.float32) * 0.1)

    params = {"c1": w(6, 1, 5, 5), "b1": w(6), "c2": w(16, 6, 5, 5), "b2": w(16),
              "w3": w(256, 120), "b3": w(120), "w4": w(120, 84), "b4": w(84),
              "w5": w(84, 10), "b5": w(10)}
    x = w(32, 1, 28, 28)
    y = fc.array(rng.integers(0, 10, 32).astype(np.int32))

    def loss(p, x, y):
        h = fc.max_pool(fc.nn.relu(fc.conv(x, p["c1"]) + p["b1"][:, None, None]), 2)
        h = fc.max_pool(fc.nn.relu(fc.conv(h, p["c2"]) + p["b2"][:, None, None]), 2)
        h = fc.nn.relu(h.reshape(x.shape[0], -1) @ p["w3"] + p["b3"])
        h = fc.nn.relu(h @ p["w4"] + p["b4"])
        return fc.nn.cross_entropy(h @ p["w5"] + p["b5"], y)

    best = float("inf")
    for _ in range(repeats):
        step = fc.jit(lambda p, x, y: fc.tree.map(lambda a, g: a - 0.1 * g, p,
                                                  fc.grad(loss)(p, x, y)))
        t0 = time.perf_counter()
        step.lower(params, x, y)
        best = min(best, time.perf_counter() - t0)
    return best


def cnn_step_profile(batch: int = 32, steps: int = 100) -> None:
    """Where one jitted SGD step of a small CNN spends its time, by cProfile.

    conv(1->8, 3x3, SAME) -> relu -> max_pool 2 -> conv(8->16) -> relu -> max_pool 2 ->
    dense(784->10) -> cross_entropy; x a NumPy batch (batch, 1, 28, 28), labels int32.
    Prints ms per step (unprofiled), then the profiled split: jit's call path (outside the
    generated function), the generated function's own lines (which include the inlined
    NumPy ufuncs: cProfile does not see ufunc calls), and each function it calls.

    On a small shared machine run it with OPENBLAS_NUM_THREADS=1: with BLAS threads
    competing for 2 busy cores the conv matmuls were measured 5-35x slower (20-176 ms per
    step instead of 4.7 ms), which drowns everything else.
    """
    import cProfile
    import pstats

    import funconv as fc

    rng = np.random.default_rng(0)

    def w(*shape):
        return fc.array(rng.standard_normal(shape).astype(np.float32) * 0.1)

    params = {"c1": w(8, 1, 3, 3), "b1": w(8), "c2": w(16, 8, 3, 3), "b2": w(16),
              "w3": w(16 * 7 * 7, 10), "b3": w(10)}

    def loss(p, x, y):
        h = fc.max_pool(fc.nn.relu(fc.conv(x, p["c1"], padding="SAME") + p["b1"][:, None, None]), 2)
        h = fc.max_pool(fc.nn.relu(fc.conv(h, p["c2"], padding="SAME") + p["b2"][:, None, None]), 2)
        return fc.nn.cross_entropy(h.reshape(x.shape[0], -1) @ p["w3"] + p["b3"], y)

    step = fc.jit(lambda p, x, y: fc.tree.map(lambda a, g: a - 0.1 * g, p, fc.grad(loss)(p, x, y)))
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    params = step(params, x, y)
    fname = step.lower(params, x, y).executable.filename
    t0 = time.perf_counter()
    for _ in range(steps):
        params = step(params, x, y)
    ms = (time.perf_counter() - t0) / steps * 1e3
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        params = step(params, x, y)
    pr.disable()
    stats = pstats.Stats(pr).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    gen = next(k for k in stats if k[0] == fname)
    total = sum(v[3] for k, v in stats.items() if k[2] == "__call__" and k[0].endswith("jit.py"))
    gen_cum, gen_self = stats[gen][3], stats[gen][2]
    rows = [(v[4][gen][3], f"{k[2]} ({k[0].rsplit('/', 1)[-1]}:{k[1]})" if k[1] else k[2])
            for k, v in stats.items() if gen in v[4]]
    print(f"\njitted SGD step of a small CNN, batch {batch}: {ms:.2f} ms per step "
          f"(profiled: {total / steps * 1e3:.2f} ms)")
    print(f"  {'jit call path (outside the generated code)':<58} "
          f"{(total - gen_cum) / steps * 1e3:7.3f} ms  {(total - gen_cum) / total:6.1%}")
    print(f"  {'generated code: own lines (incl. inlined ufuncs)':<58} "
          f"{gen_self / steps * 1e3:7.3f} ms  {gen_self / total:6.1%}")
    for t, name in sorted(rows, reverse=True)[:12]:
        print(f"  {'  ' + name:<58} {t / steps * 1e3:7.3f} ms  {t / total:6.1%}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--cnn", action="store_true",
                    help="also profile a jitted SGD step of a small CNN (batch 32)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    W = rng.standard_normal((10, 10)).astype(np.float32)
    x = rng.standard_normal(10).astype(np.float32)

    fc_us, step, fargs = bench_funconv(W, x, args.calls, args.repeats)
    rows = [("funconv jit (numpy backend)", fc_us),
            ("JAX jit", bench_jax(W, x, args.calls, args.repeats)),
            ("funconv jit, x a NumPy array", bench_funconv_numpy(W, x, args.calls, args.repeats)),
            ("JAX jit, x a NumPy array", bench_jax(W, x, args.calls, args.repeats, True)),
            ("PyTorch eager", bench_torch(W, x, max(args.calls // 10, 100), args.repeats)),
            ("HIPS autograd", bench_autograd(W, x, max(args.calls // 10, 100), args.repeats))]
    print("grad of sum(tanh(W @ x)), W f32[10,10], x f32[10]: median us per call")
    for name, us in rows:
        print(f"  {name:<30} {'not installed' if us is None else f'{us:8.2f} us'}")
    try:
        print(f"compile (trace + passes + codegen) of a LeNet SGD step: {compile_lenet_s():.3f} s")
    except NotImplementedError as e:  # convolution or pooling not available yet
        print(f"compile of a LeNet SGD step: skipped ({e})")
    if args.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        for _ in range(args.calls):
            step(*fargs)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(12)
    if args.cnn:
        cnn_step_profile()


if __name__ == "__main__":
    main()
