"""jit: trace -> passes -> backend.compile, cached per argument signature (issue 4)."""

from __future__ import annotations


def jit(f=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), backend="numpy"):
    raise NotImplementedError("fc.jit is being written (issue 4)")
