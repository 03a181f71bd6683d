"""Two lanes: independent heavy nodes of a jitted graph run on a second thread.

A training step's graph often holds independent branches: FFT convolution transforms the
input while it transforms the kernel, and computes the input gradient (a mixing and an
inverse transform) while it computes the weight gradient (another mixing, a DFT-matrix
GEMM, a small inverse). Each branch is a few large NumPy/SciPy calls that release the GIL,
so two threads can run two branches at once. Splitting each call over threads instead
(scipy.fft's `workers`, BLAS threads) helps little on a 2-core machine: pocketfft splits
its work statically, and a worker thread that starts late holds up the whole call, and
OpenBLAS's idle threads spin on the core the FFT wants (measured, conv11 of
bench/run.py, value and both gradients: 16 ms sequential, 12.6 ms with two lanes).

`plan(...)` decides at code generation time, by list scheduling on estimated costs
(passes/conv_cost.py's machine rates): the main thread runs the nodes in order, and a heavy
node (`MIN_ASYNC_S`) that is ready while at least as much other work remains for the main
thread goes to the worker thread, whose result the main thread collects when it is due or
needed. Only graphs that hold an FFT get lanes (im2col convolutions are BLAS-parallel
already), and only when the simulated time drops by `MIN_GAIN` (short steps, and steps
that are one chain of dependent nodes, keep their plain sequential code). While a
node runs on the worker, FFTs use one pocketfft worker each (`busy()`), and the graph's
BLAS runs on one thread (threads.py), so the two lanes do not oversubscribe the cores.

A batched GEMM of tiny products (`TINY_FLOPS`) never runs beside another GEMM: BLAS calls
from two threads of one process contend inside OpenBLAS, once per call, and such a GEMM
makes a call every ~100 ns. Measured: 9940 complex (4x8)@(8x8) products took 0.93 ms
alone, 0.97 ms beside another process doing the same, 3.1 ms beside another thread doing
the same, 1.3 ms beside 2059 (22x16)@(16x16) products (which were 1.5x slower too; beside
each other those ran at full speed), 2.9 ms beside a float32 512x512 GEMM. So the
schedule pairs such a GEMM with an FFT or a pad (conv11's training step: the input
gradient's and the weight gradient's mixings had run side by side, each 3 ms, not 1.1).
`fc.config.update("lanes", False)` turns this off. Imports numpy and the funconv core.
"""

from __future__ import annotations

import heapq
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import attrs

from funconv import config
from funconv.ir import Apply
from funconv.ops.conv import conv_general_p
from funconv.ops.fft import fft_p
from funconv.ops.linalg import dot_general_p
from funconv.ops.shape import broadcast_to_p, pad_p, reshape_p, slice_p, transpose_p

MIN_ASYNC_S = 200e-6  # a node cheaper than this is not worth a hand-off (~20-100 us)
MIN_GAIN = 0.1  # lanes only when they cut the simulated time by this share
# the nodes a lane may take (no out=, no warnings); a graph gets lanes only if it holds an
# FFT. Not convolutions: im2col's large GEMMs are parallel in BLAS already, and two lanes of
# one-thread BLAS lost to one lane of two threads (bench/run.py conv3x3: 33 ms against 29).
ASYNC_PRIMS = (fft_p, dot_general_p, pad_p)
VIEWS = (transpose_p, reshape_p, broadcast_to_p, slice_p)  # views in NumPy: free
# a batched GEMM whose products take fewer real flops than this each never runs beside
# another GEMM (see the module docstring: conv11's 2048-flop products contend, conv1d's
# 45056-flop ones do not)
TINY_FLOPS = 16384

_pool: ThreadPoolExecutor | None = None
_running = 0
_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the worker thread does not exist: start afresh (else a submitted
    node would wait forever for a thread that was never there)."""
    global _pool, _running, _lock
    _pool, _running, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def busy() -> bool:
    """Whether a node is running on the worker thread (FFT kernels then use one worker)."""
    return _running > 0


def submit(fn):
    """Run `fn()` on the worker thread; returns a Future (its result or its exception)."""
    global _pool, _running
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix="funconv-lane")
    with _lock:  # counted from submission, so the main thread's next FFT already sees it
        _running += 1
    try:
        return _pool.submit(_run_counted, fn)
    except BaseException:
        with _lock:
            _running -= 1
        raise


def _run_counted(fn):
    global _running
    try:
        return fn()
    finally:
        with _lock:
            _running -= 1


def cost(n: Apply) -> float:
    """Estimated seconds of node `n` on the NumPy backend, from the cost model's rates."""
    from funconv.passes import conv_cost

    r = conv_cost.rates()
    nbytes = n.type.size * n.type.dtype.itemsize + sum(
        a.type.size * a.type.dtype.itemsize for a in n.args)
    if n.prim is fft_p:
        length = math.prod(n.params["fft_lengths"])
        planes = max(n.args[0].type.size, n.type.size) / max(length, 1)
        return 2.5 * length * math.log2(max(length, 2)) * planes / r.fft
    if n.prim is dot_general_p:
        (xc, _), (xb, _) = n.params["dimension_numbers"]
        k = math.prod(n.args[0].type.shape[i] for i in xc)
        flops = 2 * n.type.size * k * (4 if n.type.dtype.kind == "c" else 1)
        return flops / (r.mixing if xb else r.gemm)
    if n.prim is conv_general_p:
        return conv_cost.im2col_seconds(n, r)
    if n.prim in VIEWS:
        return 0.0
    return nbytes / r.bandwidth


@attrs.frozen
class Plan:
    """The emission order, the nodes run on the worker (ids), and per position the ids of
    the worker results collected right before that position's node."""

    order: tuple
    on_worker: frozenset
    joins: dict


def plan(emitted: list, operands: dict) -> Plan | None:
    """Two-lane schedule of `emitted` (topological), or None when lanes do not pay.

    List scheduling on estimated costs: the main thread takes the first ready node in
    topological order that may run beside the worker's (`clash`: two GEMMs, one of tiny
    products); when the worker is free, a ready heavy node goes to it if the main thread
    has at least MIN_ASYNC_S of work meanwhile: remaining work that does not depend on it
    nor on a node it clashes with. Once the simulated clock passes the worker's finish, the main
    thread collects its result if that may give the worker new work (a heavy node is ready,
    or reads the result), else only when it needs the result: conv11's input gradient's
    inverse FFT then runs beside all of the weight gradient. About linear in the graph's
    size for few GEMMs (a ready heap; a node that fails the meanwhile test runs inline)."""
    if not config.lanes or len(emitted) < 3 or not any(n.prim is fft_p for n in emitted):
        return None
    k_of = {id(n): k for k, n in enumerate(emitted)}
    readers: list[list[int]] = [[] for _ in emitted]
    waiting = [0] * len(emitted)  # per node, its operands not yet readable
    for k, n in enumerate(emitted):
        for d in {k_of[id(a)] for a in operands[id(n)] if id(a) in k_of}:
            readers[d].append(k)
            waiting[k] += 1
    est = [cost(n) for n in emitted]
    gemm = [n.prim is dot_general_p for n in emitted]
    tiny = [g and _tiny_products(n) for g, n in zip(gemm, emitted)]

    def clash(a: int, b: int) -> bool:  # may not run side by side (module docstring)
        return gemm[a] and gemm[b] and (tiny[a] or tiny[b])

    heavy = [n.prim in ASYNC_PRIMS and e >= MIN_ASYNC_S for n, e in zip(emitted, est)]
    feeds_heavy = [False] * len(emitted)  # a heavy node reads it (through views)
    for k in reversed(range(len(emitted))):
        feeds_heavy[k] = any(heavy[r] or (emitted[r].prim in VIEWS and feeds_heavy[r])
                             for r in readers[k])
    sequential = sum(est)
    if sequential < 1e-3:  # a step this short: the hand-offs would cost more than they save
        return None

    def meanwhile(h: int) -> float:
        """The main thread's estimated work that can run while h runs on the worker: the
        nodes not yet placed that do not depend on h nor on a GEMM h clashes with (nor are
        one)."""
        starts = [h] + [g for g in gemms_left if g != h and clash(h, g)]
        seen, stack = set(starts), list(starts)
        while stack:
            for r in readers[stack.pop()]:
                if r not in seen:
                    seen.add(r)
                    stack.append(r)
        return left - sum(est[r] for r in seen)

    ready = [k for k in range(len(emitted)) if waiting[k] == 0]
    heapq.heapify(ready)
    left = sequential  # estimated time of the nodes not yet placed
    gemms_left = {k for k, g in enumerate(gemm) if g}  # the GEMMs not yet placed
    inline: set = set()  # heavy nodes that failed the meanwhile test
    order, on_worker, joins = [], set(), {}
    now, pending, finish = 0.0, None, 0.0

    def readable(k: int) -> None:  # k's result can be read: its readers may become ready
        for r in readers[k]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)

    def collect() -> None:
        nonlocal pending, now
        joins.setdefault(len(order), []).append(id(emitted[pending]))
        now = max(now, finish)
        readable(pending)
        pending = None

    def pick() -> int | None:  # the ready node for the worker, if one is worth it
        for h in sorted(ready):
            if heavy[h] and h not in inline:
                if meanwhile(h) >= MIN_ASYNC_S:
                    return h
                inline.add(h)
        return None

    while ready or pending is not None:
        # the worker is done: collect its result now if that may give it new work, else
        # when the main thread needs it
        if pending is not None and now >= finish and (feeds_heavy[pending] or pick() is not None):
            collect()
        h = pick() if pending is None else None
        if h is not None:
            ready.remove(h)
            heapq.heapify(ready)
            pending, finish = h, now + est[h]
            order.append(emitted[h])
            on_worker.add(id(emitted[h]))
            left -= est[h]
            gemms_left.discard(h)
        k = _next(ready, pending, clash)
        if k is None:  # everything left waits for the worker's node
            if pending is not None:
                collect()
            continue
        order.append(emitted[k])
        now += est[k]
        left -= est[k]
        gemms_left.discard(k)
        readable(k)
    if not on_worker or now > (1 - MIN_GAIN) * sequential:
        return None
    return Plan(tuple(order), frozenset(on_worker), joins)


def _tiny_products(n: Apply) -> bool:
    """Is the dot_general `n` a batched GEMM of products under TINY_FLOPS each?"""
    (xc, _), (xb, _) = n.params["dimension_numbers"]
    if not xb:
        return False
    batch = math.prod(n.args[0].type.shape[i] for i in xb)
    k = math.prod(n.args[0].type.shape[i] for i in xc)
    flops = 2 * (n.type.size // max(batch, 1)) * k * (4 if n.type.dtype.kind == "c" else 1)
    return flops < TINY_FLOPS


def _next(ready: list, pending: int | None, clash) -> int | None:
    """Pop the main thread's next node: the first ready one in topological order that does
    not clash with the worker's `pending` one (None: only clashing ones are ready: wait)."""
    if not ready:
        return None
    if pending is None or not clash(pending, ready[0]):
        return heapq.heappop(ready)
    others = [k for k in ready if not clash(pending, k)]
    if not others:
        return None
    k = min(others)
    ready.remove(k)
    heapq.heapify(ready)
    return k
