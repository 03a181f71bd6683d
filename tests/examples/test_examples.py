"""Smoke tests of every script in examples/, on small sizes.

Each example runs end to end: in-process through its `main(argv)` where it
has one (cheap, and its results can be checked), and once as a user runs it,
`python examples/<name>.py`, in a subprocess. A new example without a test
here fails `test_every_example_has_a_smoke_test`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import funconv as fc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TESTED = {"train_digits.py", "grad_basics.py", "check_my_vjp.py", "learn_filter.py", "filter_photo.py"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(name: str, *args: str, cwd=None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


def test_every_example_has_a_smoke_test():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts <= TESTED, f"examples without a smoke test here: {sorted(scripts - TESTED)}"


# --- train_digits -------------------------------------------------------------------------


def test_train_digits_short_run_learns(tmp_path, capsys):
    td = _load("train_digits")
    ckpt = tmp_path / "digits.npz"
    res = td.main(["--epochs", "2", "--train-size", "320", "--batch-size", "32", "--lr", "1e-2",
                   "--checkpoint", str(ckpt)])
    out = capsys.readouterr().out
    losses = res["losses"]
    assert len(losses) == 2 * 10 and all(np.isfinite(losses))
    # the loss went down: the last steps average well below the first ones (ln 10 = 2.30 at chance)
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    assert res["test_accuracy"] > 0.3  # chance is 0.1; 20 steps get far above it
    # progress lines (one per epoch when not a terminal), the accuracy and the wall time
    assert out.count("img/s") == 2 and "epoch  2/2" in out
    assert "test accuracy" in out and "wall time" in out
    saved = fc.load(ckpt)
    assert saved["epochs"] == 2
    np.testing.assert_array_equal(np.asarray(saved["params"]["conv1"]["w"]),
                                  np.asarray(res["params"]["conv1"]["w"]))


def test_train_digits_progress_bar_on_a_terminal():
    td = _load("train_digits")

    class FakeTTY:
        def __init__(self):
            self.parts = []

        def isatty(self):
            return True

        def write(self, s):
            self.parts.append(s)

        def flush(self):
            pass

    tty = FakeTTY()
    bar = td.Progress(total=10, epoch=1, epochs=3, stream=tty)
    bar.update(5, 0.5, 160)
    bar.close(0.25, 320, "  test acc 90.00%")
    text = "".join(tty.parts)
    assert text.startswith("\repoch  1/3 [############............]   5/10 loss 0.5000")
    assert "loss 0.2500  " in text and text.endswith("90.00%\n")
    # a shorter redraw pads over the tail of the longer line before it
    tty.parts.clear()
    bar._draw("abcdef")
    bar._draw("abc")
    assert "".join(tty.parts) == "\rabcdef\rabc   "


def test_train_digits_as_a_script(tmp_path):
    r = _run_script("train_digits.py", "--epochs", "1", "--train-size", "64", "--batch-size", "32",
                    "--checkpoint", "c.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and (tmp_path / "c.npz").exists()


# --- grad_basics --------------------------------------------------------------------------


def test_grad_basics(tmp_path, capsys):
    gb = _load("grad_basics")
    res = gb.main(["--dot", str(tmp_path / "g.dot")])
    out = capsys.readouterr().out
    assert "matches x^T (1 - tanh(xw)^2): True" in out
    assert res["d2"] == pytest.approx(2 * np.cos(1) - np.sin(1), rel=1e-5)
    assert res["d3"] == pytest.approx(-3 * np.sin(1) - np.cos(1), rel=1e-5)
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph") and "tanh" in dot and "dot_general" in dot


def test_grad_basics_as_a_script():
    r = _run_script("grad_basics.py")
    assert r.returncode == 0, r.stderr
    assert "graph(" in r.stdout and "digraph" in r.stdout


# --- check_my_vjp --------------------------------------------------------------------------


def test_check_my_vjp_as_a_script():
    r = _run_script("check_my_vjp.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout


# --- learn_filter ---------------------------------------------------------------------------


def test_learn_filter_small_run(tmp_path, capsys):
    lf = _load("learn_filter")
    out_png = tmp_path / "lf.png"
    res = lf.main(["--size", "48", "--steps", "40", "--out", str(out_png)])
    out = capsys.readouterr().out
    # the 21x21 kernel's convolutions (forward and kernel gradient) go through FFT
    assert res["algorithms"] == ["fft", "fft"] and "chose" in out and "fft" in out
    assert res["losses"][-1] < 0.9 * res["losses"][0]  # learning (40 steps: not converged)
    assert "relative error" in out and "step   40/40" in out
    data = out_png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


def test_learn_filter_runs_as_a_script(tmp_path):
    r = _run_script("learn_filter.py", "--size", "32", "--steps", "5", "--out", "x.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.png").exists() and "wrote x.png" in r.stdout


# --- filter_photo ---------------------------------------------------------------------------


def test_filter_photo_small_run(tmp_path, capsys):
    fp = _load("filter_photo")
    res = fp.main(["--size", "96", "--repeat", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert len(res) == 6  # 2 photos x 3 filters
    for (photo, name), r in res.items():
        assert r["max_diff"] < 1e-5, (photo, name, r)  # agrees with scipy.ndimage
        assert (tmp_path / f"{photo}_{name}.png").read_bytes().startswith(b"\x89PNG")
    # the cost model's choice for the 19x19 blur (at this small size FFT or two passes)
    assert res[("china", "blur")]["algorithm"].split()[0] in ("separable", "fft")
    assert "scipy" in out and "wrote 8 PNGs" in out


def test_filter_photo_runs_as_a_script(tmp_path):
    r = _run_script("filter_photo.py", "--size", "48", "--repeat", "1", "--out", "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "flower_edges.png").exists() and "wrote 8 PNGs" in r.stdout
