"""Time every line of a compiled function: `Jitted.profile` on the NumPy backend.

The generated source has one line per graph node, each ending in a comment
that names the primitive, its result type and the user's line. `profile`
compiles a copy of that source with a clock read around every assignment,
runs it `repeat` times on the given inputs and returns a `Profile`: the lines
sorted by time, each with its share of the whole call. The instrumented copy
is separate: the cached function is not touched.
"""

from __future__ import annotations

import re
import time

import attrs
import numpy as np

from funconv.backends.numpy import threads

# an assignment line of the generated code: indent, targets, expression, optional comment
_LINE = re.compile(r"^(\s+)(\w+(?:, \w+)*) = (.*?)(?:  # (.*))?$")
# a node run on the second thread (backends/numpy/lanes.py): its lambda's bound names, body
_SUBMIT = re.compile(r"^(_submit\(lambda [^:]*: )(.*)\)$")


@attrs.frozen
class Row:
    """One line of generated code: milliseconds per call, share of the call (0..1), the
    node's description (primitive, result type, user line) and the code itself."""

    ms: float
    share: float
    node: str
    code: str


@attrs.frozen
class Profile:
    """`rows` sorted by time (slowest first); `total_ms` per call, measured around the
    whole function (so it includes the lines' clock reads and the `del`s). A node run on
    the second thread (lanes.py) is timed there, so its row overlaps the main thread's
    rows, and the row "(waits for the second thread)" is the main thread's wait for it."""

    name: str
    total_ms: float
    calls: int
    rows: tuple
    threads: str = ""  # the BLAS thread count the lines ran with, and why

    def __str__(self) -> str:
        head = [f"{self.name}: {self.total_ms:.3f} ms per call (median of {self.calls} calls)"
                + (f"; {self.threads}" if self.threads else "")]
        if any("(on the second thread)" in r.node for r in self.rows):
            head.append("rows '(on the second thread)' ran beside the others: the shares may "
                        "sum past 100%")
        head.append(f"{'ms':>9s} {'%':>6s}  node (primitive, type, line)  |  code")
        body = [f"{r.ms:9.3f} {100 * r.share:6.1f}  {r.node}  |  {r.code}" for r in self.rows]
        return "\n".join(head + body)


def profile(executable, values, repeat: int = 10, copy_inputs: bool = False) -> Profile:
    """Run `executable` (a NumPy-backend Executable) `repeat` times on `values` (one NumPy
    array per graph input), timing each line; `copy_inputs` gives every run fresh copies
    (for code that may write into donated inputs)."""
    fn = executable.fn
    lines = executable.source.splitlines()
    out, where = [], {}
    for i, line in enumerate(lines):
        m = _LINE.match(line)
        if m is None:
            out.append(line)
            continue
        indent, targets, expr, comment = m.groups()
        where[i] = (comment or "", f"{targets} = {expr}")
        sub = _SUBMIT.match(expr)
        if sub:  # timed where it runs, on the second thread (submitting takes microseconds)
            out.append(f"{indent}{targets} = {sub.group(1)}_timed({i}, lambda: {sub.group(2)}))")
            continue
        out += [f"{indent}_t = _clock()", f"{indent}{targets} = {expr}",
                f"{indent}_spent[{i}] += _clock() - _t"]
    spent = dict.fromkeys(where, 0.0)

    def timed_call(i, f):
        t = time.perf_counter()
        try:
            return f()
        finally:
            spent[i] += time.perf_counter() - t

    glb = dict(fn.__globals__, _clock=time.perf_counter, _spent=spent, _timed=timed_call)
    exec(compile("\n".join(out), f"<profile of {executable.filename}>", "exec"), glb)  # noqa: S102
    timed = glb[fn.__name__]
    run = (lambda: timed(*[np.array(v) for v in values])) if copy_inputs else (lambda: timed(*values))
    plan = executable.plan
    lib = threads.blas()
    lib.set(plan.threads if plan is not None and plan.threads is not None else lib.default)
    try:
        run()  # warm-up (allocator, caches); not counted
        for k in spent:
            spent[k] = 0.0
        totals = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            totals.append(time.perf_counter() - t0)
    finally:
        lib.set(lib.default)
    total = sum(totals)
    rows = sorted((Row(1e3 * s / repeat, s / total if total else 0.0, *where[i])
                   for i, s in spent.items()), key=lambda r: -r.ms)
    return Profile(fn.__name__, 1e3 * float(np.median(totals)), repeat, tuple(rows),
                   plan.describe() if plan is not None else "")
