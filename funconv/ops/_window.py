"""Window geometry shared by convolution (ops/conv.py) and pooling (ops/pool.py).

Both families slide a window over the trailing (spatial) dims of an operand
that is dilated (samples spread apart, the gaps filled) and padded (negative
pads crop). This module holds what they share: the dilated size of a dim, the
user-facing padding forms ("SAME", "VALID", ints, (lo, hi) pairs) resolved to
pairs, the dilated-and-padded operand of the reference definitions, and the
strided slices that pick one window tap at every output position.

Imports numpy and errors only; it must not import funconv.backends,
funconv.passes or funconv.jit (it is part of ops/).
"""

from __future__ import annotations

import itertools

import numpy as np

from funconv.errors import ShapeError


def dilate(size: int, d: int) -> int:
    """The size of a dim of `size` samples spread `d` apart (d - 1 gaps between samples)."""
    return 0 if size == 0 else (size - 1) * d + 1


def dilate_and_pad(x: np.ndarray, dilation, padding, fill) -> np.ndarray:
    """x dilated along its trailing `len(padding)` dims and padded, gaps and pads holding
    `fill` (negative pads crop). Returns x itself when there is nothing to do; otherwise a
    new array (or a view of one, when a pad is negative)."""
    nd = len(padding)
    if all(d == 1 for d in dilation) and all(p == (0, 0) for p in padding):
        return x
    lead = x.ndim - nd
    sizes, inner, crop = [], [], []
    for i in range(nd):
        lo, hi = padding[i]
        dil = dilate(x.shape[lead + i], dilation[i])
        sizes.append(max(lo, 0) + dil + max(hi, 0))
        inner.append(slice(max(lo, 0), max(lo, 0) + dil, dilation[i]))
        crop.append(slice(max(-lo, 0), sizes[-1] - max(-hi, 0)))
    xp = np.full(x.shape[:lead] + tuple(sizes), fill, x.dtype)
    xp[(Ellipsis,) + tuple(inner)] = x
    return xp[(Ellipsis,) + tuple(crop)]


def tap_slices(window, tap_dilation, strides, out_sizes):
    """For every tap k of the window (row-major order), the slices of the trailing dims of
    a dilated, padded operand that hold tap k of every window: positions
    p * stride + k * tap_dilation for the output positions p. Yields (k, slices)."""
    for k in itertools.product(*(range(w) for w in window)):
        yield k, tuple(slice(k[i] * tap_dilation[i],
                             k[i] * tap_dilation[i] + (out_sizes[i] - 1) * strides[i] + 1,
                             strides[i]) for i in range(len(window)))


def same_padding(in_sizes, windows, strides):
    """JAX/TF "SAME": output = ceil(input / stride), the extra padding on the high side."""
    pads = []
    for n, k, s in zip(in_sizes, windows, strides):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def explicit_padding(padding, nd: int, where: str):
    """int, per-dim ints or per-dim (lo, hi) pairs -> tuple of (lo, hi) pairs."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return ((int(padding), int(padding)),) * nd
    try:
        items = tuple(padding)
    except TypeError:
        items = None
    if items is not None and len(items) == nd:
        out = []
        for p in items:
            if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
                out.append((int(p), int(p)))
                continue
            try:
                lo, hi = p
            except (TypeError, ValueError):
                break
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi)):
                break
            out.append((int(lo), int(hi)))
        else:
            return tuple(out)
    raise ShapeError(f"{where}: padding must be 'SAME', 'VALID', an int, {nd} ints or {nd} "
                     f"(lo, hi) pairs (one per spatial dim), got {padding!r}")


def padding_pairs(padding, in_sizes, windows, strides, where: str):
    """Any user-facing padding form -> one (lo, hi) pair per windowed dim.

    Args:
        padding: "SAME", "VALID" (case-insensitive), an int, per-dim ints or per-dim
            (lo, hi) pairs.
        in_sizes, windows, strides: per windowed dim (windows already dilated).
        where: the call, for the error message.
    """
    nd = len(in_sizes)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * nd
        if mode == "SAME":
            return same_padding(in_sizes, windows, strides)
        raise ShapeError(f"{where}: unknown padding {padding!r}; use 'SAME', 'VALID', an int, "
                         "per-dim ints or per-dim (lo, hi) pairs")
    return explicit_padding(padding, nd, where)
