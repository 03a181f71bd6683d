"""Every primitive has an OpenCL lowering (tests/backends/test_opencl.py checks that they
compute the right thing); the known-missing ones are listed here, by name."""

from funconv.primitive import REGISTRY

import funconv  # noqa: F401  (registers every primitive)

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
    """Every elementwise primitive's C template (its own c_expr or the backend's override)
    formats with its operands and names no unknown placeholder."""
    from funconv.backends.opencl.lowering import C_OVERRIDES, is_elementwise
    from funconv.ir import Apply, Input
    from funconv.types import ArrayType

    for (name, kind), t in C_OVERRIDES.items():
        assert name in REGISTRY, f"override for unknown primitive {name}"
        t.format("a", "b", "c", dtype="float")
    for name, p in REGISTRY.items():
        n = Apply(ArrayType((), "float32"), prim=p, args=(Input(ArrayType((), "float32")),))
        if is_elementwise(n) and p.c_expr is not None:
            p.c_expr.format("a", "b", "c", dtype="float")
