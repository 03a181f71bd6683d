"""Every primitive has an OpenCL lowering (tests/backends/test_opencl.py checks that they
compute the right thing); the known-missing ones are listed here, by name."""

import numpy as np

import funconv  # noqa: F401  (registers every primitive)
from funconv.primitive import REGISTRY

# primitives lowered to a compile-time NotImplementedError on purpose (with their reason)
KNOWN_MISSING = {
    # the FFT primitives get funconv's own OpenCL FFT in a later issue
    *(name for name in REGISTRY if "fft" in name),
    # dense decompositions (fc.linalg) and searchsorted: LAPACK / NumPy backend only for now
    "cholesky", "det", "eigh", "inv", "solve", "searchsorted",
}


def test_every_primitive_has_an_opencl_lowering():
    from funconv.backends.opencl import lowering

    missing = sorted(set(lowering.missing()) - KNOWN_MISSING)
    assert not missing, f"primitives without an OpenCL lowering: {missing}"


def test_elementwise_templates_format():
    """Every elementwise primitive's C template (each dtype kind's, where `c_expr` is a dict)
    formats with its operands and names no unknown placeholder."""
    from funconv.backends.opencl.lowering import is_elementwise

    from funconv.ir import Apply, Input
    from funconv.types import ArrayType

    for name, p in REGISTRY.items():
        f32 = ArrayType((), np.dtype("float32"))
        n = Apply(f32, prim=p, args=(Input(f32),))
        if not is_elementwise(n):
            continue
        templates = p.c_expr.values() if isinstance(p.c_expr, dict) else [p.c_expr]
        for kinds in p.c_expr if isinstance(p.c_expr, dict) else ():
            assert set(kinds) <= set("biufc"), f"{name}: unknown dtype kinds {kinds!r}"
        for t in templates:
            t.format("a", "b", "c", dtype="float")
