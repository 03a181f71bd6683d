"""Keep large freed blocks in the C heap, so a jitted step's temporaries do not
page-fault afresh on every call.

glibc serves a block above its mmap threshold with newly mapped pages and
unmaps it on free; the first touch of each page then faults, every call. A
jitted training step allocates its temporaries anew each call (NumPy has no
buffer pool), so on CPU those faults can cost as much as the arithmetic
(measured on the LeNet step of bench/run.py). Raising the mmap and trim
thresholds, as `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...` would, lets
malloc reuse the memory instead. Applied once, when the NumPy backend first
compiles, unless `fc.config.update("tune_malloc", False)`; a no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_MMAP_MAX = 32 * 1024 * 1024  # glibc refuses thresholds above HEAP_MAX_SIZE / 2 (64-bit)
_TRIM = 512 * 1024 * 1024  # keep up to this much freed memory at the heap top

_done = False


def tune() -> bool:
    """Raise glibc's mmap/trim thresholds once; True if they were set."""
    global _done
    if _done:
        return False
    _done = True
    from funconv import config

    if not config.tune_malloc:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM) == 1 and ok)
