"""The FFT primitive: `fft_p`, one primitive for the four transforms, as `jax.lax.fft`.

`fft_p(x, fft_type=..., fft_lengths=(n_1, ..., n_k))` transforms the trailing
k axes of `x` (any number of leading batch axes):

| fft_type | operand                                   | result                                   |
| -------- | ----------------------------------------- | ---------------------------------------- |
| "fft"    | complex `(..., n_1, ..., n_k)`            | complex, same shape                      |
| "ifft"   | complex `(..., n_1, ..., n_k)`            | complex, same shape, scaled by 1/prod(n) |
| "rfft"   | float `(..., n_1, ..., n_k)`              | complex `(..., n_1, ..., n_k // 2 + 1)`  |
| "irfft"  | complex `(..., n_1, ..., n_k // 2 + 1)`   | float `(..., n_1, ..., n_k)`             |

Definitions and scalings are NumPy's `fftn`/`ifftn`/`rfftn`/`irfftn` with the
default `norm="backward"` (forward unscaled, inverse scaled by 1/N); `irfft`
reads the half spectrum as Hermitian and, as NumPy, ignores the imaginary parts
of the DC and (for even n_k) Nyquist bins. Dtypes are exact: float32/complex64
give complex64 (float32 for irfft), float64/complex128 give complex128 (float64).
Padding, cropping, other axes and `norm` are the wrappers' business
(funconv/fft.py); the primitive sees exactly the lengths it transforms.

VJP rules (JAX's transpose rules, jax/_src/lax/fft.py, with JAX's convention for
complex cotangents: the pairing is Re(sum(ct * v)), no conjugation) are written
with `fft_p` itself, so derivatives are graphs and second order works. With
N = prod(fft_lengths) and `h` the half-spectrum length n_k // 2 + 1:

- fft, ifft: the DFT matrix is symmetric, so each is its own transpose.
- irfft: `irfft(Z) = Re(ifftn(pad(m * Z)))` where m = 1 on the DC and Nyquist
  bins and 2 elsewhere (the bins that stand for a conjugate pair), so its
  transpose is `conj(rfft(ct)) * m / N` (JAX's `_irfft_transpose`).
- rfft: `rfft(x) = slice(fftn(x))`, transpose `Re(fftn(pad(ct)))` (JAX transposes
  exactly this naive form). Since `Re(fftn(v)) = N Re(ifftn(conj(v)))` and the
  irfft identity above, it equals `irfft(conj(ct) * N / m)`: a real inverse
  transform, no full complex one.

Imports numpy, the core (types, primitive, errors) and the elementwise ops.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.ops.elementwise import conj
from funconv.primitive import Primitive
from funconv.types import ArrayType, complex_dtype, real_dtype

FFT_TYPES = ("fft", "ifft", "rfft", "irfft")


def out_dtype(dtype: np.dtype, fft_type: str) -> np.dtype:
    """The exact result dtype of `fft_type` on an operand of `dtype` (kernels cast to it)."""
    return real_dtype(dtype) if fft_type == "irfft" else complex_dtype(dtype)


def _check_params(x: ArrayType, fft_type, fft_lengths) -> None:
    if fft_type not in FFT_TYPES:
        raise ArgumentError(f"fft: fft_type must be one of {FFT_TYPES}, got {fft_type!r}")
    if (not isinstance(fft_lengths, tuple) or not fft_lengths
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in fft_lengths)):
        raise ArgumentError(f"fft: fft_lengths must be a non-empty tuple of ints >= 1, got {fft_lengths!r}")
    if len(fft_lengths) > x.ndim:
        raise ShapeError(f"fft: {len(fft_lengths)} transformed axes (fft_lengths={fft_lengths}) but the "
                         f"operand {x.short()} has only {x.ndim}")


def _fft_rule(x: ArrayType, *, fft_type, fft_lengths) -> ArrayType:
    _check_params(x, fft_type, fft_lengths)
    k = len(fft_lengths)
    lead, trail = x.shape[:-k], x.shape[-k:]
    if fft_type == "rfft":
        if x.dtype.kind != "f":
            raise DTypeError(f"fft (rfft): expects a float operand, got {x.short()}; take fc.real(x) "
                             "first, or use the complex transform")
    elif x.dtype.kind != "c":
        raise DTypeError(f"fft ({fft_type}): expects a complex operand, got {x.short()}; convert with "
                         ".astype(complex64) (or complex128) first")
    want = fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,) if fft_type == "irfft" else fft_lengths
    if trail != want:
        raise ShapeError(f"fft ({fft_type}): fft_lengths={fft_lengths} need trailing dims {want}, got "
                         f"{x.short()}; pad or crop the operand first (fc.fft.* do it for n=/s=)")
    if fft_type == "rfft":
        shape = lead + fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,)
    elif fft_type == "irfft":
        shape = lead + fft_lengths
    else:
        shape = x.shape
    return ArrayType(shape, out_dtype(x.dtype, fft_type))


def _fft_impl(x, *, fft_type, fft_lengths):
    """The reference: `numpy.fft` over the trailing axes (NumPy's "backward" norm)."""
    axes = tuple(range(-len(fft_lengths), 0))
    if fft_type == "fft":
        y = np.fft.fftn(x, axes=axes)
    elif fft_type == "ifft":
        y = np.fft.ifftn(x, axes=axes)
    elif fft_type == "rfft":
        y = np.fft.rfftn(x, axes=axes)
    else:
        y = np.fft.irfftn(x, s=fft_lengths, axes=axes)
    # NumPy < 2 computes single precision in double
    return y.astype(out_dtype(x.dtype, fft_type), copy=False)


@functools.lru_cache(maxsize=256)
def half_spectrum_weights(n: int, edge: float, other: float, dtype: np.dtype) -> Array:
    """A 1-d constant of length n // 2 + 1: `edge` on the DC bin and (n even) the Nyquist bin,
    `other` on the bins that stand for a conjugate pair.

    Cached, so one graph (or two VJPs of one rfft) reuses one constant: the tracer interns
    constants by identity, which lets equal weighted nodes merge.
    """
    h = n // 2 + 1
    w = np.full(h, other, dtype)
    w[0] = edge
    if n % 2 == 0:
        w[-1] = edge
    w.setflags(write=False)
    return Array._from_value(w)


def _fft_vjp(ct, out, x, *, fft_type, fft_lengths):
    if fft_type in ("fft", "ifft"):
        # (I)DFT matrices are symmetric; JAX's pairing transposes without conjugation
        return (fft_p(ct, fft_type=fft_type, fft_lengths=fft_lengths),)
    size = math.prod(fft_lengths)
    n = fft_lengths[-1]
    if fft_type == "rfft":
        # ct: complex half spectrum -> real signal; irfft(conj(ct) * N / m), see the module docstring
        w = half_spectrum_weights(n, float(size), size / 2, ct.dtype)
        return (fft_p(conj(ct) * w, fft_type="irfft", fft_lengths=fft_lengths),)
    # irfft: ct real signal -> complex half spectrum; conj(rfft(ct)) * m / N
    spec = fft_p(ct, fft_type="rfft", fft_lengths=fft_lengths)
    w = half_spectrum_weights(n, 1 / size, 2 / size, spec.dtype)
    return (conj(spec) * w,)


fft_p = Primitive("fft", _fft_rule, _fft_impl, _fft_vjp, linear=True)

__all__: list[str] = []  # the user-facing wrappers live in funconv/fft.py (`fc.fft.rfftn`, ...)
