"""The OpenCL device: context and queue selection, program building and caching, errors.

Device choice (once per process, `default_device()`):
`FUNCONV_OPENCL_DEVICE` (an index into the list of all devices of all platforms, or a
case-insensitive substring of a device name), else PyOpenCL's `PYOPENCL_CTX` (handled by
`pyopencl.create_some_context(interactive=False)`), else the first GPU, else the first CPU
device. A missing pyopencl, or no OpenCL platform at all, raises `OpenCLUnavailable` (a
FuncConvError) naming the install command and the environment variables.

Programs are cached per context by source text (`build`), so a graph compiled twice (a
retrace) builds once; PoCL keeps its own cache of compiled kernels on disk
(~/.cache/pocl/kcache) across processes.
Imports pyopencl lazily (only this package may import it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading

from funconv.errors import FuncConvError

_INSTALL = ('install the OpenCL extra: pip install -e ".[opencl]" (pyopencl and PoCL, a CPU '
            "OpenCL driver); choose a device with FUNCONV_OPENCL_DEVICE=<index or name substring> "
            "or PyOpenCL's PYOPENCL_CTX")


class OpenCLUnavailable(FuncConvError, RuntimeError):
    """No usable OpenCL device (pyopencl missing, no platform, no matching device)."""


class OpenCLBuildError(FuncConvError, RuntimeError):
    """A generated program failed to build; the message names the saved source and the log."""


class OpenCLUnsupported(FuncConvError, NotImplementedError):
    """The graph needs something this device or backend cannot do (float64, an FFT node)."""


def cl():
    """The pyopencl module, or OpenCLUnavailable."""
    try:
        import pyopencl
    except ImportError as e:
        raise OpenCLUnavailable(f"the OpenCL backend needs pyopencl ({e}); {_INSTALL}") from None
    return pyopencl


class Device:
    """One OpenCL device with its context and in-order queue (profiling enabled).

    Attributes:
        ctx, queue, device: the PyOpenCL objects.
        fp64: the device supports double precision (cl_khr_fp64).
        name: the device name, for messages.
    """

    def __init__(self, device):
        pcl = cl()
        self.device = device
        self.name = device.name.strip()
        self.ctx = pcl.Context([device])
        self.queue = pcl.CommandQueue(
            self.ctx, properties=pcl.command_queue_properties.PROFILING_ENABLE)
        self.fp64 = "cl_khr_fp64" in device.extensions
        self.is_cpu = bool(device.type & pcl.device_type.CPU)
        self._programs: dict[str, object] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<opencl device {self.name!r}>"

    def build(self, source: str, owners: dict[str, str]):
        """The built program for `source` (cached by source text in this context).

        `owners` maps each kernel name to a description of the primitive that produced it
        and the user's line, for the error message when the build fails.
        """
        prg = self._programs.get(source)
        if prg is not None:
            return prg
        pcl = cl()
        with self._lock:
            prg = self._programs.get(source)
            if prg is not None:
                return prg
            try:
                prg = pcl.Program(self.ctx, source).build()
            except pcl.Error as e:
                raise _build_error(source, e, owners) from None
            self._programs[source] = prg
            return prg


def _build_error(source: str, err, owners: dict[str, str]) -> OpenCLBuildError:
    """The error for a failed build: the source saved to a file, the log, the likely culprits."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"funconv-opencl-{digest}.cl")
    with open(path, "w") as f:
        f.write(source)
    log = str(err)
    # the kernels named in the log (by their line in the source) are the likely culprits
    lines = source.splitlines()
    suspects = []
    for name, owner in owners.items():
        if name in log:
            suspects.append(f"  kernel {name}: {owner}")
    if not suspects:
        import re

        bad_lines = sorted({int(m) for m in re.findall(r"\.cl:(\d+):\d+:", log)})
        for ln in bad_lines:
            # walk back from the failing line to the kernel that holds it
            for k in range(min(ln, len(lines)) - 1, -1, -1):
                if lines[k].startswith("__kernel"):
                    name = lines[k].split("(")[0].split()[-1]
                    if name in owners and not any(name in x for x in suspects):
                        suspects.append(f"  kernel {name}: {owner_of(owners, name)}")
                    break
    where = "\n".join(suspects) if suspects else "  (no kernel could be singled out)"
    return OpenCLBuildError(f"OpenCL program build failed; source saved to {path}\n"
                            f"produced by:\n{where}\nbuild log:\n{log}")


def owner_of(owners: dict[str, str], name: str) -> str:
    return owners.get(name, "?")


_DEFAULT: Device | None = None
_DEFAULT_LOCK = threading.Lock()


def default_device() -> Device:
    """The process's device (chosen once, see the module docstring)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Device(_choose())
    return _DEFAULT


def all_devices() -> list:
    """Every device of every platform, in platform order (what FUNCONV_OPENCL_DEVICE indexes)."""
    pcl = cl()
    try:
        platforms = pcl.get_platforms()
    except pcl.Error as e:
        raise OpenCLUnavailable(f"no OpenCL platform found ({e}); {_INSTALL}") from None
    devs = []
    for p in platforms:
        try:
            devs.extend(p.get_devices())
        except pcl.Error:
            continue  # a platform without devices (an ICD left behind by a removed driver)
    if not devs:
        raise OpenCLUnavailable(f"no OpenCL device found; {_INSTALL}")
    return devs


def _choose():
    pcl = cl()
    want = os.environ.get("FUNCONV_OPENCL_DEVICE", "").strip()
    if want:
        devs = all_devices()
        names = [f"{i}: {d.name.strip()} ({d.platform.name.strip()})" for i, d in enumerate(devs)]
        if want.isdigit():
            if int(want) < len(devs):
                return devs[int(want)]
        else:
            hits = [d for d in devs if want.lower() in d.name.lower()]
            if hits:
                return hits[0]
        raise OpenCLUnavailable(f"FUNCONV_OPENCL_DEVICE={want!r} matches no OpenCL device; "
                                f"the devices are: {'; '.join(names)}")
    if os.environ.get("PYOPENCL_CTX"):
        try:
            ctx = pcl.create_some_context(interactive=False)
        except Exception as e:  # noqa: BLE001 - any failure of PyOpenCL's chooser
            raise OpenCLUnavailable(f"PYOPENCL_CTX={os.environ['PYOPENCL_CTX']!r} selects no "
                                    f"device ({e}); {_INSTALL}") from None
        return ctx.devices[0]
    devs = all_devices()
    gpus = [d for d in devs if d.type & pcl.device_type.GPU]
    return (gpus or devs)[0]
