"""Speed under load: the LeNet step and conv3x3 quiet, and beside one and two busy processes.

On a small machine a training step shares its cores with whatever else runs (a test
suite, a data loader, a second experiment). Each (load, workload, library) is measured
in a child process of its own while this script keeps 0, 1 or 2 busy processes running
(pure Python spin loops, started here and ended here, each bounded by a deadline so
nothing outlives the run). Libraries: funconv with its measured BLAS threads ("auto",
backends/numpy/threads.py), funconv with BLAS fixed at all cores (the library default,
what funconv did before), and, when importable, PyTorch and JAX. Prints median
milliseconds per step. Nothing is asserted.

Run: python bench/load.py [--repeat 20] [--only lenet,conv3x3] [--loads 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmarks

LIBS = ("funconv", "funconv-allcores", "pytorch", "jax")
SPIN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


def child(workload: str, lib: str, repeat: int) -> None:
    """Measure one (workload, library) pair; print one JSON line."""
    import run  # bench/run.py: the workloads

    if lib.startswith("funconv"):
        import funconv as fc

        if lib == "funconv-allcores":
            from threadpoolctl import threadpool_info

            cores = max([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"],
                        default=1)
            fc.config.update("threads", cores)
        lib = "funconv"
    res = run.WORKLOADS[workload][0](lib, repeat)
    print(json.dumps(res))


def measure(workload: str, lib: str, repeat: int) -> float | None:
    out = subprocess.run([sys.executable, __file__, "--child", workload, lib, "--repeat", str(repeat)],
                         capture_output=True, text=True, timeout=900)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("{", "null"))]
    res = json.loads(lines[-1]) if lines else None
    return None if res is None else res["ms"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--only", default="lenet,conv3x3")
    ap.add_argument("--loads", default="0,1,2", help="numbers of busy processes to run beside")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "LIBRARY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.repeat)
        return
    workloads = args.only.split(",")
    loads = [int(n) for n in args.loads.split(",")]
    table: dict = {}
    for n in loads:
        # each spinner ends by itself after `limit` seconds even if this script is killed
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN.format(limit=1800)])
                    for _ in range(n)]
        try:
            time.sleep(0.5 if n else 0)
            for wl in workloads:
                for lib in LIBS:
                    print(f"{n} busy: {wl} / {lib} ...", file=sys.stderr, flush=True)
                    table[(n, wl, lib)] = measure(wl, lib, args.repeat)
        finally:
            for p in spinners:
                p.kill()
                p.wait()
    print(f"\nmedian ms per step ({os.cpu_count()} CPUs); columns: busy processes beside it")
    head = f"{'workload':10s} {'library':18s}" + "".join(f"{f'{n} busy':>10s}" for n in loads)
    print(head + "\n" + "-" * len(head))
    for wl in workloads:
        for lib in LIBS:
            cells = [table[(n, wl, lib)] for n in loads]
            if all(c is None for c in cells):
                continue
            print(f"{wl:10s} {lib:18s}" + "".join("         -" if c is None else f"{c:10.2f}"
                                                   for c in cells))


if __name__ == "__main__":
    main()
