"""Recover a hidden blur kernel by gradient descent, with FFT convolution chosen by `fc.jit`.

One of scikit-learn's bundled sample photos, in grayscale and downsampled, is blurred by a
hidden 21x21 kernel (a rotated, elongated Gaussian: camera shake) and noise is added. A
21x21 kernel is then fitted to (photo, blurred photo) by Adam on the mean squared error,
with a jitted step. A 21x21 kernel on a large image is where FFT convolution wins: the
compiler's cost model picks it for both convolutions of the step (the forward and the
kernel's gradient; the photo is data, so it has no gradient), and this script prints what
it chose, read from `step.lower(...).conv_plans`.

At the end: the recovered kernel's relative error, and a PNG with the original, the
blurred and the restored photo side by side (restored by Wiener deconvolution with the
recovered kernel, through `fc.fft`). The PNG is written with zlib + struct only.

Run: python examples/learn_filter.py [--size 256] [--steps 1000] [--out learn_filter.png]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib

import numpy as np

import funconv as fc

K = 21  # the hidden kernel's size
PAD = K // 2  # "same" padding


# --- data ------------------------------------------------------------------------------------------


def load_photo(size: int) -> np.ndarray:
    """A size x size grayscale photo in [0, 1] (float32): scikit-learn's china.jpg, its
    central square block-averaged down (box filter, then every f-th pixel)."""
    from sklearn.datasets import load_sample_images

    rgb = load_sample_images().images[0].astype(np.float32) / 255  # (427, 640, 3)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma weights
    side = min(gray.shape)
    f = max(side // size, 1)
    top, left = (gray.shape[0] - side) // 2, (gray.shape[1] - side) // 2
    sq = gray[top:top + size * f, left:left + size * f]
    return sq.reshape(size, f, size, f).mean(axis=(1, 3))


def hidden_kernel(rng: np.random.Generator) -> np.ndarray:
    """A K x K elongated Gaussian at a random angle (sigma 5 along, 1.5 across), sum 1."""
    t = np.arange(K) - PAD
    yy, xx = np.meshgrid(t, t, indexing="ij")
    a = rng.uniform(0, np.pi)
    u, v = xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)
    k = np.exp(-u ** 2 / (2 * 5.0 ** 2) - v ** 2 / (2 * 1.5 ** 2))
    return (k / k.sum()).astype(np.float32)


def blur(img, k):
    """conv(img, k) with "same" zero padding: (H, W) and (K, K) -> (H, W)."""
    return fc.conv(img[None, None], k[None, None], padding=PAD)[0, 0]


# --- progress bar and PNG ------------------------------------------------------------------------


def progress(step: int, steps: int, loss: float, start: float, width: int = 24) -> str:
    filled = width * step // max(steps, 1)
    rate = step / max(time.perf_counter() - start, 1e-9)
    return (f"step {step:>4}/{steps} [{'#' * filled}{'.' * (width - filled)}] "
            f"loss {loss:.3e}  {rate:,.0f} steps/s")


def write_png(path: str, gray: np.ndarray) -> None:
    """An 8-bit grayscale PNG (color type 0): signature, IHDR, one zlib IDAT, IEND."""
    img = np.clip(np.round(gray * 255), 0, 255).astype(np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[i].tobytes() for i in range(h))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        fh.write(chunk(b"IEND", b""))


def wiener_restore(blurred: np.ndarray, k: np.ndarray, snr: float = 1e-3) -> np.ndarray:
    """Undo the blur (approximately: periodic boundaries) with the kernel k: X = Y K / (|K|^2
    + snr), K the spectrum of k centred on the origin. Correlation by k is multiplication by
    conj(K), so its regularized inverse multiplies by K."""
    H, W = blurred.shape
    placed = np.zeros((H, W), np.float32)
    placed[:K, :K] = k
    placed = np.roll(placed, (-PAD, -PAD), axis=(0, 1))  # the kernel's centre at (0, 0)
    Kf = fc.fft.rfft2(placed)
    Y = fc.fft.rfft2(blurred)
    X = Y * Kf / (fc.real(Kf * fc.conj(Kf)) + snr)
    return np.asarray(fc.fft.irfft2(X, s=(H, W)))


# --- main --------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="Recover a hidden 21x21 blur kernel by gradient descent.")
    ap.add_argument("--size", type=int, default=256, help="photo side in pixels (downsampled)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-2, help="peak Adam learning rate (cosine decay)")
    ap.add_argument("--noise", type=float, default=0.01, help="noise standard deviation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="learn_filter.png", help="the PNG: original | blurred | restored")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    img = load_photo(args.size)
    k_true = hidden_kernel(rng)
    blurred = np.asarray(blur(fc.asarray(img), fc.asarray(k_true)))
    blurred = (blurred + args.noise * rng.standard_normal(blurred.shape)).astype(np.float32)

    def loss(k, x, y):
        return ((blur(x, k) - y) ** 2).mean()

    opt = fc.optim.adam(fc.optim.cosine_decay(args.lr, args.steps))

    def step(k, state, x, y):
        value, g = fc.value_and_grad(loss)(k, x, y)
        updates, state = opt.update(g, state, k)
        return fc.optim.apply_updates(k, updates), state, value

    step = fc.jit(step)
    k = fc.asarray(np.full((K, K), 1 / K ** 2, np.float32))  # a flat start
    state = opt.init(k)
    x, y = fc.asarray(img), fc.asarray(blurred)
    algos = [p.choice for p in step.lower(k, state, x, y).conv_plans]
    # two convolutions: the forward and the kernel's gradient (the photo is not differentiated)
    print(f"photo {args.size}x{args.size}, hidden kernel {K}x{K}, noise {args.noise}; the compiler "
          f"chose for the step's {len(algos)} convolutions: {', '.join(algos)}")

    tty = sys.stdout.isatty()
    losses, start = [], time.perf_counter()
    for i in range(1, args.steps + 1):
        k, state, value = step(k, state, x, y)
        losses.append(float(value))
        if tty and (i % 10 == 0 or i == args.steps):
            print("\r" + progress(i, args.steps, losses[-1], start), end="", flush=True)
    print(("\r" if tty else "") + progress(args.steps, args.steps, losses[-1], start))

    k_hat = np.asarray(k)
    err = float(np.linalg.norm(k_hat - k_true) / np.linalg.norm(k_true))
    print(f"recovered kernel: relative error {err:.3f} (flat start: "
          f"{np.linalg.norm(1 / K ** 2 - k_true) / np.linalg.norm(k_true):.3f})")
    restored = wiener_restore(blurred, k_hat)
    gap = np.ones((args.size, 4), np.float32)
    write_png(args.out, np.concatenate([img, gap, blurred, gap, restored], axis=1))
    print(f"wrote {args.out}: original | blurred | restored")
    return {"algorithms": algos, "kernel_error": err, "losses": losses}


if __name__ == "__main__":
    main()
