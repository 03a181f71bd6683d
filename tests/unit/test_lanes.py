"""Two lanes on the NumPy backend (backends/numpy/lanes.py): a jitted graph with
independent FFT branches runs some heavy nodes on a second thread, with the same results
as sequential code and as the interpreter, and never lets another node write into a buffer
a worker node may still read."""

from __future__ import annotations

import re

import numpy as np
import pytest

import funconv as fc
from funconv.backends.interpreter import evaluate

rng = np.random.default_rng(0)


@pytest.fixture
def fft_convs():
    fc.config.update("conv_force_algorithm", "fft")
    yield
    fc.config.update("conv_force_algorithm", None)
    fc.config.update("lanes", True)


def _step():
    return fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=5) ** 2).sum(),
                                    argnums=(0, 1)))


def _args(dtype=np.float64):
    return (rng.standard_normal((4, 8, 64, 64)).astype(dtype),
            (rng.standard_normal((8, 8, 11, 11)) / 30).astype(dtype))


def test_a_training_step_runs_its_independent_branches_on_two_lanes(fft_convs):
    x, w = _args()
    f = _step()
    src = f.lower(x, w).source
    submitted = re.findall(r"(t\d+)_f = _submit\(", src)
    assert len(submitted) >= 2  # (the input's transform beside the kernel's; dx beside dw)
    for t in submitted:  # each result is collected before it is read, once
        assert src.count(f"{t} = {t}_f.result()") == 1
        assert src.index(f"{t}_f = _submit(") < src.index(f"{t} = {t}_f.result()")
    got = f(x, w)
    fc.config.update("lanes", False)
    seq = _step()
    assert "_submit" not in seq.lower(x, w).source
    want = seq(x, w)
    graph = fc.make_graph(lambda x, w: (fc.conv(x, w, padding=5, algorithm="direct") ** 2).sum())
    for a, b in zip(fc.tree.leaves(got), fc.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-9)
    (value,) = evaluate(graph(x, w), (x, w))
    np.testing.assert_allclose(np.asarray(got[0]), value, rtol=1e-10)
    profile = f.profile(x, w)
    text = str(profile)
    assert "one per thread" in text and "(waits for the second thread)" in text
    # a node on the second thread is timed there: its row is its run, not its submission
    fft_rows = [r for r in profile.rows if r.node.startswith("fft ")]
    worker = [r for r in fft_rows if "(on the second thread)" in r.node]
    main = [r for r in fft_rows if "second thread" not in r.node]
    assert worker and main
    assert max(r.ms for r in worker) > 0.2 * max(r.ms for r in main)


def test_no_buffer_a_worker_reads_is_written_in_place(fft_convs):
    """Every name bound into a worker's lambda is never an out= target afterwards."""
    checked = reuses = 0
    for padding, groups, shapes in ((5, 1, ((4, 8, 64, 64), (8, 8, 11, 11))),
                                    (7, 4, ((2, 4, 48, 48), (4, 1, 15, 15))),
                                    (0, 1, ((1, 3, 300), (5, 3, 65)))):
        x = rng.standard_normal(shapes[0])
        w = rng.standard_normal(shapes[1])

        def loss(x, w, padding=padding, groups=groups):
            y = fc.conv(x, w, padding=padding, groups=groups)
            return (fc.tanh(y) * y + 1.0).sum()

        src = fc.jit(fc.value_and_grad(loss, argnums=(0, 1))).lower(x, w).source
        reuses += src.count("out=")
        lines = src.splitlines()
        for i, line in enumerate(lines):
            m = re.search(r"_submit\(lambda ([^:]*):", line)
            if m:
                bound = [b.split("=")[0].strip() for b in m.group(1).split(",")]
                checked += 1
                for later in lines[i + 1:]:
                    for b in bound:
                        assert f"out={b})" not in later and f"out={b}," not in later
    assert checked >= 2 and reuses > 0  # (nodes do run on the worker, buffers are reused)


def _windows(src: str):
    """Per node run on the worker: its line, and the main thread's lines while it runs
    (from its submission to the collection of its result)."""
    lines = src.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*(t\d+)_f = _submit\(", line)
        if m:
            t = m.group(1)
            j = next(j for j in range(i, len(lines)) if f"{t} = {t}_f.result()" in lines[j])
            yield line, lines[i + 1:j]


def test_gemms_of_tiny_products_never_run_beside_another(fft_convs):
    """OpenBLAS calls from two threads contend (lanes.py): while the worker runs a GEMM,
    the main thread runs none when either is a batch of tiny products (these mixings: 4x8
    and 8x4 by 8x8 complex); the training step's two mixings run one after the other,
    and the input gradient's inverse transform runs beside the weight gradient's GEMMs,
    its result collected only when the main thread is done with them."""
    from funconv.backends.numpy import lanes

    assert 2 * 4 * 8 * 8 * 4 < lanes.TINY_FLOPS
    gemm = re.compile(r"_(batched_)?matmul\(")
    for xs, ws in (((4, 8, 128, 128), (8, 8, 11, 11)), ((2, 16, 96, 96), (16, 16, 9, 9))):
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        src = _step().lower(x, w).source
        for line, meanwhile in _windows(src):
            if gemm.search(line.split("# ")[0]):
                assert not any(gemm.search(m.split("# ")[0]) for m in meanwhile), line
        beside_gemms = [m for line, m in _windows(src)
                        if "irfft" in line and sum(bool(gemm.search(k)) for k in m) >= 2]
        assert beside_gemms, src  # (dx's inverse beside dw's mixing and DFT GEMM)


def test_lanes_stay_off_where_they_do_not_pay(fft_convs):
    x, w = _args()
    one_chain = fc.jit(lambda x: fc.fft.irfft2(fc.fft.rfft2(x) * 2.0))
    assert "_submit" not in one_chain.lower(x).source
    small = fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=1) ** 2).sum()))
    assert "_submit" not in small.lower(x[:1, :2, :8, :8], w[:2, :2, :3, :3]).source
    fc.config.update("conv_force_algorithm", None)  # im2col: BLAS is parallel already
    im2col = _step()
    assert "_submit" not in im2col.lower(x, w[:, :, :3, :3]).source


_FORK_SCRIPT = """
import os, sys, numpy as np, funconv as fc
fc.config.update("conv_force_algorithm", "fft")
rng = np.random.default_rng(0)
x, w = rng.standard_normal((4, 8, 64, 64)), rng.standard_normal((8, 8, 11, 11)) / 30
step = lambda: fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, padding=5) ** 2).sum(),
                                        argnums=(0, 1)))(x, w)[0]
want = np.asarray(step())  # the parent's worker thread exists now
pid = os.fork()
if pid == 0:
    ok = False
    try:
        ok = bool(np.allclose(np.asarray(step()), want))
    finally:
        os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_runs_lanes_too():
    """After fork the child has no worker thread: lanes start a fresh one there (a stale
    pool would leave the child waiting forever). In a fresh process, so that no other
    library's threads are around the fork; a hang fails after 120 s."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], timeout=120, check=False,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
