"""Global switches: `fc.config.update(name, value)`, read as `fc.config.name`."""

from __future__ import annotations

import sys
import types


class _Config(types.ModuleType):
    _defaults = {
        "explain_recompiles": False,  # log why jit recompiles (issue 4)
        "debug_passes": False,  # re-check types after every graph pass
        # raise glibc's malloc mmap/trim thresholds when the NumPy backend first compiles,
        # so jitted steps reuse freed memory (see funconv/backends/numpy/malloc.py)
        "tune_malloc": True,
        # BLAS threads of a jitted graph on the NumPy backend: "auto" measures 1 thread
        # against all cores per graph and re-measures when the load changes
        # (funconv/backends/numpy/threads.py); an int fixes the count
        "threads": "auto",
        # NumPy backend: run independent heavy nodes of a jitted graph (FFTs, GEMMs) on a
        # second thread when the cost model says it pays (funconv/backends/numpy/lanes.py)
        "lanes": True,
        "backend": "numpy",  # fc.jit's backend when it is given none ("numpy", "opencl", ...)
        # algorithm="auto" convolutions: calibrate the cost model's machine rates once per
        # machine (about a second, cached on disk); False: documented default rates
        # (funconv/passes/conv_cost.py), deterministic, as the test suite wants
        "conv_calibration": True,
        # a convolution algorithm name: every conv_general node under jit uses it, the
        # derivative's convolutions included (testing every node on one path), and so do
        # eager "auto" ones large enough to be compiled as jit would (backends/numpy/
        # kernels/conv.py `_eager_plan`); None: off
        "conv_force_algorithm": None,
        # "auto" convolutions: "model" trusts the cost model; "measure" times the model's best
        # few candidates once per shapes and machine, cached on disk (funconv/passes/plans.py)
        "conv_planning": "model",
    }

    def update(self, name: str, value) -> None:
        """Set option `name` (see `fc.config.options()`)."""
        if name not in self._defaults:
            raise KeyError(f"unknown config option {name!r}; known: {sorted(self._defaults)}")
        self.__dict__[name] = value

    def options(self) -> dict:
        return {k: getattr(self, k) for k in self._defaults}

    def __getattr__(self, name):
        if name in type(self)._defaults:
            return type(self)._defaults[name]
        raise AttributeError(name)


sys.modules[__name__].__class__ = _Config
