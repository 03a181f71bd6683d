"""The OpenCL backend on the real device (PoCL on the CPU in CI; no mocks), against the
reference interpreter: one jitted function per primitive family (each graph is one
OpenCL program, and PoCL compiles cost ~1 s each cold, so families share programs),
float64, a CNN training step against the NumPy backend, and the errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
from funconv.backends.interpreter import evaluate

import funconv as fc
from funconv.ops import elementwise as ew

pytest.importorskip("pyopencl")


def _device_or_skip():
    from funconv.backends.opencl.device import OpenCLUnavailable, default_device

    try:
        return default_device()
    except OpenCLUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def device():
    return _device_or_skip()


def check(f, *args, rtol=2e-5, atol=2e-6):
    """f jitted on OpenCL equals the interpreter on the traced graph (dtypes and shapes too)."""
    args = [np.asarray(a) for a in args]
    ref = evaluate(fc.make_graph(f)(*args), args)
    got = fc.tree.leaves(fc.jit(f, backend="opencl")(*args))
    assert len(ref) == len(got)
    for k, (r, g) in enumerate(zip(ref, got)):
        g = np.asarray(g)
        assert (g.shape, g.dtype) == (r.shape, r.dtype), (k, g.shape, g.dtype, r.shape, r.dtype)
        if r.dtype.kind in "fc":
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(g, r, err_msg=f"output {k}")


rng = np.random.default_rng(0)


def rand(*shape, dtype=np.float32, lo=-2, hi=2):
    return rng.uniform(lo, hi, shape).astype(dtype)


def test_elementwise_fused_with_broadcasts(device):
    x, s, b = rand(4, 5), rand(5), rand(4, 1)
    y = rand(4, 5, lo=0.5, hi=2)
    n = rand(4, 5) * 3

    def f(x, s, b, y, n):
        a = fc.maximum(x * s + b, 0.0)  # relu(x * s + b): one kernel
        u = [fc.exp(x), fc.log(y), fc.log1p(y), fc.expm1(x), fc.sin(x), fc.cos(x), fc.tanh(x),
             fc.sigmoid(x), fc.sqrt(y), fc.rsqrt(y), fc.abs(x), fc.sign(x), fc.floor(n), fc.ceil(n),
             fc.square(x), fc.erf(x), fc.round(n), -x, x / y, x - s, fc.power(y, x), fc.arctan2(x, y),
             fc.minimum(x, s), n // y, n % y, fc.nn.relu(x), fc.where(x > s, x, b)]
        c = [x < s, x <= s, x > b, x >= b, x == x, x != s, fc.logical_not(x > 0),  # noqa: PLR0124
             (x > 0) & (s > 0), (x > 0) | (s > 0), (x > 0) ^ (s > 0)]
        return a, u, c

    check(f, x, s, b, y, n)


def test_integer_and_conversion_semantics(device):
    i = rng.integers(-20, 20, (3, 7)).astype(np.int32)
    j = rng.integers(-5, 6, (3, 7)).astype(np.int32)
    x = rand(3, 7) * 10

    def f(i, j, x):
        return [i // j, i % j, i * j - i, fc.abs(i), fc.sign(i), fc.maximum(i, j), fc.minimum(i, j),
                fc.power(i, fc.clip(j, -2, 3)), x.astype(np.int32), i.astype(np.float32),
                (x > 0).astype(np.float32), x.astype(bool), i.astype(np.int64) * 3,
                fc.bitwise_and(i, j), fc.bitwise_xor(i, j)]

    check(f, i, j, x)


def test_every_supported_dtype_has_a_c_type():
    from funconv.backends.opencl.codegen import CTYPE

    from funconv.types import SUPPORTED

    assert set(SUPPORTED) <= set(CTYPE), sorted(str(d) for d in set(SUPPORTED) - set(CTYPE))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.uint8, np.uint32])
def test_small_and_unsigned_integer_dtypes(device, dtype):
    # int8, int16 and uint16 (Array API dtypes) were rejected at compile time ("the OpenCL
    # backend does not handle dtype int8"); found by the property suite (bitwise_not,
    # shift_left, shift_right on int8). Wrapping arithmetic, shifts past the width,
    # reductions, comparisons and conversions, as NumPy's.
    info = np.iinfo(dtype)
    i = rng.integers(max(info.min, -100), min(info.max, 100), (3, 7)).astype(dtype)
    j = rng.integers(0, 8 * np.dtype(dtype).itemsize + 3, (3, 7)).astype(dtype)
    big = np.full((3, 1), info.max, dtype)

    def f(i, j, big):
        return [~i, i << j, i >> j, i + big, i * big, i - j, fc.maximum(i, j), i.sum(axis=1),
                i.max(axis=0), fc.argmax(i, axis=1), i < j, i.astype(np.float32),
                (i.astype(np.float32) * 3).astype(dtype), fc.cumsum(j, axis=1), i[:, ::-1] @ j.T]

    check(f, i, j, big)


def test_reductions(device):
    x = rand(3, 4, 5)
    big = rand(70000)  # a long reduction with one output: split in two stages
    k = rng.integers(-9, 9, (6, 5)).astype(np.int32)

    def f(x, big, k):
        return [x.sum(), x.sum(axis=1), x.sum(axis=(0, 2), keepdims=True), x.max(axis=2), x.min(axis=0),
                fc.argmax(x, axis=1), fc.argmin(x, axis=2), x.prod(axis=1), fc.cumsum(x, axis=1),
                x.T.sum(axis=0), big.sum(), big.max(), fc.logsumexp(x, axis=-1), x.mean(axis=1),
                k.sum(axis=0), k.max(), fc.argmax(k, axis=0), fc.cumsum(k, axis=0),
                fc.nn.softmax(x, axis=-1)]

    check(f, x, big, k, rtol=1e-4, atol=1e-4)


def test_dot_general_and_shape_ops(device):
    from funconv.ops.shape import pad_p

    a, b = rand(7, 9), rand(9, 5)
    bt = rand(3, 4, 6)
    v = rand(9)

    def f(a, b, bt, v):
        c = rand_c = bt @ fc.transpose(bt, (0, 2, 1))  # batched, the rhs a transposed view
        return [a @ b, a.T.T @ b, v @ b, a @ v, fc.outer(v, v), rand_c, c.sum(axis=0),
                fc.einsum("bij,bkj->bik", bt, bt), fc.tensordot(bt, bt, axes=([1, 2], [1, 2])),
                fc.reshape(fc.transpose(bt, (2, 0, 1)), (6, -1)), bt[:, 1:3, ::2], fc.flip(bt, axis=(0, 2)),
                fc.pad(a, [(1, 2), (0, 3)]), pad_p(a, fc.asarray(np.float32(-1)), config=((-1, 2, 0), (2, -3, 0))),
                fc.concatenate([a, a[:2] * 2], axis=0), fc.stack([v, v + 1]), fc.broadcast_to(v, (3, 9)),
                fc.tile(v[:3], 2), fc.roll(a, 2, axis=1)]

    check(f, a, b, bt, v, rtol=1e-5, atol=1e-5)


def test_pad_with_interior_and_gather_scatter(device):
    from funconv.ops.shape import pad_p

    x = rand(4, 5)
    idx = np.array([[3, 1], [0, 0], [3, 1], [1, 4]], np.int32)
    rows = np.array([2, 0, 2, 3, 2], np.int32)

    def f(x, idx, rows):
        p = pad_p(x, fc.asarray(np.float32(0.5)), config=((1, -1, 2), (-2, 3, 1)))
        g = x[idx[:, 0], idx[:, 1]]
        t = x[rows]  # gather of whole rows
        s = x.at[rows].add(x[rows] * 0.5 + 1.0)  # scatter-add with duplicate rows
        z = fc.zeros((6,)).at[rows].add(1.0)
        return [p, g, t, s, z, fc.take(x, rows, axis=1), fc.argsort(x, axis=1), fc.sort(x, axis=0)]

    check(f, x, idx, rows)


def test_convolutions_and_pooling(device):
    x = rand(2, 4, 9, 8)
    w = rand(6, 2, 3, 3)
    w1 = rand(4, 1, 3, 3)

    def f(x, w, w1):
        return [fc.conv(x, w, stride=2, padding=1, groups=2),
                fc.conv(x, w1, padding="SAME", groups=4),  # depthwise
                fc.conv(x, w[:, :, :2, :], dilation=(2, 1), padding=((1, 0), (-1, 2)), groups=2),
                fc.conv_transpose(x, w[:4], stride=2, padding=1),  # lhs dilation
                fc.max_pool(x, 2), fc.max_pool(x, 3, stride=2, padding=1),
                fc.avg_pool(x, 2), fc.avg_pool(x, (3, 2), stride=1, padding=1)]

    check(f, x, w, w1, rtol=1e-4, atol=1e-4)


def test_conv_and_pool_gradients(device):
    x = rand(2, 3, 8, 8)
    w = rand(4, 3, 3, 3)

    def loss(x, w):
        y = fc.conv(x, w, stride=2, padding=1)
        y = fc.max_pool(fc.nn.relu(y), 2)
        z = (fc.max_pool(x, 3, stride=2, padding=1) ** 2).sum() + (fc.avg_pool(x, 2) ** 2).sum()
        return (y * y).sum() + z

    check(fc.grad(loss, argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-4)

    def second(x):  # select_and_gather: the derivative of max pooling's derivative
        return fc.jvp(lambda v: fc.grad(lambda u: fc.max_pool(u, 2).sum() ** 2)(v), (x,), (x,))[1]

    check(second, x, rtol=1e-4, atol=1e-4)


def test_random_bits_match_numpy_backend(device):
    def f(key):
        k1, k2 = fc.random.split(key)
        return [fc.random.uniform(k1, (5, 7)), fc.random.normal(k2, (9,)),
                fc.random.uniform(k2, (3,), dtype=np.float64), fc.random.fold_in(key, 7),
                fc.random.permutation(k1, 11), fc.random.bits(key, (5,))]

    key = np.asarray(fc.random.key(42))
    got = fc.jit(f, backend="opencl")(key)
    ref = fc.jit(f, backend="numpy")(key)
    for g, r in zip(fc.tree.leaves(got), fc.tree.leaves(ref)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(r))


def test_float64(device):
    if not device.fp64:
        pytest.skip("the device has no cl_khr_fp64")
    a, b = rand(6, 5, dtype=np.float64), rand(5, 4, dtype=np.float64)

    def f(a, b):
        return fc.tanh(a @ b).sum(axis=0), fc.exp(a) / 3.0, a.max(axis=1)

    check(f, a, b, rtol=1e-12, atol=1e-12)


def _cnn_loss(params, x, y):
    h = fc.nn.relu(fc.conv(x, params["w1"], padding=1) + params["b1"][:, None, None])
    h = fc.max_pool(h, 2)
    h = fc.nn.relu(fc.conv(h, params["w2"], stride=2, padding=1))
    h = h.reshape(h.shape[0], -1)
    logits = h @ params["w3"] + params["b3"]
    return -(fc.nn.log_softmax(logits, axis=-1) * y).sum() / x.shape[0]


def test_training_step_matches_numpy_backend(device):
    params = {"w1": rand(4, 1, 3, 3) * 0.5, "b1": rand(4) * 0.1, "w2": rand(6, 4, 3, 3) * 0.3,
              "w3": rand(6 * 2 * 2, 10) * 0.3, "b3": rand(10) * 0.1}
    x = rand(8, 1, 8, 8)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8)]

    def step(params, x, y):
        loss, g = fc.value_and_grad(_cnn_loss)(params, x, y)
        return loss, fc.tree.map(lambda p, d: p - 0.1 * d, params, g)

    got = fc.jit(step, backend="opencl")(params, x, y)
    ref = fc.jit(step, backend="numpy")(params, x, y)
    for g, r in zip(fc.tree.leaves(got), fc.tree.leaves(ref)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-5)


def test_config_default_backend_and_inspection(device):
    fc.config.update("backend", "opencl")
    try:
        f = fc.jit(lambda x: fc.nn.relu(x * 2.0 + 1.0))
        x = rand(3, 4)
        np.testing.assert_allclose(np.asarray(f(x)), np.maximum(x * 2 + 1, 0), rtol=1e-6)
        lowered = f.lower(x)
        assert "__kernel" in lowered.source and lowered.source.count("__kernel") == 1  # fused
        prof = f.profile(x, repeat=2)
        assert "relu" in str(prof)
    finally:
        fc.config.update("backend", "numpy")


def test_build_error_names_source_log_and_line(device, monkeypatch):
    from funconv.backends.opencl import lowering
    from funconv.backends.opencl.device import OpenCLBuildError

    template = lowering.ew_template
    monkeypatch.setattr(lowering, "ew_template",  # a broken template for tanh
                        lambda n: "tanh({0}) +* 1" if n.prim.name == "tanh" else template(n))
    with pytest.raises(OpenCLBuildError) as e:
        fc.jit(lambda x: fc.tanh(x) * 3.0, backend="opencl")(rand(5))  # this line
    msg = str(e.value)
    assert "source saved to" in msg and "test_opencl.py" in msg and "error" in msg
    path = msg.split("source saved to ")[1].split()[0]
    assert os.path.exists(path)


def test_fp64_error_names_the_node(device, monkeypatch):
    from funconv.backends.opencl.device import OpenCLUnsupported

    monkeypatch.setattr(device, "fp64", False)
    with pytest.raises(OpenCLUnsupported, match="cl_khr_fp64.*test_opencl.py"):
        fc.jit(lambda x: fc.exp(x) + 1.0, backend="opencl")(rand(3, dtype=np.float64))


def test_no_platform_is_a_clear_error():
    # a fresh process that cannot import pyopencl: a FuncConvError naming the install command
    code = ("import sys; sys.modules['pyopencl'] = None\n"
            "import funconv as fc, numpy as np\n"
            "try:\n    fc.jit(lambda x: x + 1, backend='opencl')(np.ones(3, np.float32))\n"
            "except fc.errors.FuncConvError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert "ERR" in out.stdout and 'pip install -e ".[opencl]"' in out.stdout, out.stdout + out.stderr
    assert "FUNCONV_OPENCL_DEVICE" in out.stdout and "Traceback" not in out.stdout


def test_device_choice_by_name(device):
    # FUNCONV_OPENCL_DEVICE picks by index or name substring; no match lists the devices
    code = ("import funconv as fc, numpy as np\n"
            "try:\n    print('OK', fc.jit(lambda x: x * 2, backend='opencl')(np.ones(2, np.float32)))\n"
            "except fc.errors.FuncConvError as e:\n    print('ERR', e)\n")
    env = dict(os.environ, FUNCONV_OPENCL_DEVICE="no-such-device")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert "ERR" in out.stdout and "matches no OpenCL device" in out.stdout and "0: " in out.stdout, out.stdout
    env["FUNCONV_OPENCL_DEVICE"] = device.name.split()[0][:6]
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert "OK [2. 2.]" in out.stdout, out.stdout + out.stderr


def _numpy_equal(got, want):
    got = np.asarray(got)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def test_templates_match_numpy_nan_int_bool(device):
    # the per-kind C templates of the primitives, against NumPy itself: NaN propagation (fmax/fmin
    # drop NaNs), integer abs/sign/floor_divide/remainder/power, bool add/mul/max/min (all
    # primitives on special values: test_opencl_templates.py)
    nan = np.float32(np.nan)
    x = np.array([1.0, nan, -2.0, nan, 0.0, -0.0, 3.5, -np.inf], np.float32)
    y = np.array([nan, 1.0, 5.0, nan, -1.0, 2.0, -3.5, 1.0], np.float32)
    i = np.array([-7, 7, -7, 7, 0, -2**31 + 1, 5, -1], np.int32)
    j = np.array([2, -2, -2, 3, 3, 4, 0, 3], np.int32)
    b = np.array([True, True, False, False, True, False, True, False])
    c = np.array([False, True, True, False, True, False, False, True])

    def f(x, y, i, j, b, c):
        return [fc.maximum(x, y), fc.minimum(x, y), fc.nn.relu(x), fc.sign(x), x // y, x % y,
                fc.abs(i), fc.sign(i), fc.maximum(i, j), fc.minimum(i, j), i // j, i % j,
                fc.power(i, fc.clip(j, 0, 3)), b + c, b * c, fc.maximum(b, c), fc.minimum(b, c)]

    got = fc.jit(f, backend="opencl")(x, y, i, j, b, c)
    with np.errstate(all="ignore"):
        want = [np.maximum(x, y), np.minimum(x, y), np.where(np.isnan(x) | (x > 0), x, 0).astype(np.float32),
                np.sign(x), ew._floor_divide(x, y), x % y,  # funconv's // (the Array API's at inf)
                np.abs(i), np.sign(i), np.maximum(i, j), np.minimum(i, j),
                np.floor_divide(i, np.where(j == 0, 1, j)) * (j != 0),
                np.remainder(i, np.where(j == 0, 1, j)) * (j != 0), np.power(i, np.clip(j, 0, 3)),
                b + c, b * c, np.maximum(b, c), np.minimum(b, c)]
    for k, (g, w) in enumerate(zip(got, want)):
        try:
            _numpy_equal(g, w)
        except AssertionError as e:
            raise AssertionError(f"output {k}: {e}") from None


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_templates_match_numpy(device, dtype):
    if dtype == np.complex128 and not device.fp64:
        pytest.skip("the device has no cl_khr_fp64")
    z = (rand(6) + 1j * rand(6)).astype(dtype)
    w = (rand(6) + 1j * rand(6)).astype(dtype)
    w[2] = z[2]

    def f(z, w):
        return [z * w, z / w, fc.square(z), fc.conj(z), z == w, z != w, z + w * 2.0, -z,
                fc.real(z), fc.imag(w), (z * w).sum()]

    got = fc.jit(f, backend="opencl")(z, w)
    want = [z * w, z / w, np.square(z), np.conj(z), z == w, z != w, z + w * dtype(2.0), -z,
            np.real(z), np.imag(w), (z * w).sum()]
    for k, (g, wv) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.dtype == wv.dtype, (k, g.dtype, wv.dtype)
        tol = 1e-5 if dtype == np.complex64 else 1e-12
        np.testing.assert_allclose(g, wv, rtol=tol, atol=tol, err_msg=f"output {k}")


def test_small_kernels_share_one_bundle_kernel(device):
    # the many small kernels of a graph are one OpenCL kernel (the bundle): one cold compile
    from funconv.backends.opencl.codegen import BUNDLE

    def f(x, y):
        return [fc.exp(x).sum(axis=0), fc.nn.softmax(x, axis=-1), x.max(axis=1), y @ y.T, (x - 1.0) * 2.0]

    x, y = rand(5, 7), rand(9, 4)
    src = fc.jit(f, backend="opencl").lower(x, y).source
    kernels = src.count("__kernel void")
    assert BUNDLE in src and kernels <= 4, kernels  # the bundle, the GEMM and its two pack kernels
    check(f, x, y, rtol=1e-5, atol=1e-5)


def test_packed_gemm_edges(device):
    # the CPU GEMM's tiles (6 x 16) at ragged edges, batched, on transposed and sliced views,
    # a convolution whose output rows (P = 7 * 9) cross the 16-column tiles, and a grouped one
    # large enough for the packed GEMM (its gradients sum 512 products of order 10: float32
    # summation order differs from NumPy's by ~1e-4 relative)
    a, b = rand(3, 37, 50), rand(3, 50, 45)
    m, n = rand(64, 130), rand(130, 33)
    x, w = rand(3, 5, 7, 9), rand(8, 5, 3, 3)
    x2, w2 = rand(2, 8, 16, 16), rand(16, 4, 3, 3)

    def f(a, b, m, n, x, w, x2, w2):
        conv2 = lambda x2, w2: fc.conv(x2, w2, padding=1, groups=2)
        return [a @ b, fc.transpose(b, (0, 2, 1)) @ fc.transpose(a, (0, 2, 1)), m @ n, m[::2, 1:] @ n[1:],
                fc.conv(x, w, padding=1), fc.grad(lambda w: (fc.conv(x, w, padding=1) ** 2).sum())(w),
                conv2(x2, w2), fc.grad(lambda x2, w2: (conv2(x2, w2) ** 2).sum(), argnums=(0, 1))(x2, w2)]

    check(f, a, b, m, n, x, w, x2, w2, rtol=5e-4, atol=1e-3)


def test_depthwise_conv_direct_kernel_and_gradients(device):
    # grouped convolutions with short reductions take the direct kernel (no im2col)
    x, w = rand(2, 6, 7, 9), rand(6, 1, 3, 3)
    w2 = rand(6, 2, 3, 3)

    def f(x, w, w2):
        loss = lambda x, w, w2: ((fc.conv(x, w, padding=1, groups=6) ** 2).sum()
                                 + (fc.conv(x, w2, stride=2, groups=3) ** 2).sum())
        return [fc.conv(x, w, padding=1, groups=6), fc.grad(loss, argnums=(0, 1, 2))(x, w, w2)]

    assert "conv_direct" in fc.jit(f, backend="opencl").lower(x, w, w2).source
    check(f, x, w, w2, rtol=1e-4, atol=1e-4)


def test_max_pool_gradient_ties_and_nan(device):
    # 2x2 pooling of an even map (the tiled select_and_scatter_add) and a 3x3/2 one (the
    # general kernel): ties send the cotangent to the first maximum, NaN propagates, as NumPy
    x = np.round(rand(2, 3, 6, 6) * 2) / 2  # many ties
    x[0, 0, 0, 1] = np.nan

    def f(x):
        return [fc.grad(lambda x: (fc.max_pool(x, 2) * 3.0).sum())(x),
                fc.grad(lambda x: (fc.max_pool(x, 3, stride=2) ** 2).sum())(x)]

    src = fc.jit(f, backend="opencl").lower(x).source
    assert "select_scatter_tiled" in src
    got = fc.jit(f, backend="opencl")(x)
    ref = evaluate(fc.make_graph(f)(x), [x])
    for g, r in zip(got, ref):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-6, equal_nan=True)


def test_auto_convolution_avoids_what_the_backend_lacks(device):
    """A large kernel picks FFT on the NumPy backend; the OpenCL backend has no FFT, so
    "auto" picks im2col there, and forcing "fft" says why it cannot."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
    w = rng.standard_normal((4, 3, 15, 15)).astype(np.float32)
    f = lambda x, w: fc.conv(x, w, padding=7)
    assert any(n.prim.name == "fft" for n in fc.jit(f).lower(x, w).graph.applies())
    ocl = fc.jit(f, backend="opencl")
    assert [p.choice for p in ocl.lower(x, w).conv_plans] == ["im2col"]
    np.testing.assert_allclose(np.asarray(ocl(x, w)), np.asarray(fc.jit(f)(x, w)), rtol=1e-4, atol=1e-3)
    with pytest.raises(fc.errors.ArgumentError, match="has no fft primitive"):
        fc.jit(lambda x, w: fc.conv(x, w, padding=7, algorithm="fft"), backend="opencl")(x, w)


def _launches(f, *args):
    exe = fc.jit(f, backend="opencl").lower(*args).executable
    return [name for name, _, _ in exe.launches]


def test_reduce_then_map_fusion_counts_kernels(device, monkeypatch):
    """log_softmax over [64, 10]: the max, the max of the shifted logits (logsumexp's own
    guard), the sum of exp, and one map reading the reduced values by index arithmetic: 4
    kernels. Without reduce-then-map fusion (the earlier plan: only same-shape single-consumer
    chains fuse) it took 9."""
    from funconv.backends.opencl import codegen, lowering

    x = rand(64, 10)
    after = _launches(fc.nn.log_softmax, x)
    assert len(after) == 4, after
    assert [k.split("_", 1)[1] for k in after] == ["reduce_max", "reduce_max", "reduce_sum", "sub"]
    with monkeypatch.context() as m:
        m.setattr(codegen, "RECOMPUTE_MAX", 0)
        m.setattr(lowering, "FUSED_REDUCTIONS", frozenset())
        assert len(_launches(fc.nn.log_softmax, rand(64, 11))) == 9
    # each reduced value is read, not materialised, by the map: one source kernel per launch
    src = fc.jit(fc.nn.log_softmax, backend="opencl").lower(x).source
    assert src.count("inline void k") + src.count("__kernel void k") == 4


def test_softmax_family_matches_numpy_backend(device):
    # the fused kernels against the NumPy backend, with rows holding inf, -inf and NaN
    x = rand(64, 10) * 4
    x[3, 2], x[5, :], x[7, 1], x[9, 4] = np.inf, -np.inf, np.nan, 80.0
    labels = rng.integers(0, 10, 64).astype(np.int32)

    def f(x, labels):
        loss = lambda x: fc.nn.cross_entropy(x, labels[10:])
        return [fc.nn.log_softmax(x), fc.nn.softmax(x, axis=0), fc.nn.logsumexp(x, axis=1),
                fc.nn.logsumexp(x[10:], axis=1, keepdims=True), *fc.value_and_grad(loss)(x[10:])]

    want = fc.jit(f)(x, labels)
    got = fc.jit(f, backend="opencl")(x, labels)
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-6, atol=1e-6, equal_nan=True,
                                   err_msg=f"output {k}")
    assert len(_launches(lambda x: fc.nn.softmax(x, axis=0), x)) <= 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_local_memory_gemm_on_pocl(device, monkeypatch, dtype):
    """The GPU GEMM (local-memory 32x32 tiles, kernels/gemm_local.cl), forced on PoCL with
    FUNCONV_OPENCL_GEMM=local: sizes not multiples of the tile (or of its 16-deep k step),
    batched, the transposed and strided operands dot_general produces (a gradient's x.T @ g),
    and a convolution's im2col GEMMs with both gradients."""
    if dtype == np.float64 and not device.fp64:
        pytest.skip("the device has no cl_khr_fp64")
    monkeypatch.setenv("FUNCONV_OPENCL_GEMM", "local")
    a, b = rand(3, 37, 50, dtype=dtype), rand(3, 50, 45, dtype=dtype)
    m, n = rand(65, 33, dtype=dtype), rand(33, 1, dtype=dtype)
    u, v = rand(300, 17, dtype=dtype), rand(300, 31, dtype=dtype)
    x, w = rand(2, 3, 11, 9, dtype=dtype), rand(5, 3, 3, 3, dtype=dtype)

    def f(a, b, m, n, u, v, x, w):
        loss = lambda x, w: (fc.conv(x, w, padding=1, stride=(2, 1)) ** 2).sum()
        return [a @ b, fc.transpose(b, (0, 2, 1)) @ fc.transpose(a, (0, 2, 1)), m @ n, u.T @ v,
                m[::2, 1:] @ m[:32, ::3], fc.einsum("bij,bkj->bik", a, a),
                fc.grad(lambda m: (fc.tanh(m @ n) ** 2).sum())(m),
                fc.conv(x, w, padding=1, stride=(2, 1)), fc.grad(loss, argnums=(0, 1))(x, w)]

    src = fc.jit(f, backend="opencl").lower(a, b, m, n, u, v, x, w).source
    assert "gemm_local" in src and "vstore8" not in src  # no packed CPU GEMM left
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-11}
    check(f, a, b, m, n, u, v, x, w, **tol)


def test_gemm_choice_knob(device, monkeypatch):
    from funconv.backends.opencl.lowering import gemm_choice

    monkeypatch.delenv("FUNCONV_OPENCL_GEMM", raising=False)
    assert gemm_choice(device) == ("register" if device.is_cpu else "local")
    monkeypatch.setenv("FUNCONV_OPENCL_GEMM", "sideways")
    with pytest.raises(fc.errors.FuncConvError, match="FUNCONV_OPENCL_GEMM='sideways'.*local"):
        fc.jit(lambda a, b: a @ b, backend="opencl")(rand(4, 4), rand(4, 4))


@pytest.mark.parametrize("shape, axes", [
    ((524288,), None), ((4, 8, 128, 128), None), ((32, 16384), None), ((16384, 32), None),
    ((4, 8, 128, 128), (0, 2, 3)), ((64, 8192), 1)])
def test_long_float32_sums_are_accurate(device, shape, axes):
    """A float32 sum of ~500k values (a loss over an image batch) within 1e-5 of the
    float64 sum: the long reductions cut in parts sum blocks of 128 first (a running sum
    per part was 1.1e-3 off for f32[4,8,128,128], found by a new user's loss)."""
    rng = np.random.default_rng(0)
    for a in (np.full(shape, 0.7231, np.float32), rng.random(shape, np.float32)):
        want = a.astype(np.float64).sum(axis=axes)
        got = fc.jit(lambda v: fc.sum(v, axis=axes), backend="opencl")(a)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5)
        mean = fc.jit(lambda v: fc.mean(v), backend="opencl")(a)
        assert abs(float(mean) - a.astype(np.float64).mean()) <= 1e-5 * abs(a.mean())
