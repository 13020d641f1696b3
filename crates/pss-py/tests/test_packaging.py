"""The source distribution builds a wheel as complete as one built from the checkout: the
build backend travels with it, and the wheel carries the capture engine, which works from
a new virtual environment with nothing else of pss around (no $PSS_ENGINE, no pss in
$PATH)."""

import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from conftest import REPO


def run(*argv: object, **kw: object) -> str:
    out = subprocess.run(
        [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )
    assert out.returncode == 0, f"{argv} failed:\n{out.stdout}"
    return out.stdout


def test_a_wheel_built_from_the_sdist_carries_a_working_engine(tmp_path: Path) -> None:
    maturin = Path(sys.executable).parent / "maturin"
    run(maturin, "sdist", "-o", tmp_path / "sdist", cwd=REPO / "crates" / "pss-py")
    (sdist,) = (tmp_path / "sdist").iterdir()
    with tarfile.open(sdist) as tar:
        root = tar.getnames()[0].split("/")[0]
        assert f"{root}/build_backend/pss_backend.py" in tar.getnames()

    # A target directory of its own, kept between runs: the sdist's crates are other paths.
    env = dict(os.environ, CARGO_TARGET_DIR=str(REPO / "target" / "sdist-test"))
    env.pop("PSS_ENGINE", None)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "wheel", sdist, env=env)
    (wheel,) = (tmp_path / "wheel").iterdir()
    with zipfile.ZipFile(wheel) as z:
        info = z.getinfo("pss/pss-engine")
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "-q", "--no-deps", wheel)
    target = subprocess.Popen(["sleep", "60"])
    try:
        clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        out = run(venv / "bin" / "python", REPO / "examples" / "pss_threads.py", target.pid, env=clean, cwd=tmp_path)
    finally:
        target.kill()
        target.wait()
    assert out.startswith("1 thread(s), paused "), out
    assert f"thread {target.pid} sleep: pc 0x" in out, out
