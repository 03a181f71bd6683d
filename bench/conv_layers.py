"""Benchmark the training-step convolutions of common CNN layer shapes against PyTorch.

Each workload is the value and gradients of sum(conv(x, w)**2), jitted in
funconv (NumPy backend) and eager in PyTorch (default threads), float32:
gradients with respect to x and w, except for the stem (a first layer needs
no input gradient). The layers: a ResNet stem (7x7 stride 2 on 3 channels),
3x3 layers at 56 and 14 pixels, a strided 3x3, a 1x1 bottleneck, a
MobileNet depthwise 3x3, a 5x5 "valid" layer and a 1-d kernel of 9.

Each library runs in a child process of its own (a thread pool left spinning
by one library slows the next on a small machine). Prints median
milliseconds and the ratio funconv / PyTorch (below 1: funconv is faster).
Nothing is asserted.

Run: python bench/conv_layers.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmarks

from conv import median_ms, settled  # noqa: E402

# name: (x shape, w shape, conv keywords, differentiate x too)
LAYERS = {
    "stem 7x7/2": ((8, 3, 112, 112), (64, 3, 7, 7), {"stride": 2, "padding": 3}, False),
    "3x3 @56": ((8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}, True),
    "3x3 @14 c256": ((8, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}, True),
    "3x3/2 @56": ((8, 64, 56, 56), (128, 64, 3, 3), {"stride": 2, "padding": 1}, True),
    "1x1 256->64": ((8, 256, 28, 28), (64, 256, 1, 1), {}, True),
    "depthwise 3x3": ((8, 128, 28, 28), (128, 1, 3, 3), {"padding": 1, "groups": 128}, True),
    "5x5 valid": ((32, 32, 28, 28), (64, 32, 5, 5), {}, True),
    "1-d k9": ((16, 64, 1024), (64, 64, 9), {"padding": 4}, True),
}


def _data(xs, ws):
    rng = np.random.default_rng(0)
    return (rng.standard_normal(xs).astype(np.float32),
            (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32))


def funconv_step(xs, ws, kw, with_x):
    import funconv as fc

    x, w = (fc.asarray(a) for a in _data(xs, ws))
    f = fc.jit(fc.value_and_grad(lambda x, w: (fc.conv(x, w, **kw) ** 2).sum(),
                                 argnums=(0, 1) if with_x else 1))
    return settled(lambda: f(x, w))


def torch_step(xs, ws, kw, with_x):
    import torch

    F = torch.nn.functional
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[len(ws)]
    x, w = (torch.tensor(a) for a in _data(xs, ws))
    x.requires_grad_(with_x)
    w.requires_grad_(True)

    def step():
        x.grad = w.grad = None
        v = (conv(x, w, **kw) ** 2).sum()
        v.backward()
        return v.item()

    return step


def child(lib: str, repeat: int) -> None:
    make = {"funconv": funconv_step, "torch": torch_step}[lib]
    times = {name: median_ms(make(*spec), repeat) for name, spec in LAYERS.items()}
    print(json.dumps(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--child", choices=["funconv", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    results = {}
    for lib in ("funconv", "torch"):
        run = subprocess.run([sys.executable, __file__, "--child", lib, "--repeat", str(args.repeat)],
                             capture_output=True, text=True)
        if run.returncode:
            if lib == "funconv":
                sys.exit(run.stderr)
            print(f"({lib} not available: {run.stderr.strip().splitlines()[-1]})")
            continue
        results[lib] = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"{'layer':15s} {'shapes':38s} {'funconv':>9s} {'pytorch':>9s}  ratio")
    for name, (xs, ws, _, _) in LAYERS.items():
        shapes = f"{xs} * {ws}".replace(" ", "")
        ours = results["funconv"][name]
        theirs = results.get("torch", {}).get(name)
        peer = f"{theirs:9.2f}  {ours / theirs:5.2f}" if theirs else f"{'-':>9s}"
        print(f"{name:15s} {shapes:38s} {ours:9.2f} {peer}")


if __name__ == "__main__":
    main()
