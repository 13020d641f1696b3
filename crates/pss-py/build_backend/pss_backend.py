"""The package's PEP 517 build backend: maturin's, after the capture engine is built.

The wheel carries ``pss/pss-engine`` beside the native module, where the library looks
for it first (``docs/engine.md``, "Finding the engine's code"): an executable of the
workspace's ``pss-engine`` crate, which maturin does not build (it builds only the module). So
before maturin builds a wheel, this runs ``cargo build --release -p pss-engine --bin pss-engine``
in the workspace and copies the executable, its debug info stripped, into
``python/pss/``. Everything else is maturin's.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import maturin
from maturin import (  # noqa: F401 (the hooks this backend passes through)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

_CRATE = Path(__file__).resolve().parent.parent
_ENGINE = _CRATE / "python" / "pss" / "pss-engine"


def _build_engine() -> None:
    cargo = os.environ.get("CARGO", "cargo")
    subprocess.run(
        [cargo, "build", "--release", "-p", "pss-engine", "--bin", "pss-engine"],
        cwd=_CRATE,
        check=True,
    )
    meta = subprocess.run(
        [cargo, "metadata", "--format-version", "1", "--no-deps"],
        cwd=_CRATE,
        check=True,
        stdout=subprocess.PIPE,
    )
    target = Path(json.loads(meta.stdout)["target_directory"])
    staged = _ENGINE.with_name(".pss-engine.tmp")
    shutil.copyfile(target / "release" / "pss-engine", staged)
    if shutil.which("objcopy"):
        subprocess.run(["objcopy", "--strip-debug", str(staged)], check=True)
    os.chmod(staged, 0o755)
    os.replace(staged, _ENGINE)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _build_engine()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _build_engine()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
