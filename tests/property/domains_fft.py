"""Domain entry of the FFT primitive (`fft_p`, funconv/ops/fft.py) for the property table.

Draws a transform type, 1-2 transformed trailing axes of odd or even length and
0-2 batch axes; the operand is real for "rfft", complex otherwise (for "irfft" an
arbitrary half spectrum: the transform ignores the imaginary parts of the DC and
Nyquist bins, as NumPy's reference does). The NumPy meaning is `numpy.fft`'s
n-d transforms over the trailing axes with the default ("backward") norm.
"""

from __future__ import annotations

import numpy as np
from domains import DOMAINS, Case, Domain, draw_shape, floats, rng
from hypothesis import strategies as st


def _sample(data, dtype):
    r = rng(data)
    fft_type = data.draw(st.sampled_from(["fft", "ifft", "rfft", "irfft"]), label="fft_type")
    k = data.draw(st.integers(1, 2), label="k")
    lengths = tuple(data.draw(st.lists(st.integers(1, 6), min_size=k, max_size=k), label="lengths"))
    batch = draw_shape(data, min_dims=0, max_dims=2, max_side=3)
    trail = lengths[:-1] + (lengths[-1] // 2 + 1,) if fft_type == "irfft" else lengths
    shape = batch + trail
    if fft_type == "rfft":
        x = floats(r, shape, dtype)
    else:
        cd = np.complex64 if dtype == np.float32 else np.complex128
        x = (floats(r, shape, dtype) + 1j * floats(r, shape, dtype)).astype(cd)
    return Case((x,), {"fft_type": fft_type, "fft_lengths": lengths})


def _numpy(x, *, fft_type, fft_lengths):
    axes = tuple(range(-len(fft_lengths), 0))
    if fft_type == "irfft":
        return np.fft.irfftn(x, s=fft_lengths, axes=axes)
    return {"fft": np.fft.fftn, "ifft": np.fft.ifftn, "rfft": np.fft.rfftn}[fft_type](x, axes=axes)


DOMAINS["fft"] = Domain(_sample, numpy=_numpy, complex_io=True, rtol=1e-5, atol=1e-5)
