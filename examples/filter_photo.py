"""Classic image filters with `fc.jit`, the convolution algorithm each one gets, and scipy.

Three filters on scikit-learn's two bundled sample photos (china.jpg and flower.jpg, RGB;
the three colour planes are a batch of three one-channel images, shape (3, 1, H, W)):

- Gaussian blur (sigma 3, a 19x19 kernel): the kernel is a constant the jitted function
  closes over, of rank 1, so the compiler may factor it into a row pass and a column pass
  ("separable", each then lowered by the cost model) or multiply by its spectrum, computed
  once at compile time ("fft"), whichever the cost model prices lower (on the 2-core
  development machine: FFT for the full-size photos, 4.1 ms predicted against 5.3);
- Sobel edges: the gradient magnitude sqrt(gx^2 + gy^2) of the grey image, both 3x3 kernels
  as the two output channels of one convolution;
- unsharp mask: img + 1.5 (img - blur(img, sigma 2)), clipped to [0, 1].

For each filter the script prints the algorithms chosen (read from
`jitted.lower(img).conv_plans`: the convolution node, then any node its rewrite made), the
best-of-5 time of the jitted function next to scipy.ndimage's (gaussian_filter, sobel, the
same zero borders: mode="constant"), and the largest difference between the two; then saves
each result as a PNG (Pillow). Borders are zero-padded in both, so results agree to float32
rounding.

Run: python examples/filter_photo.py [--size 0] [--out filter_photo_out]
(--size N: block-average the photos down to about N pixels wide first; 0: full size)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import funconv as fc


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised (2r+1)^2 Gaussian, r = int(3 sigma + 0.5): scipy.ndimage.gaussian_filter's
    kernel with truncate=3 (float32)."""
    r = int(3 * sigma + 0.5)
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)  # d/dx (columns)


def load_photos(size: int) -> dict[str, np.ndarray]:
    """{name: float32 (3, 1, H, W) in [0, 1]}: the sample photos, RGB planes as a batch,
    block-averaged to about `size` pixels wide (0: as they are)."""
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    photos = {}
    for name, img in zip(data.filenames, data.images):
        rgb = img.astype(np.float32) / 255
        f = max(rgb.shape[1] // size, 1) if size else 1
        h, w = rgb.shape[0] // f, rgb.shape[1] // f
        rgb = rgb[:h * f, :w * f].reshape(h, f, w, f, 3).mean(axis=(1, 3))
        photos[os.path.splitext(os.path.basename(name))[0]] = np.ascontiguousarray(
            rgb.transpose(2, 0, 1)[:, None])
    return photos


# --- the filters, in funconv and in scipy ---------------------------------------------------------


def make_filters():
    """{name: (jitted funconv filter, scipy filter)}, each mapping (3, 1, H, W) -> an image."""
    from scipy import ndimage

    blur_k = gaussian_kernel(3.0)[None, None]
    soft_k = gaussian_kernel(2.0)[None, None]
    sobel_k = np.stack([SOBEL_X, SOBEL_X.T])[:, None]  # (2, 1, 3, 3): gx, gy
    luma = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601

    @fc.jit
    def blur(x):
        return fc.conv(x, blur_k, padding=blur_k.shape[-1] // 2)

    @fc.jit
    def edges(x):
        grey = fc.tensordot(fc.asarray(luma), x, axes=([0], [0]))[None]  # (1, 1, H, W)
        g = fc.conv(grey, sobel_k, padding=1)
        return fc.sqrt(g[:, :1] ** 2 + g[:, 1:] ** 2)

    @fc.jit
    def unsharp(x):
        soft = fc.conv(x, soft_k, padding=soft_k.shape[-1] // 2)
        return fc.clip(x + 1.5 * (x - soft), 0.0, 1.0)

    def sp_blur(x):
        return ndimage.gaussian_filter(x, sigma=(0, 0, 3, 3), mode="constant", truncate=3.0)

    def sp_edges(x):
        grey = np.tensordot(luma, x, axes=([0], [0]))[0]  # (H, W): sobel smooths along
        gx = ndimage.sobel(grey, axis=1, mode="constant")  # every other axis, so 2-d only
        gy = ndimage.sobel(grey, axis=0, mode="constant")
        return np.hypot(gx, gy)[None, None]

    def sp_unsharp(x):
        soft = ndimage.gaussian_filter(x, sigma=(0, 0, 2, 2), mode="constant", truncate=3.0)
        return np.clip(x + 1.5 * (x - soft), 0.0, 1.0)

    return {"blur": (blur, sp_blur), "edges": (edges, sp_edges), "unsharp": (unsharp, sp_unsharp)}


def best_ms(f, *args, repeat: int = 5) -> float:
    f(*args)  # warm-up (compiles a jitted function)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.asarray(f(*args))
        ts.append(time.perf_counter() - t0)
    return min(ts) * 1e3


def algorithms(jitted, x) -> str:
    """The choices of every convolution of `jitted` on x: the node's, then its rewrite's
    (e.g. "separable -> im2col + im2col")."""
    choices = [p.choice for p in jitted.lower(x).conv_plans]
    return choices[0] + (" -> " + " + ".join(choices[1:]) if len(choices) > 1 else "")


def save_png(path: str, img: np.ndarray) -> None:
    """(3 or 1, 1, H, W) in [0, 1] (edges: scaled by their maximum) as an 8-bit PNG."""
    from PIL import Image

    a = np.asarray(img, np.float32)[:, 0]
    if a.shape[0] == 1:
        a = a / max(float(a.max()), 1e-12)
    a = np.clip(a, 0, 1).transpose(1, 2, 0)
    a = (a * 255 + 0.5).astype(np.uint8)
    Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(path)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=0, help="width to downsample to (0: full size)")
    ap.add_argument("--out", default="filter_photo_out", help="directory for the PNGs")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per filter (best taken)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    filters = make_filters()
    results = {}
    print(f"{'photo':<8} {'filter':<8} {'shape':<16} {'algorithm':<34} {'funconv':>10} "
          f"{'scipy':>10} {'max diff':>9}")
    for name, x in load_photos(args.size).items():
        save_png(os.path.join(args.out, f"{name}.png"), x)
        for fname, (ours, theirs) in filters.items():
            y = np.asarray(ours(x))
            diff = float(np.abs(y - theirs(x)).max())
            t_ours, t_theirs = best_ms(ours, x, repeat=args.repeat), best_ms(theirs, x, repeat=args.repeat)
            algo = algorithms(ours, x)
            shape = "x".join(map(str, x.shape))
            print(f"{name:<8} {fname:<8} {shape:<16} {algo:<34} {t_ours:8.2f} ms {t_theirs:7.2f} ms "
                  f"{diff:9.1e}")
            path = os.path.join(args.out, f"{name}_{fname}.png")
            save_png(path, y)
            results[(name, fname)] = {"algorithm": algo, "ms": t_ours, "scipy_ms": t_theirs,
                                      "max_diff": diff, "png": path}
    print(f"wrote {len(results) + 2} PNGs to {args.out}/")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
