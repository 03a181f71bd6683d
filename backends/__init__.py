"""funconv.backends: compilers and evaluators of funconv graphs.

This folder is installed as the subpackage `funconv.backends` (see
pyproject.toml). Importing it as a top-level `backends` from the repository
root is a mistake that would load a second copy of the code.
"""

if __name__ != "funconv.backends":
    raise ImportError(
        "the 'backends' folder is the package funconv.backends; import it as "
        "`import funconv.backends` (install the project with `pip install -e .`), "
        "not as `backends` from the repository root")

# --- the backend registry --------------------------------------------------------------
#
# A backend is a module with `compile(graph, donate=(), name="jitted") -> Executable` (the
# protocol below), and optionally `LACKS`: names of primitives it cannot run, which jit's
# passes then do not emit for it (a convolution's "auto" skips FFT where `fft` is lacking).
# `funconv.jit` uses nothing else of it, so a new backend is a new module registered here
# (or with `register`), with no change to jit. Backends are imported lazily,
# by name, so `import funconv` works on a machine without the optional dependencies of other
# backends (OpenCL).

import importlib
from collections.abc import Callable
from typing import Protocol


class Executable(Protocol):
    """What a backend's `compile` returns: one graph, compiled.

    Attributes:
        call: `call(*buffers) -> tuple` of output buffers: one NumPy array per graph input,
            in order, one per output back (a backend moves data to and from its device
            here). It may write into the buffers of the inputs listed in `compile`'s
            `donate` (after checking it is safe, see numpy/codegen.py `_take_donated`),
            never into another input.
        source: the generated code, for inspection (`jitted.lower(...).source`).
        output_aliases: per output, the set of input indices whose memory it may share
            (an output that is an input, or a view of one); jit copies exactly those
            outputs when the input was a caller's NumPy array. None: any output may alias
            any input.
    Optionally `profile(values, repeat, copy_inputs)`: per-line timing (`jitted.profile`).
    """

    call: Callable[..., tuple]
    source: str
    output_aliases: tuple[frozenset, ...] | None

_BACKENDS = {
    "numpy": "funconv.backends.numpy",
    "opencl": "funconv.backends.opencl",
}


def register(name: str, module: str) -> None:
    """Make backend `name` available, implemented by the importable `module`."""
    _BACKENDS[name] = module


def get_backend(name: str):
    """The backend module for `name` (imported on first use)."""
    from funconv.errors import ArgumentError

    mod = _BACKENDS.get(name)
    if mod is None:
        raise ArgumentError(f"unknown backend {name!r}; available: {sorted(_BACKENDS)}")
    try:
        return importlib.import_module(mod)
    except ImportError as e:
        raise ArgumentError(f"backend {name!r} is not available here ({e}); use backend='numpy'") from None
