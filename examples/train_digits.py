"""Train a small CNN on the handwritten digits bundled with scikit-learn.

The model is a pure function of its parameters; one training step (forward,
gradient, Adam update) is a single jitted function of (params, opt_state,
images, labels). 1797 grey 8x8 digits, split 80/20 into train and test;
conv(1->16, 3x3)-relu-maxpool2, conv(16->32, 3x3)-relu-maxpool2, dense 128->10.

Run:   python examples/train_digits.py [--epochs 15] [--batch-size 32] [--lr 1e-2]
                                       [--seed 0] [--backend numpy|opencl]
Needs: pip install -e ".[examples]"   (scikit-learn; nothing is downloaded)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import funconv as fc


# --- data ----------------------------------------------------------------------------


def load_data(test_fraction: float = 0.2, split_seed: int = 0):
    """Digits as f32[N, 1, 8, 8] in [0, 1] and int32 labels, split into train and test.

    The split is fixed (it does not follow --seed), so accuracies of runs compare.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install -e \".[examples]\"")
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # pixel values are 0..16
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(split_seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


# --- model -------------------------------------------------------------------------------


def init_params(key):
    k1, k2, k3 = fc.random.split(key, 3)
    return {
        "conv1": {"w": fc.nn.he_normal(k1, (16, 1, 3, 3)), "b": fc.zeros(16)},
        "conv2": {"w": fc.nn.he_normal(k2, (32, 16, 3, 3)), "b": fc.zeros(32)},
        "dense": {"w": fc.nn.glorot_uniform(k3, (32 * 2 * 2, 10)), "b": fc.zeros(10)},
    }


def conv_block(p, x):
    y = fc.conv(x, p["w"], padding="SAME") + p["b"].reshape(-1, 1, 1)
    return fc.max_pool(fc.nn.relu(y), 2)


def predict(params, x):
    h = conv_block(params["conv1"], x)  # (N, 16, 4, 4)
    h = conv_block(params["conv2"], h)  # (N, 32, 2, 2)
    return h.reshape(x.shape[0], -1) @ params["dense"]["w"] + params["dense"]["b"]


def loss_fn(params, x, y):
    return fc.nn.cross_entropy(predict(params, x), y)


def make_step(opt, backend: str):
    def step(params, opt_state, x, y):
        loss, grads = fc.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fc.optim.apply_updates(params, updates), opt_state, loss

    return fc.jit(step, backend=backend)


def evaluate(predict_jit, params, x, y, batch: int = 512) -> float:
    correct = 0
    for i in range(0, len(y), batch):
        logits = np.asarray(predict_jit(params, fc.asarray(x[i:i + batch])))
        correct += int((logits.argmax(-1) == y[i:i + batch]).sum())
    return correct / len(y)


# --- progress bar ----------------------------------------------------------------------------


class Progress:
    """A plain-text progress bar: redrawn in place on a terminal, one line per epoch otherwise."""

    def __init__(self, total: int, epoch: int, epochs: int, width: int = 24, stream=None):
        self.total, self.epoch, self.epochs, self.width = total, epoch, epochs, width
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.shown = 0  # length of the line on screen: a shorter redraw pads over its tail

    def line(self, done: int, loss: float, images: int) -> str:
        filled = self.width * done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        rate = images / max(time.perf_counter() - self.start, 1e-9)
        return (f"epoch {self.epoch:>2}/{self.epochs} [{bar}] {done:>3}/{self.total} "
                f"loss {loss:.4f}  {rate:,.0f} img/s")

    def _draw(self, text: str, end: str = "") -> None:
        if self.tty:
            self.stream.write("\r" + text.ljust(self.shown))
            self.shown = len(text)
        else:
            self.stream.write(text)
        self.stream.write(end)
        self.stream.flush()
        if end == "\n":
            self.shown = 0

    def update(self, done: int, loss: float, images: int) -> None:
        if self.tty:
            self._draw(self.line(done, loss, images))

    def close(self, loss: float, images: int, extra: str = "") -> None:
        self._draw(self.line(self.total, loss, images) + extra, "\n")


# --- main ------------------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Train a small CNN on scikit-learn's 8x8 digits.")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2, help="peak Adam learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="numpy", choices=["numpy", "opencl"])
    ap.add_argument("--checkpoint", default="digits_cnn.npz",
                    help="where to save the parameters ('' to skip)")
    ap.add_argument("--train-size", type=int, default=None,
                    help="use only this many training images (for quick smoke runs)")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_data()
    if args.train_size is not None:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    steps_per_epoch = len(y_train) // args.batch_size  # drop the last partial batch: one shape, one compile
    if steps_per_epoch == 0:
        sys.exit(f"--batch-size {args.batch_size} is larger than the {len(y_train)} training images")
    print(f"digits: {len(y_train)} train / {len(y_test)} test images of 8x8; "
          f"{args.epochs} epochs of {steps_per_epoch} steps, batch {args.batch_size}, "
          f"backend {args.backend}")

    key = fc.random.key(args.seed)
    k_init, k_shuffle = fc.random.split(key)
    params = init_params(k_init)
    total_steps = args.epochs * steps_per_epoch
    schedule = fc.optim.warmup_cosine_decay_schedule(
        0.0, args.lr, warmup_steps=min(50, total_steps // 10), decay_steps=total_steps,
        end_value=args.lr / 20)
    opt = fc.optim.adam(schedule)
    opt_state = opt.init(params)
    step = make_step(opt, args.backend)
    predict_jit = fc.jit(predict, backend=args.backend)

    history, acc = [], 0.0
    for epoch in range(1, args.epochs + 1):
        order = np.asarray(fc.random.permutation(fc.random.fold_in(k_shuffle, epoch), len(y_train)))
        bar = Progress(steps_per_epoch, epoch, args.epochs)
        running = None
        for i in range(steps_per_epoch):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            xb, yb = fc.asarray(x_train[idx]), fc.asarray(y_train[idx])
            params, opt_state, loss = step(params, opt_state, xb, yb)
            loss = float(loss)
            history.append(loss)
            running = loss if running is None else 0.9 * running + 0.1 * loss  # smoothed for display
            if i % 5 == 0:
                bar.update(i + 1, running, (i + 1) * args.batch_size)
        acc = evaluate(predict_jit, params, x_test, y_test)
        bar.close(running, steps_per_epoch * args.batch_size, f"  test acc {100 * acc:.2f}%")

    wall = time.perf_counter() - t_start  # everything: data loading, compiling, training, testing
    print(f"test accuracy {100 * acc:.2f}% ({round(acc * len(y_test))}/{len(y_test)}); "
          f"wall time {wall:.1f} s")
    if args.checkpoint:
        fc.save(args.checkpoint, {"params": params, "epochs": args.epochs, "seed": args.seed,
                                  "test_accuracy": acc})
        print(f"saved parameters to {os.path.abspath(args.checkpoint)}")
    return {"losses": history, "test_accuracy": acc, "wall_time": wall, "params": params}


if __name__ == "__main__":
    try:
        main()
    except fc.errors.FuncConvError as e:  # a usage problem (say, --backend opencl without OpenCL)
        sys.exit(f"error: {e}")
