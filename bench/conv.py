"""Benchmark conv3x3: the value and both gradients of sum(conv(x, w)**2).

x f32[16,64,32,32], w f32[64,64,3,3], padding 1 (a training step's three
convolutions: forward, input gradient, weight gradient, 3.6 GFLOP in all).
Times eager funconv, jitted funconv (once `fc.jit` exists), and PyTorch and
JAX when they are importable, all in the same run, and NumPy's float32 matmul
for the bound. Prints median milliseconds, effective GFLOP/s and the share of
NumPy's matmul throughput. Nothing is asserted.

Run: python bench/conv.py [--repeat 20] [--threads N] [--calls]

`--calls` instead times each convolution of the conv3x3 step and of the
LeNet step of bench/run.py (its two conv layers) on its own: shapes,
parameters, the NumPy impl's algorithm and median milliseconds.

`--threads N` pins every library to N threads (OpenBLAS, PyTorch, XLA): a
fairer comparison on a machine shared with other work, where BLAS threads
that wait for a busy core lose more than they gain.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="threads per library (0: their default)")
    ap.add_argument("--calls", action="store_true", help="time each convolution of the steps")
    args = ap.parse_args()
    if args.threads:
        # must be set before NumPy / PyTorch / JAX load their thread pools
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                   + ("false" if args.threads == 1 else "true")
                                   + f" intra_op_parallelism_threads={args.threads}")
    return args


ARGS = _parse_args() if __name__ == "__main__" else None

import numpy as np

import funconv as fc

N, C, H, W, O, K = 16, 64, 32, 32, 64, 3
# one convolution: 2 flops per multiply-add, N*O*H*W outputs of C*K*K taps each
FLOP_PER_CONV = 2 * N * O * H * W * C * K * K
FLOP = 3 * FLOP_PER_CONV  # forward, input gradient, weight gradient


def median_ms(f, repeat: int, warmup: int = 2, budget_s: float | None = None) -> float:
    """The median of `repeat` timed calls of f after `warmup` untimed ones, in ms; with
    `budget_s`, timing stops once that many seconds have passed and 3 calls are timed (slow
    steps get fewer samples, fast ones all `repeat`)."""
    for _ in range(warmup):
        f()
    ts = []
    start = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
        if budget_s is not None and len(ts) >= 3 and time.perf_counter() - start > budget_s:
            break
    return 1e3 * statistics.median(ts)


def matmul_gflops(repeat: int) -> float:
    """NumPy float32 matmul throughput on a square GEMM of the same order of work."""
    n = 1024
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ms = median_ms(lambda: a @ a, repeat)
    return 2 * n ** 3 / (ms * 1e-3) / 1e9


def loss(x, w):
    return (fc.conv(x, w, padding=1) ** 2).sum()


def funconv_eager(x, w):
    f = fc.value_and_grad(loss, argnums=(0, 1))
    xa, wa = fc.asarray(x), fc.asarray(w)
    return lambda: f(xa, wa)


def settled(step):
    """`step` after the calls that plan its BLAS threads (a jitted graph that calls BLAS
    times its first calls at one thread and at all cores: backends/numpy/threads.py); a
    benchmark of funconv times what comes after."""
    from funconv.backends.numpy.threads import PLANNING_CALLS

    for _ in range(PLANNING_CALLS):
        step()
    return step


def funconv_jit(x, w):
    try:
        f = fc.jit(fc.value_and_grad(loss, argnums=(0, 1)))
        xa, wa = fc.asarray(x), fc.asarray(w)
        f(xa, wa)
    except NotImplementedError:
        return None
    return settled(lambda: f(xa, wa))


def torch_step(x, w):
    try:
        import torch
    except ImportError:
        return None
    if ARGS is not None and ARGS.threads:
        torch.set_num_threads(ARGS.threads)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)

    def step():
        xt.grad = wt.grad = None
        v = (torch.nn.functional.conv2d(xt, wt, padding=1) ** 2).sum()
        v.backward()
        return v.item()

    return step


def jax_step(x, w):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None

    def jloss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)))
        return jnp.sum(y ** 2)

    f = jax.jit(jax.value_and_grad(jloss, argnums=(0, 1)))
    xj, wj = jnp.asarray(x), jnp.asarray(w)
    return lambda: jax.block_until_ready(f(xj, wj))


def lenet_convs(x, w1, w2):
    """The convolutions of bench/run.py's LeNet step (its loss reduced to a sum of squares)."""
    h = fc.max_pool(fc.nn.relu(fc.conv(x, w1)), 2)
    h = fc.max_pool(fc.nn.relu(fc.conv(h, w2)), 2)
    return (h ** 2).sum()


def conv_calls(repeat: int):
    """Time every conv_general node of the conv3x3 and LeNet gradient graphs on its own.

    The graph is evaluated node by node with the NumPy kernels (the operands of
    each convolution are laid out as in a real step: transposed views stay
    views); each conv node is then re-run `repeat` times.
    """
    from funconv.backends.numpy.kernels import conv as conv_mod

    from funconv.tracing import kernel

    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    steps = {
        "conv3x3": (loss, (f32(N, C, H, W), f32(O, C, K, K))),
        "lenet": (lenet_convs, (f32(64, 1, 28, 28), f32(16, 1, 5, 5), f32(32, 16, 5, 5))),
    }
    for name, (fn, args) in steps.items():
        # the gradients of a training step: w.r.t. x and w (conv3x3), the weights only (LeNet)
        grad = fc.value_and_grad(fn, argnums=(0, 1) if name == "conv3x3" else (1, 2))
        graph = fc.make_graph(grad)(*args)
        values = {id(i): a for i, a in zip(graph.inputs, args)}
        total = 0.0
        print(f"{name}:")
        for node in graph.nodes():
            if id(node) in values:
                continue
            if not hasattr(node, "prim"):  # a literal or constant
                values[id(node)] = np.asarray(node.value, dtype=node.dtype)
                continue
            vals = [values[id(a)] for a in node.args]
            values[id(node)] = kernel(node.prim)(*vals, **node.params)
            if node.prim is not conv_mod.conv_general_p:
                continue
            ms = median_ms(lambda n=node, v=vals: kernel(n.prim)(*v, **n.params), repeat)
            total += ms
            p = node.params
            osp = node.shape[2:]
            algo = conv_mod._algorithm(vals[0].shape, vals[1].shape, osp, p["window_strides"],
                                       p["padding"], p["lhs_dilation"], p["feature_group_count"])
            print(f"  {vals[0].shape!s:18s} * {vals[1].shape!s:18s} -> {node.shape!s:18s} "
                  f"stride {p['window_strides']} pad {p['padding']} lhs_dil {p['lhs_dilation']} "
                  f"rhs_dil {p['rhs_dilation']}: {algo.__name__:26s} {ms:6.2f} ms")
        print(f"  all convolutions: {total:.1f} ms")


def main():
    args = ARGS
    if args.calls:
        conv_calls(args.repeat)
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((O, C, K, K)) / np.sqrt(C * K * K)).astype(np.float32)

    peak = matmul_gflops(args.repeat)
    print(f"conv3x3: x f32[{N},{C},{H},{W}], w f32[{O},{C},{K},{K}], padding 1; "
          f"value and grad of sum(conv(x, w)**2): {FLOP / 1e9:.2f} GFLOP")
    print(f"threads per library: {args.threads or 'default'}; {os.cpu_count()} CPUs; "
          f"python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"numpy float32 matmul (1024^3): {peak:.1f} GFLOP/s -> bound {FLOP / peak / 1e6:.1f} ms")
    rows = [("funconv eager", funconv_eager(x, w)), ("funconv jit", funconv_jit(x, w)),
            ("pytorch", torch_step(x, w)), ("jax jit", jax_step(x, w))]
    for name, f in rows:
        if f is None:
            print(f"{name:15s} (not available)")
            continue
        ms = median_ms(f, args.repeat)
        gf = FLOP / (ms * 1e-3) / 1e9
        print(f"{name:15s} {ms:8.1f} ms  {gf:6.1f} GFLOP/s  {100 * gf / peak:5.1f}% of matmul")


if __name__ == "__main__":
    main()
