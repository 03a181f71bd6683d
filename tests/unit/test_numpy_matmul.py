"""The NumPy backend's batched matmul (`backends/numpy/lowering.py` `_batched_matmul`):
the product of any strided batches of matrices, whatever layout path it takes, and
jitted dot_general on transposed views through it."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.backends.numpy.lowering import _batched_matmul, _row_major

rng = np.random.default_rng(0)


def _batch(shape, dtype, layout):
    """A (B, m, n) batch in one of three memory layouts."""
    v = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        v = v + 1j * rng.standard_normal(shape)
    v = v.astype(dtype)
    if layout == "row":
        return v
    if layout == "col":
        return np.ascontiguousarray(v.transpose(0, 2, 1)).transpose(0, 2, 1)
    assert layout == "batch-inner"  # (m, n, B) memory: neither row- nor column-major
    return np.ascontiguousarray(v.transpose(1, 2, 0)).transpose(2, 0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
@pytest.mark.parametrize("la", ["row", "col", "batch-inner"])
@pytest.mark.parametrize("lb", ["row", "col", "batch-inner"])
@pytest.mark.parametrize("mkn", [(4, 8, 8), (1, 8, 1), (3, 1, 5)])
def test_batched_matmul_of_any_layout(dtype, la, lb, mkn):
    m, k, n = mkn
    a, b = _batch((7, m, k), dtype, la), _batch((7, k, n), dtype, lb)
    want = np.einsum("bij,bjk->bik", a.astype(np.complex128), b.astype(np.complex128))
    got = _batched_matmul(a, b)
    assert got.shape == (7, m, n) and got.dtype == np.result_type(a, b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_row_major():
    a = np.zeros((5, 3, 4), np.complex64)
    assert _row_major(a) is True and _row_major(a.transpose(0, 2, 1)) is False
    assert _row_major(np.zeros((3, 4, 5)).transpose(2, 0, 1)) is None


def test_jitted_per_frequency_products_of_transposed_spectra():
    """The FFT convolution's pattern: (F, N, C) spectra laid out (N, C, F) and (F, O, C)
    used transposed, through jit's dot_general lowering."""
    x = (rng.standard_normal((4, 8, 30)) + 1j * rng.standard_normal((4, 8, 30))).astype(np.complex64)
    w = (rng.standard_normal((30, 6, 8)) + 1j * rng.standard_normal((30, 6, 8))).astype(np.complex64)
    f = fc.jit(lambda x, w: fc.einsum("ncf,foc->fno", x, w))
    np.testing.assert_allclose(np.asarray(f(x, w)), np.einsum("ncf,foc->fno", x, w),
                               rtol=1e-5, atol=1e-5)
