"""The import layering holds: `lint-imports` keeps the contracts in pyproject.toml.

It runs on a copy of the package laid out as installed, with backends/ as
funconv/backends/: in the editable install the tests run from, grimp (which
finds modules by walking the package's folder) cannot see funconv.backends,
which setuptools maps from the top-level backends/ folder.
"""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_import_contracts_hold(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "funconv", tmp_path / "funconv", ignore=ignore)
    shutil.copytree(ROOT / "backends", tmp_path / "funconv" / "backends", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # lint-imports reads its contracts there
    lint_imports = pathlib.Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([str(lint_imports), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
