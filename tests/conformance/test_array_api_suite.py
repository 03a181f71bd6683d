"""The Array API conformance suite (data-apis/array-api-tests) run on funconv itself.

Skipped unless ARRAY_API_TESTS_DIR points at a checkout of the suite at SUITE_COMMIT (with
its `array-api` spec submodule at SPEC_COMMIT); see docs/array_api.md for the setup. The
suite runs in a subprocess (it imports funconv as `xp` and has its own conftest), with a
bounded, derandomized number of hypothesis examples, so a run is deterministic, and with
array_api_xfails.txt as its expected failures under xfail_strict: a test that starts to
pass fails the run until its line is deleted, so the list only shrinks.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

SUITE_COMMIT = "55fcc60179efa2680ddd6cd926ddf17b83530e2b"  # data-apis/array-api-tests
SPEC_COMMIT = "5f847a3858875c682ae901aa22b0413bf24be9da"   # data-apis/array-api (submodule)
MAX_EXAMPLES = 20
XFAILS = pathlib.Path(__file__).with_name("array_api_xfails.txt")

SUITE_DIR = os.environ.get("ARRAY_API_TESTS_DIR")

pytestmark = [
    pytest.mark.array_api,
    pytest.mark.skipif(
        not SUITE_DIR,
        reason="the Array API conformance suite runs only when ARRAY_API_TESTS_DIR points at a "
               f"checkout of data-apis/array-api-tests at {SUITE_COMMIT[:12]} (with its array-api "
               "submodule): see docs/array_api.md",
    ),
]


def _head(path: pathlib.Path) -> str:
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_array_api_conformance_suite():
    suite = pathlib.Path(SUITE_DIR)
    assert (suite / "array_api_tests").is_dir(), f"{suite} is not an array-api-tests checkout"
    assert _head(suite) == SUITE_COMMIT, (
        f"{suite} is at {_head(suite)}, the pinned suite is {SUITE_COMMIT}: "
        f"git -C {suite} checkout {SUITE_COMMIT} (a new pin needs a new xfails file)")
    assert _head(suite / "array-api") == SPEC_COMMIT, (
        f"the spec submodule is not at {SPEC_COMMIT}: git -C {suite / 'array-api'} checkout {SPEC_COMMIT}")
    env = dict(os.environ, ARRAY_API_TESTS_MODULE="funconv")
    env.pop("ARRAY_API_TESTS_VERSION", None)  # the version funconv declares
    cmd = [sys.executable, "-m", "pytest", "array_api_tests", "-p", "no:cacheprovider", "-q",
           "--max-examples", str(MAX_EXAMPLES), "--derandomize", "--disable-deadline",
           "--xfails-file", str(XFAILS), "-o", "xfail_strict=True", "-rfEX", "-p", "no:warnings"]
    proc = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True)
    # the summary: failed, errored and strictly-xpassed tests, and the counts line
    tail = "\n".join(line for line in proc.stdout.splitlines()
                     if line.startswith(("FAILED", "ERROR", "XPASS")) or " passed" in line)
    assert proc.returncode == 0, (
        f"the conformance suite failed (exit {proc.returncode}). A FAILED test is a regression "
        f"(or new breakage to fix); an XPASS(strict) one now passes: delete its line from "
        f"{XFAILS.name}.\n{' '.join(cmd)}\n{tail}\n{proc.stderr[-2000:]}")
