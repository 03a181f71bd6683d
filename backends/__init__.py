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
# A backend is a module with `compile(graph, donate=()) -> Executable`, where an
# Executable is callable on NumPy arrays (one per graph input, in order) and returns a
# tuple of NumPy arrays (one per graph output), and has a `.source` string (generated
# code, for inspection). Optionally `.output_aliases`: per output, the set of input
# indices it may share memory with (jit copies such outputs when that input was a
# caller's NumPy array); without it jit assumes any output may alias any input. Backends are imported lazily, by name, so `import funconv`
# works on a machine without the optional dependencies of other backends (OpenCL).

import importlib

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
