"""Per-call overhead of a compiled training-style step: the gradient of
sum(tanh(W @ x)) with respect to W, W 10x10 and x 10 (float32).

The arrays are tiny, so this measures dispatch: argument handling, the cache
lookup and the generated code's own overhead. Prints the median microseconds
per call for funconv's jit (and, when importable, JAX jit, PyTorch eager and
HIPS autograd) measured in the same run. Printed, not asserted.

    python bench/dispatch.py [--calls 20000] [--repeats 7] [--profile]

`--profile` also prints a cProfile of funconv's call path.
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


def bench_jax(W, x, calls, repeats):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    step = jax.jit(jax.grad(lambda W, x: jnp.tanh(W @ x).sum()))
    Wj, xj = jnp.asarray(W), jnp.asarray(x)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    W = rng.standard_normal((10, 10)).astype(np.float32)
    x = rng.standard_normal(10).astype(np.float32)

    fc_us, step, fargs = bench_funconv(W, x, args.calls, args.repeats)
    rows = [("funconv jit (numpy backend)", fc_us),
            ("JAX jit", bench_jax(W, x, args.calls, args.repeats)),
            ("PyTorch eager", bench_torch(W, x, max(args.calls // 10, 100), args.repeats)),
            ("HIPS autograd", bench_autograd(W, x, max(args.calls // 10, 100), args.repeats))]
    print("grad of sum(tanh(W @ x)), W f32[10,10], x f32[10]: median us per call")
    for name, us in rows:
        print(f"  {name:<30} {'not installed' if us is None else f'{us:8.2f} us'}")
    if args.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        for _ in range(args.calls):
            step(*fargs)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
