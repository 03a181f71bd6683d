"""fc.fft against numpy.fft (every function, every norm, odd and even sizes, n/s padding and
cropping, axes orders), round trips, dtypes, the adjoint identity of each transform (JAX's
real pairing Re(sum(a * b))), gradients to order 2, jit against eager, the graph a transform
emits, errors; fftfreq, rfftfreq, fftshift, ifftshift.

Every test that computes runs twice through the `fft_path` fixture: on the scipy.fft kernel
(when SciPy is installed) and on the numpy.fft fallback (`kernels.fft.USE_SCIPY = False`).
"""

from __future__ import annotations

import numpy as np
import pytest
from funconv.backends.numpy.kernels import fft as fft_kernels

import funconv as fc
from funconv.errors import ArgumentError, AxisError, DTypeError, ShapeError
from funconv.ir import Apply
from funconv.ops.fft import fft_p
from funconv.testing import check_grads

RNG = np.random.default_rng(0)
NORMS = [None, "backward", "ortho", "forward"]


@pytest.fixture(params=["scipy", "numpy"])
def fft_path(request, monkeypatch):
    """Run the test on the scipy.fft kernel and on the numpy.fft fallback."""
    if request.param == "scipy":
        pytest.importorskip("scipy.fft")
    monkeypatch.setattr(fft_kernels, "USE_SCIPY", request.param == "scipy")
    return request.param


def real(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def cplx(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


def close(got, want, dtype=np.float64):
    got = np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    tol = 1e-12 if dtype in (np.float64, np.complex128) else 2e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(scale, 1.0))


def _kind(name: str) -> str:
    """The transform of a function name: fft2/fftn -> fft, irfft2 -> irfft, ..."""
    return name.rstrip("2").removesuffix("n")


def _input(kind, shape, dtype=np.float64):
    # real input for the real forward transform; complex (the general case) for the others
    if kind == "rfft":
        return real(*shape, dtype=dtype)
    return cplx(*shape, dtype=np.complex64 if dtype == np.float32 else np.complex128)


# --- NumPy agreement -------------------------------------------------------------------------------

ONE_D = ["fft", "ifft", "rfft", "irfft"]


@pytest.mark.parametrize("name", ONE_D)
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("n", [None, 1, 5, 8, 13])
@pytest.mark.parametrize("norm", NORMS)
def test_1d_matches_numpy(fft_path, name, size, n, norm):
    for axis, shape in ((-1, (3, size)), (0, (size, 2))):
        x = _input(name, shape)
        want = getattr(np.fft, name)(x, n=n, axis=axis, norm=norm)
        close(getattr(fc.fft, name)(x, n=n, axis=axis, norm=norm), want)


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft", "irfft"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_1d_single_and_double_precision(fft_path, name, dtype):
    x = _input(name, (4, 9), dtype)
    got = getattr(fc.fft, name)(x)
    want = getattr(np.fft, name)(x.astype(np.complex128 if x.dtype.kind == "c" else np.float64))
    cd = np.complex64 if dtype == np.float32 else np.complex128
    assert got.dtype == (np.dtype(dtype) if name == "irfft" else np.dtype(cd))
    close(got, want, dtype)


TWO_D = ["fft2", "ifft2", "rfft2", "irfft2"]
N_D = ["fftn", "ifftn", "rfftn", "irfftn"]


@pytest.mark.parametrize("name", TWO_D)
@pytest.mark.parametrize("s", [None, (5, 6), (3, 9), (4, 1)])
@pytest.mark.parametrize("axes", [(-2, -1), (0, 2), (2, 0), (1, -3)])
@pytest.mark.parametrize("norm", NORMS)
def test_2d_matches_numpy(fft_path, name, s, axes, norm):
    x = _input(_kind(name), (4, 5, 6))
    want = getattr(np.fft, name)(x, s=s, axes=axes, norm=norm)
    close(getattr(fc.fft, name)(x, s=s, axes=axes, norm=norm), want)


@pytest.mark.parametrize("name", N_D)
@pytest.mark.parametrize("s, axes", [(None, None), (None, (2, 0)), (None, (0, 1, 2)), (None, (-1, 0, 1)),
                                     ((3, 8), (1, 0)), ((7, 2, 5), (2, 1, 0)), ((6,), (1,)),
                                     ((3, -1), (0, 2))])
@pytest.mark.parametrize("norm", NORMS)
def test_nd_matches_numpy(fft_path, name, s, axes, norm):
    x = _input(_kind(name), (4, 5, 6))
    want = getattr(np.fft, name)(x, s=s, axes=axes, norm=norm)
    close(getattr(fc.fft, name)(x, s=s, axes=axes, norm=norm), want)


@pytest.mark.parametrize("name", N_D)
def test_s_without_axes_means_the_last_axes(fft_path, name):
    x = _input(_kind(name), (3, 4, 5))
    want = getattr(np.fft, name)(x, s=(6, 4), axes=(1, 2))
    close(getattr(fc.fft, name)(x, s=(6, 4)), want)


def test_fftn_over_no_axes_is_the_identity(fft_path):
    x = real(3, 4, dtype=np.float32)
    y = fc.fft.fftn(x, axes=())
    assert y.dtype == np.complex64
    close(y, x.astype(np.complex64), np.float32)


def test_empty_batch(fft_path):
    assert fc.fft.rfft(np.zeros((0, 8), np.float32)).shape == (0, 5)
    assert fc.fft.ifft2(np.zeros((0, 3, 4), np.complex64)).shape == (0, 3, 4)


# --- dtypes -----------------------------------------------------------------------------------------


def test_dtypes(fft_path):
    f32, f64 = real(8, dtype=np.float32), real(8)
    assert fc.fft.fft(f32).dtype == np.complex64 and fc.fft.fft(f64).dtype == np.complex128
    assert fc.fft.rfft(f32).dtype == np.complex64 and fc.fft.rfft(f64).dtype == np.complex128
    assert fc.fft.irfft(f32).dtype == np.float32 and fc.fft.irfft(f64).dtype == np.float64
    assert fc.fft.irfft(cplx(5, dtype=np.complex64)).dtype == np.float32
    assert fc.fft.ifftn(cplx(2, 3)).dtype == np.complex128


def test_integer_input_is_converted_to_float32(fft_path):
    x = np.arange(6, dtype=np.int32)
    y = fc.fft.fft(x)
    assert y.dtype == np.complex64
    close(y, np.fft.fft(x.astype(np.float64)), np.float32)
    assert fc.fft.rfft(x).dtype == np.complex64
    assert fc.fft.rfftn(np.ones((2, 3), bool)).dtype == np.complex64
    close(fc.fft.fft([1, 2, 3]), np.fft.fft([1.0, 2.0, 3.0]), np.float32)  # lists too


# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 8), (5, 7), (1, 9), (4, 1)])
@pytest.mark.parametrize("norm", NORMS)
def test_round_trips(fft_path, shape, norm):
    x = real(*shape)
    close(fc.fft.irfftn(fc.fft.rfftn(x, norm=norm), s=shape, norm=norm), x)
    close(fc.fft.irfft(fc.fft.rfft(x, norm=norm), n=shape[-1], norm=norm), x)
    z = cplx(*shape)
    close(fc.fft.ifftn(fc.fft.fftn(z, norm=norm), norm=norm), z)
    close(fc.fft.fft2(fc.fft.ifft2(z, norm=norm), norm=norm), z)


def test_round_trip_float32(fft_path):
    x = real(16, 33, dtype=np.float32)
    back = fc.fft.irfft2(fc.fft.rfft2(x), s=x.shape)
    assert back.dtype == np.float32
    close(back, x, np.float32)


# --- the adjoint identity (JAX's convention: pair by Re(sum(a * b)), no conjugation) -------------


def _pair(a, b) -> float:
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


ADJOINT_CASES = [
    ("fft", {}), ("fft", {"n": 5}), ("fft", {"n": 11, "norm": "ortho"}), ("ifft", {"norm": "forward"}),
    ("ifft", {"n": 6}), ("rfft", {}), ("rfft", {"n": 7}), ("rfft", {"n": 12, "norm": "ortho"}),
    ("irfft", {}), ("irfft", {"n": 9}), ("irfft", {"n": 4, "norm": "forward"}),
    ("fft2", {"axes": (0, 2)}), ("ifft2", {"s": (3, 7)}), ("rfft2", {"norm": "ortho"}),
    ("rfft2", {"s": (5, 5), "axes": (2, 0)}), ("irfft2", {}), ("irfft2", {"s": (4, 7), "axes": (1, 0)}),
    ("fftn", {}), ("ifftn", {"axes": (2, 1), "norm": "ortho"}), ("rfftn", {}), ("rfftn", {"s": (2, 3, 9)}),
    ("irfftn", {}), ("irfftn", {"s": (5, 4, 7), "norm": "forward"}),
]


@pytest.mark.parametrize("name, kw", ADJOINT_CASES)
def test_adjoint_identity(fft_path, name, kw):
    """<ct, T x> == <T^T ct, x> for the linear map T, with T^T from fc.vjp."""
    kind = _kind(name)
    fn = getattr(fc.fft, name)
    for shape in ((4, 6, 8), (3, 5, 7)):
        x = _input(kind, shape)
        y, f_vjp = fc.vjp(lambda v: fn(v, **kw), x)
        ct = cplx(*y.shape) if y.dtype.kind == "c" else real(*y.shape)
        (x_ct,) = f_vjp(fc.asarray(ct))
        assert x_ct.dtype == x.dtype and x_ct.shape == x.shape
        lhs, rhs = _pair(ct, y), _pair(x_ct, x)
        assert abs(lhs - rhs) <= 1e-10 * (np.linalg.norm(ct) * np.linalg.norm(x) + 1), (lhs, rhs)


@pytest.mark.parametrize("fft_type, lengths", [("rfft", (8,)), ("rfft", (7,)), ("irfft", (8,)),
                                               ("irfft", (7,)), ("rfft", (3, 6)), ("irfft", (4, 5))])
def test_real_transforms_transpose_against_dense_matrix(fft_path, fft_type, lengths):
    """The VJP of rfft/irfft equals the transpose of the map's dense real matrix (complex
    values as (re, im) pairs), built column by column from the primitive's impl."""
    in_shape = lengths[:-1] + (lengths[-1] // 2 + 1,) if fft_type == "irfft" else lengths
    complex_in = fft_type == "irfft"

    def as_real(v):  # complex -> (re, im) stacked last
        return np.stack([v.real, v.imag], -1).ravel() if np.iscomplexobj(v) else v.ravel()

    def from_real(u):
        if complex_in:
            u = u.reshape(in_shape + (2,))
            return u[..., 0] + 1j * u[..., 1]
        return u.reshape(in_shape)

    n_in = int(np.prod(in_shape)) * (2 if complex_in else 1)
    cols = [as_real(fft_p.impl(from_real(np.eye(n_in)[i]), fft_type=fft_type, fft_lengths=lengths))
            for i in range(n_in)]
    A = np.stack(cols, 1)  # out_real x in_real
    out = fft_p.impl(from_real(np.zeros(n_in)), fft_type=fft_type, fft_lengths=lengths)
    ct = cplx(*out.shape) if out.dtype.kind == "c" else real(*out.shape)
    (x_ct,) = fc.vjp(lambda v: fft_p(v, fft_type=fft_type, fft_lengths=lengths),
                     from_real(RNG.standard_normal(n_in)))[1](fc.asarray(ct))
    # JAX's pairing Re(ct * v) = ct.re v.re - ct.im v.im: the real-pair form of ct is (re, -im),
    # and so is that of the cotangent of a complex input
    ct_r = np.stack([ct.real, -ct.imag], -1).ravel() if np.iscomplexobj(ct) else ct.ravel()
    want = A.T @ ct_r
    x_ct = np.asarray(x_ct)
    got = np.stack([x_ct.real, -x_ct.imag], -1).ravel() if complex_in else x_ct.ravel()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --- gradients -------------------------------------------------------------------------------------


H8 = cplx(8)


GRAD_CASES = {
    "power_spectrum": lambda x: fc.sum(fc.abs(fc.fft.rfft(x)) ** 2),
    "filter": lambda x: fc.real(fc.fft.ifft(fc.fft.fft(x) * H8)),
    "real_filter": lambda x: fc.fft.irfft(fc.fft.rfft(x) * H8[:5], n=8) ** 2,
    "padded_2d": lambda x: fc.sum(fc.fft.irfft2(fc.fft.rfft2(x, s=(5, 10)) ** 2, s=(5, 10)) * x[0, 0]),
    "ortho_axes": lambda x: fc.real(fc.fft.fftn(x, axes=(1, 0), norm="ortho")) ** 3,
    "forward_cropped": lambda x: fc.imag(fc.fft.ifft(fc.fft.rfft(x, n=6), n=3, norm="forward")) * x[..., :3],
    "shift": lambda x: fc.fft.fftshift(x) * fc.fft.ifftshift(x),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_check_grads_order_2(fft_path, name):
    x = real(3, 8)
    check_grads(GRAD_CASES[name], (x,), order=2)


def test_grad_of_power_spectrum_is_parseval(fft_path):
    # sum |fft(x)|^2 = n sum x^2 (Parseval), so the gradient is 2 n x
    x = real(4, 9)
    g = fc.grad(lambda v: fc.sum(fc.abs(fc.fft.fft(v)) ** 2))(x)
    close(g, 2 * 9 * x)


# --- jit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_jit_matches_eager(fft_path, name):
    f = GRAD_CASES[name]
    x = real(3, 8)
    close(fc.jit(f)(x), np.asarray(f(x)))
    loss = lambda v: fc.sum(f(v))
    close(fc.jit(fc.grad(loss))(x), np.asarray(fc.grad(loss)(x)))


@pytest.mark.parametrize("name", ONE_D + TWO_D + N_D)
def test_jit_each_transform(fft_path, name):
    x = _input(_kind(name), (3, 4, 6), np.float32)
    f = getattr(fc.fft, name)
    got = fc.jit(lambda v: f(v, norm="ortho"))(x)
    want = getattr(np.fft, name)(x, norm="ortho")
    assert got.dtype == np.asarray(f(x)).dtype
    close(got, want, np.float32)


def test_graph_of_a_trailing_rfftn_is_one_node():
    """What the FFT-convolution pass relies on: a transform over the trailing axes of an
    operand already at its length is a single fft_p node, and equal ones intern to one."""
    x = real(2, 3, 8, 8, dtype=np.float32)

    def f(v):
        return fc.fft.rfftn(v, axes=(-2, -1)), fft_p(v, fft_type="rfft", fft_lengths=(8, 8))

    g = fc.make_graph(f)(x)
    applies = [n for n in g.nodes() if isinstance(n, Apply)]
    assert [n.prim for n in applies] == [fft_p]
    assert g.outputs[0] is g.outputs[1]


# --- errors --------------------------------------------------------------------------------------


def test_errors():
    x = real(4, 6, dtype=np.float32)
    with pytest.raises(ShapeError, match=r"fft: n must be >= 1"):
        fc.fft.fft(x, n=0)
    with pytest.raises(ArgumentError, match="n must be an int"):
        fc.fft.fft(x, n=2.5)
    with pytest.raises(AxisError, match=r"rfft: axis 2 is out of range"):
        fc.fft.rfft(x, axis=2)
    with pytest.raises(AxisError, match="repeated axis"):
        fc.fft.fftn(x, axes=(0, 0))
    with pytest.raises(ArgumentError, match="'ortho'"):
        fc.fft.ifft2(x, norm="unitary")
    with pytest.raises(DTypeError, match=r"rfft2: expects a real input, got c64\[4,6\]"):
        fc.fft.rfft2(x.astype(np.complex64))
    with pytest.raises(ShapeError, match="pass n"):
        fc.fft.irfft(np.ones(1, np.complex64))
    with pytest.raises(ShapeError, match=r"s=\(4, 4, 4\) and axes=\(0, 1\)"):
        fc.fft.fftn(x, s=(4, 4, 4), axes=(0, 1))
    with pytest.raises(ShapeError, match="only 2"):
        fc.fft.fftn(x, s=(4, 4, 4))
    with pytest.raises(ShapeError, match="transform lengths must be >= 1"):
        fc.fft.rfftn(x, s=(0, 3))
    with pytest.raises(ArgumentError, match="at least one axis"):
        fc.fft.rfftn(x, axes=())
    with pytest.raises(ArgumentError, match="fft: expected an array"):
        fc.fft.fft("abc")


def test_primitive_errors():
    with pytest.raises(ShapeError, match=r"need trailing dims \(8,\), got f32\[3,6\]"):
        fft_p(fc.asarray(real(3, 6, dtype=np.float32)), fft_type="rfft", fft_lengths=(8,))
    with pytest.raises(ShapeError, match=r"irfft.*need trailing dims \(5,\)"):
        fft_p(fc.asarray(cplx(3, 4)), fft_type="irfft", fft_lengths=(8,))
    with pytest.raises(DTypeError, match="expects a complex operand"):
        fft_p(fc.asarray(real(4)), fft_type="fft", fft_lengths=(4,))
    with pytest.raises(ArgumentError, match="fft_type"):
        fft_p(fc.asarray(cplx(4)), fft_type="dct", fft_lengths=(4,))
    with pytest.raises(ArgumentError, match="fft_lengths"):
        fft_p(fc.asarray(cplx(4)), fft_type="fft", fft_lengths=[4])


# --- the kernel's two paths ------------------------------------------------------------------------


@pytest.mark.parametrize("fft_type", ["fft", "ifft", "rfft", "irfft"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_matches_impl_exact_dtype(fft_path, fft_type, dtype):
    lengths = (6, 5)
    shape = (3,) + (lengths[:-1] + (3,) if fft_type == "irfft" else lengths)
    x = _input(fft_type, shape, dtype)
    got = fft_kernels.fft_kernel(x, fft_type=fft_type, fft_lengths=lengths)
    want = fft_p.impl(x, fft_type=fft_type, fft_lengths=lengths)
    assert got.dtype == want.dtype
    close(got, want, dtype)


def test_scipy_path_is_taken_when_on(monkeypatch):
    sfft = pytest.importorskip("scipy.fft")
    calls = []

    class Spy:
        def __getattr__(self, name):
            def fn(*a, **kw):
                calls.append((name, kw.get("workers")))
                return getattr(sfft, name)(*a, **kw)
            return fn

    monkeypatch.setattr(fft_kernels, "_scipy_fft", Spy())
    monkeypatch.setattr(fft_kernels, "USE_SCIPY", True)
    fc.fft.rfft2(real(4, 4))
    fc.fft.ifft(np.zeros(fft_kernels.THREAD_MIN_SIZE, np.complex64))
    assert calls == [("rfftn", 1), ("ifftn", fft_kernels.WORKERS)]
    monkeypatch.setattr(fft_kernels, "USE_SCIPY", False)
    fc.fft.rfft2(real(4, 4))
    assert len(calls) == 2


# --- frequencies and shifts --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4, 7])
@pytest.mark.parametrize("d", [1.0, 0.1])
def test_fftfreq_rfftfreq(n, d):
    f, rf = fc.fft.fftfreq(n, d), fc.fft.rfftfreq(n, d)
    assert f.dtype == np.float32 and rf.dtype == np.float32  # JAX's default
    close(f, np.fft.fftfreq(n, d).astype(np.float32), np.float32)
    close(rf, np.fft.rfftfreq(n, d).astype(np.float32), np.float32)
    close(fc.fft.fftfreq(n, d, dtype=np.float64), np.fft.fftfreq(n, d))
    close(fc.fft.rfftfreq(n, d=d, dtype="float64"), np.fft.rfftfreq(n, d))


def test_freq_errors():
    with pytest.raises(ShapeError, match="fftfreq: n must be >= 1"):
        fc.fft.fftfreq(0)
    with pytest.raises(ArgumentError, match="sample spacing"):
        fc.fft.rfftfreq(4, d="x")
    with pytest.raises(DTypeError, match="float"):
        fc.fft.fftfreq(4, dtype=np.int32)


@pytest.mark.parametrize("shape", [(5,), (4, 6), (3, 4, 5), (1, 0)])
@pytest.mark.parametrize("axes", [None, 0, -1, (0, -1)])
def test_fftshift_ifftshift(shape, axes):
    x = real(*shape)
    close(fc.fft.fftshift(x, axes), np.fft.fftshift(x, axes))
    close(fc.fft.ifftshift(x, axes), np.fft.ifftshift(x, axes))
    close(fc.fft.ifftshift(fc.fft.fftshift(x, axes), axes), x)
    assert fc.fft.fftshift(x.astype(np.int32)).dtype == np.int32


def test_fftshift_of_fftfreq_is_sorted():
    close(fc.fft.fftshift(fc.fft.fftfreq(7, dtype=np.float64)), np.sort(np.fft.fftfreq(7)))
    with pytest.raises(AxisError, match="fftshift"):
        fc.fft.fftshift(real(3), axes=1)
