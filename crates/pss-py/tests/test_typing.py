"""The package is typed (py.typed, the native module's stubs): mypy --strict accepts it
as installed, and the example program using it."""

import subprocess
import sys

from conftest import REPO


def mypy(*args: str, cwd: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
    )
    assert out.returncode == 0, out.stdout


def test_the_installed_package_type_checks(tmp_path):
    mypy("-p", "pss", cwd=str(tmp_path))


def test_the_example_type_checks(tmp_path):
    mypy(str(REPO / "examples" / "pss_threads.py"), cwd=str(tmp_path))
