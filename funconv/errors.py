"""funconv's exceptions, and the helper that names the user's line in them.

Every error funconv raises for bad input derives from `FuncConvError` and from
the matching built-in exception, so `except ValueError` keeps working.
Imports nothing from funconv.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_PKG_DIRS: tuple[str, ...] = ()


def _package_dirs() -> tuple[str, ...]:
    global _PKG_DIRS
    if not _PKG_DIRS:
        dirs = [os.path.dirname(__file__)]
        # funconv.backends may live elsewhere (an editable install maps it from backends/):
        # find its folder without importing it
        try:
            spec = importlib.util.find_spec("funconv.backends")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(spec.submodule_search_locations)
        _PKG_DIRS = tuple(os.path.abspath(d) + os.sep for d in dirs)
    return _PKG_DIRS


_INTERNAL: dict[str, bool] = {}  # file name -> is it funconv's own (or stdlib glue)?


def _is_internal(filename: str) -> bool:
    r = _INTERNAL.get(filename)
    if r is None:
        r = (filename.startswith(_package_dirs()) or filename.startswith("<frozen")
             or os.path.basename(filename) == "contextlib.py")
        _INTERNAL[filename] = r
    return r


def user_frame(skip: int = 1):
    """The innermost stack frame outside funconv (the user's code), or None."""
    f = sys._getframe(skip)
    while f is not None and _is_internal(f.f_code.co_filename):
        f = f.f_back
    return f


def user_line() -> str | None:
    """`file.py:12` of the user's line that called into funconv."""
    f = user_frame(2)
    if f is None:
        return None
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


class FuncConvError(Exception):
    """Base class of every error funconv raises on purpose."""

    def __init__(self, message: str):
        where = user_line()
        if where and "(at " not in message:
            message = f"{message}\n  (at {where})"
        super().__init__(message)


class ShapeError(FuncConvError, ValueError):
    """Operand shapes do not fit the operation."""


class DTypeError(FuncConvError, TypeError):
    """Operand dtypes do not fit the operation."""


class AxisError(FuncConvError, ValueError, IndexError):
    """An axis argument is out of range."""


class ArgumentError(FuncConvError, TypeError):
    """An argument has the wrong kind (a string where an array belongs, ...)."""


class IndexingError(FuncConvError, IndexError):
    """An index is out of range or of an unsupported kind."""


class ImmutableError(FuncConvError, TypeError):
    """An attempt to mutate an immutable Array."""


class ConcretizationError(FuncConvError, TypeError):
    """A concrete value was needed from a traced (abstract) value under jit."""


class TracerLeakError(FuncConvError, RuntimeError):
    """A traced value escaped the transformation that created it."""


class DeletedArrayError(FuncConvError, RuntimeError):
    """An array donated to a jitted call (`donate_argnums`) was used afterwards."""


class TreeError(FuncConvError, ValueError):
    """Pytree structures do not match, or a node type is not registered."""
