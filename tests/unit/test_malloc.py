import platform
import subprocess
import sys

import pytest

CODE = """
import funconv as fc
{setup}
from funconv.backends.numpy import malloc
print(malloc.tune(), malloc.tune())
"""


def _run(setup: str) -> str:
    r = subprocess.run([sys.executable, "-c", CODE.format(setup=setup)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt thresholds are a glibc feature")
def test_tune_malloc_applies_once_on_glibc():
    assert _run("") == "True False"


def test_tune_malloc_can_be_switched_off():
    assert _run('fc.config.update("tune_malloc", False)') == "False False"
