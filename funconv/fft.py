"""`fc.fft`: NumPy's `numpy.fft` API over funconv arrays, differentiable.

`fft, ifft, rfft, irfft, fft2, ifft2, rfft2, irfft2, fftn, ifftn, rfftn, irfftn`
follow NumPy's definitions and arguments exactly (`n`/`s`, `axis`/`axes`,
`norm`), plus `fftfreq, rfftfreq, fftshift, ifftshift`. Every transform is one
`fft_p` node (funconv/ops/fft.py) between at most a crop, a zero pad and a
transpose:

1. the input is cropped or zero-padded to `s` along `axes` (for `irfft*` the
   last axis to `s[-1] // 2 + 1`, the half spectrum that `s[-1]` outputs need);
2. `axes` are moved to the end, in the order given (the last one is the real
   axis of `rfftn`/`irfftn`), and back afterwards; nothing moves when they
   already trail in order;
3. `norm` is a scale after the transform: `fft_p` computes NumPy's default
   "backward" convention (inverse scaled by 1/N); "ortho" scales forward
   transforms by 1/sqrt(N) and inverse ones by sqrt(N) on top of that,
   "forward" scales forward ones by 1/N and inverse ones by N.

Dtypes, as JAX: integer and bool inputs are converted to float32 first; real
input to a complex transform (`fft`, `ifft`, `irfft`, ...) becomes complex
(complex64 from float32, complex128 from float64); `rfft*` of a complex input
is a DTypeError (NumPy would drop the imaginary part). Results: complex64 or
complex128, float32 or float64 for `irfft*`.

Differences from NumPy: repeated axes raise AxisError (NumPy transforms twice);
`s` without `axes` means the last `len(s)` axes without a deprecation warning
(as JAX). An entry -1 in `s` takes the input's length along that axis (as NumPy 2).

Errors: ShapeError for a length < 1 or `s`/`axes` of unequal lengths,
AxisError for an axis out of range or repeated, ArgumentError for a bad `norm`
or a non-int length, DTypeError as above. Imports funconv.ops.
"""

from __future__ import annotations

import math

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, AxisError, DTypeError, ShapeError
from funconv.ops._core import asarray, astype, check_device, normalize_axis, operand, static_int, static_ints, to_dtype
from funconv.ops.fft import fft_p
from funconv.ops.shape import concatenate, pad_p, slice_p, transpose
from funconv.types import DEFAULT_FLOAT, canonical_dtype, complex_dtype

_NORMS = (None, "backward", "ortho", "forward")
_INVERSE = ("ifft", "irfft")


# --- plumbing --------------------------------------------------------------------------------


def _check_norm(norm, opname: str) -> None:
    if norm not in _NORMS:
        raise ArgumentError(f"{opname}: norm must be None, 'backward', 'ortho' or 'forward', got "
                            f"{norm!r}")


def _input(x, kind: str, opname: str) -> Array:
    """`x` as an Array of the dtype `kind` transforms: float for rfft, complex otherwise."""
    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    if x.dtype.kind in "biu":
        x = astype(x, DEFAULT_FLOAT)  # as JAX: integers are transformed in the default float
    if kind == "rfft":
        if x.dtype.kind == "c":
            raise DTypeError(f"{opname}: expects a real input, got {x.aval.short()}; use the complex "
                             f"transform ({opname.replace('rfft', 'fft')}) or take fc.real(x) first")
    elif x.dtype.kind == "f":
        x = astype(x, complex_dtype(x.dtype))
    return x


def _axes(axes, s, ndim: int, opname: str) -> tuple[int, ...]:
    if axes is None:
        if s is None:
            return tuple(range(ndim))
        if len(s) > ndim:
            raise ShapeError(f"{opname}: s={tuple(s)} names {len(s)} axes but the input has only {ndim}")
        return tuple(range(ndim - len(s), ndim))  # NumPy's (and JAX's) meaning of s without axes
    out = tuple(normalize_axis(a, ndim, opname) for a in static_ints(axes, "axes", opname))
    if len(set(out)) != len(out):
        raise AxisError(f"{opname}: repeated axis in axes={tuple(axes)}; transform each axis once "
                        "(call the transform again to apply it twice)")
    return out


def _lengths(x: Array, kind: str, s, axes, opname: str, name: str) -> tuple[int, ...]:
    """The transform length per axis: `s` (-1: the input's length, as NumPy 2), or without `s`
    the input's lengths, except 2 * (m - 1) along irfft's last axis (NumPy's `_cook_nd_args`)."""
    if s is None:
        out = [x.shape[a] for a in axes]
        if kind == "irfft":
            out[-1] = 2 * (out[-1] - 1)
            if out[-1] < 1:
                raise ShapeError(f"{opname}: the input {x.aval.short()} has 1 entry along axis "
                                 f"{axes[-1]}, so the default output length 2*(1-1) is 0: pass {name}")
        return tuple(out)
    if len(s) != len(axes):
        raise ShapeError(f"{opname}: {name}={tuple(s)} and axes={axes} must have equal lengths")
    out = tuple(x.shape[a] if n == -1 else n for n, a in zip(s, axes))
    if any(n < 1 for n in out):
        raise ShapeError(f"{opname}: transform lengths must be >= 1 (or -1: the input's), got "
                         f"{name}={tuple(s)} for input {x.aval.short()}")
    return out


def _fit(x: Array, axes, sizes) -> Array:
    """`x` cropped or zero-padded (at the end) to `sizes` along `axes`, as NumPy's n/s do."""
    want = list(x.shape)
    for a, n in zip(axes, sizes):
        want[a] = n
    if tuple(want) == x.shape:
        return x
    keep = tuple(min(w, d) for w, d in zip(want, x.shape))
    if keep != x.shape:
        x = slice_p(x, start_indices=(0,) * x.ndim, limit_indices=keep, strides=(1,) * x.ndim)
    if keep != tuple(want):
        x = pad_p(x, to_dtype(0, x.dtype), config=tuple((0, w - k, 0) for w, k in zip(want, keep)))
    return x


def _scale(kind: str, norm, size: int) -> float | None:
    """The factor on top of fft_p's "backward" result for `norm` (None: nothing to do)."""
    if norm in (None, "backward"):
        return None
    inverse = kind in _INVERSE
    if norm == "ortho":
        return math.sqrt(size) if inverse else 1 / math.sqrt(size)
    return float(size) if inverse else 1 / size  # "forward"


def _transform(x, kind: str, s, axes, norm, opname: str, name: str = "s") -> Array:
    _check_norm(norm, opname)
    x = _input(x, kind, opname)
    if s is not None:
        s = static_ints(s, name, opname)
    axes = _axes(axes, s, x.ndim, opname)
    if not axes:
        if kind in ("fft", "ifft"):
            return x  # a transform over no axes is the identity (NumPy's fftn with axes=())
        raise ArgumentError(f"{opname}: needs at least one axis, got axes=() for {x.aval.short()}")
    lengths = _lengths(x, kind, s, axes, opname, name)
    sizes = lengths[:-1] + (lengths[-1] // 2 + 1,) if kind == "irfft" else lengths
    x = _fit(x, axes, sizes)
    others = [a for a in range(x.ndim) if a not in axes]
    perm = tuple(others) + axes
    moved = perm != tuple(range(x.ndim))
    if moved:
        x = transpose(x, perm)
    y = fft_p(x, fft_type=kind, fft_lengths=lengths)
    factor = _scale(kind, norm, math.prod(lengths))
    if factor is not None:
        y = y * factor  # a weak Python float: the dtype stays
    if moved:
        y = transpose(y, tuple(int(i) for i in np.argsort(perm)))
    return y


def _n(n, opname: str):
    if n is None:
        return None
    n = static_int(n, "n", opname)
    if n < 1:
        raise ShapeError(f"{opname}: n must be >= 1 (the transform length), got {n}")
    return (n,)


def _axis(axis, opname: str):
    return (static_int(axis, "axis", opname),)


# --- 1-d -------------------------------------------------------------------------------------


def fft(a, n=None, axis=-1, norm=None) -> Array:
    """1-d discrete Fourier transform, `numpy.fft.fft`.

    `out[k] = sum_j a[j] exp(-2 pi i j k / n)` along `axis`; `a` is cropped or
    zero-padded to `n` first. Shape: `a`'s with `axis` of length n (default: its own).

    Args:
        a: array (real or integer input becomes complex).
        n: transform length (int >= 1) or None.
        axis: the axis to transform.
        norm: "backward" (None, unscaled), "ortho" (1/sqrt(n)) or "forward" (1/n).

    Returns:
        complex64 (from float32 / complex64 / int) or complex128 array.

    Raises:
        ShapeError (n < 1), AxisError, ArgumentError (norm), as the module docstring says.
    """
    return _transform(a, "fft", _n(n, "fft"), _axis(axis, "fft"), norm, "fft", "n")


def ifft(a, n=None, axis=-1, norm=None) -> Array:
    """1-d inverse DFT, `numpy.fft.ifft`: `out[j] = (1/n) sum_k a[k] exp(2 pi i j k / n)`
    ("backward"; "ortho": 1/sqrt(n); "forward": unscaled). Arguments and errors as `fft`."""
    return _transform(a, "ifft", _n(n, "ifft"), _axis(axis, "ifft"), norm, "ifft", "n")


def rfft(a, n=None, axis=-1, norm=None) -> Array:
    """1-d DFT of a real input, `numpy.fft.rfft`: the `n // 2 + 1` non-negative frequency
    terms of `fft(a, n)`. Result complex64 (float32 / int input) or complex128, with `axis`
    of length n // 2 + 1. DTypeError for a complex input. Otherwise as `fft`."""
    return _transform(a, "rfft", _n(n, "rfft"), _axis(axis, "rfft"), norm, "rfft", "n")


def irfft(a, n=None, axis=-1, norm=None) -> Array:
    """Inverse of `rfft`, `numpy.fft.irfft`: a real signal of length `n` (default
    2 * (m - 1) for an input of m bins) from its half spectrum, read as Hermitian (the
    imaginary parts of the DC and, for even n, Nyquist bins are ignored). The input is
    cropped or zero-padded to n // 2 + 1 bins along `axis`. Result float32 or float64.
    ShapeError when the length is < 1 (an input of 1 bin needs an explicit n)."""
    return _transform(a, "irfft", _n(n, "irfft"), _axis(axis, "irfft"), norm, "irfft", "n")


# --- n-d -------------------------------------------------------------------------------------


def fftn(a, s=None, axes=None, norm=None) -> Array:
    """N-d DFT over `axes`, `numpy.fft.fftn` (the 1-d transform along each axis).

    Args:
        a: array (real or integer input becomes complex).
        s: lengths per transformed axis (crop or zero-pad; -1 keeps the input's), or None.
        axes: the axes (default: all, or the last len(s) when only s is given).
        norm: "backward" (None), "ortho" or "forward", scaling by N = prod(s) as in `fft`.

    Returns:
        complex array, `a`'s shape with the axes resized to s.

    Raises:
        ShapeError (length < 1, len(s) != len(axes)), AxisError (out of range, repeated),
        ArgumentError (norm).
    """
    return _transform(a, "fft", s, axes, norm, "fftn")


def ifftn(a, s=None, axes=None, norm=None) -> Array:
    """N-d inverse DFT, `numpy.fft.ifftn`; arguments, results and errors as `fftn`."""
    return _transform(a, "ifft", s, axes, norm, "ifftn")


def rfftn(a, s=None, axes=None, norm=None) -> Array:
    """N-d DFT of a real input, `numpy.fft.rfftn`: a real transform along the last of `axes`
    (which keeps s[-1] // 2 + 1 bins), complex ones along the others. DTypeError for complex
    input; otherwise as `fftn`."""
    return _transform(a, "rfft", s, axes, norm, "rfftn")


def irfftn(a, s=None, axes=None, norm=None) -> Array:
    """Inverse of `rfftn`, `numpy.fft.irfftn`: a real array with the lengths `s` (default: the
    input's along `axes`, except 2 * (m - 1) along the last); the input is cropped or
    zero-padded to s[-1] // 2 + 1 bins along the last axis and to s elsewhere. As `irfft`."""
    return _transform(a, "irfft", s, axes, norm, "irfftn")


def fft2(a, s=None, axes=(-2, -1), norm=None) -> Array:
    """2-d DFT, `numpy.fft.fft2`: `fftn` over the last two axes by default."""
    return _transform(a, "fft", s, axes, norm, "fft2")


def ifft2(a, s=None, axes=(-2, -1), norm=None) -> Array:
    """2-d inverse DFT, `numpy.fft.ifft2`: `ifftn` over the last two axes by default."""
    return _transform(a, "ifft", s, axes, norm, "ifft2")


def rfft2(a, s=None, axes=(-2, -1), norm=None) -> Array:
    """2-d DFT of a real input, `numpy.fft.rfft2`: `rfftn` over the last two axes by default."""
    return _transform(a, "rfft", s, axes, norm, "rfft2")


def irfft2(a, s=None, axes=(-2, -1), norm=None) -> Array:
    """Inverse of `rfft2`, `numpy.fft.irfft2`: `irfftn` over the last two axes by default."""
    return _transform(a, "irfft", s, axes, norm, "irfft2")


# --- frequencies and shifts --------------------------------------------------------------------


def _freq_args(n, d, dtype, opname):
    n = static_int(n, "n", opname)
    if n < 1:
        raise ShapeError(f"{opname}: n must be >= 1 (the transform length), got {n}")
    if isinstance(d, Array):
        d = d._require_value(f"{opname} with an array spacing d")
    try:
        d = float(d)
    except (TypeError, ValueError):
        raise ArgumentError(f"{opname}: d (the sample spacing) must be a number, got {d!r}") from None
    dtype = canonical_dtype(DEFAULT_FLOAT if dtype is None else dtype)
    if dtype.kind not in "fc":
        raise DTypeError(f"{opname}: dtype must be a float (or complex) dtype, got {dtype}")
    return n, d, dtype


def fftfreq(n, d=1.0, *, dtype=None, device=None) -> Array:
    """The sample frequencies of an n-point `fft`, `numpy.fft.fftfreq`:
    `[0, 1, ..., (n-1)//2, -(n//2), ..., -1] / (d * n)`.

    A constant (shape (n,)); `dtype` defaults to float32, as JAX. Computed in float64, then
    cast. ShapeError for n < 1, ArgumentError for a non-number d.
    """
    check_device(device, "fftfreq")
    n, d, dtype = _freq_args(n, d, dtype, "fftfreq")
    return asarray(np.fft.fftfreq(n, d).astype(dtype))


def rfftfreq(n, d=1.0, *, dtype=None, device=None) -> Array:
    """The sample frequencies of an n-point `rfft`, `numpy.fft.rfftfreq`:
    `[0, 1, ..., n//2] / (d * n)`, shape (n // 2 + 1,). As `fftfreq`."""
    check_device(device, "rfftfreq")
    n, d, dtype = _freq_args(n, d, dtype, "rfftfreq")
    return asarray(np.fft.rfftfreq(n, d).astype(dtype))


def _roll(x: Array, axes, shifts) -> Array:
    """A cyclic shift along each axis by two slices and a concatenate (no gather)."""
    for a, sh in zip(axes, shifts):
        n = x.shape[a]
        if n == 0 or sh % n == 0:
            continue
        cut = n - sh % n  # out = concat(x[cut:], x[:cut]) along a
        hi = list(x.shape)
        lo = [0] * x.ndim
        hi_head, lo_tail = list(hi), list(lo)
        hi_head[a], lo_tail[a] = cut, cut
        ones = (1,) * x.ndim
        tail = slice_p(x, start_indices=tuple(lo_tail), limit_indices=tuple(hi), strides=ones)
        head = slice_p(x, start_indices=tuple(lo), limit_indices=tuple(hi_head), strides=ones)
        x = concatenate([tail, head], axis=a)
    return x


def _shift(x, axes, opname: str, sign: int) -> Array:
    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    if axes is None:
        axes = tuple(range(x.ndim))
    else:
        axes = tuple(normalize_axis(a, x.ndim, opname) for a in static_ints(axes, "axes", opname))
    return _roll(x, axes, [sign * (x.shape[a] // 2) for a in axes])


def fftshift(x, axes=None) -> Array:
    """`numpy.fft.fftshift`: roll each of `axes` (default all) by n // 2, so the zero
    frequency sits in the middle. Differentiable (slices and a concatenate); any dtype.
    AxisError for an axis out of range."""
    return _shift(x, axes, "fftshift", 1)


def ifftshift(x, axes=None) -> Array:
    """`numpy.fft.ifftshift`: the inverse of `fftshift` (roll by -(n // 2)). As `fftshift`."""
    return _shift(x, axes, "ifftshift", -1)


_SWAP_NORM = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _norm_arg(norm, opname):
    if norm not in _SWAP_NORM:
        raise ArgumentError(f"{opname}: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    return _SWAP_NORM[norm]


def hfft(a, n=None, axis=-1, norm=None) -> Array:
    """DFT of a Hermitian-symmetric signal given by its half, `numpy.fft.hfft`: a real
    result of length n (default 2 * (m - 1)). It is `irfft(conj(a))` with the norm's
    direction swapped (the forward transform of the signal the half spectrum stands for)."""
    from funconv.ops.elementwise import conj

    return irfft(conj(asarray(operand(a, "hfft"))), n, axis, _norm_arg(norm, "hfft"))


def ihfft(a, n=None, axis=-1, norm=None) -> Array:
    """Inverse of `hfft`, `numpy.fft.ihfft`: `conj(rfft(a))` with the norm's direction swapped."""
    from funconv.ops.elementwise import conj

    return conj(rfft(a, n, axis, _norm_arg(norm, "ihfft")))


__all__ = ["hfft", "ihfft", "fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn",
           "irfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
