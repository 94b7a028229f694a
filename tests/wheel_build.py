"""The wheel of this checkout, built once per test session (a pytest plugin, loaded by
tests/conftest.py) for the tests that install it.

It is built from a copy of the files git knows (tracked, or new and not ignored), never from the
checkout itself: setuptools reuses a ``build/`` directory it finds there, and a module since
moved or deleted would then ride along in the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def source_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet staged is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The path of ``aigc_audit-*.whl`` built from this checkout's sources."""
    source = source_copy(tmp_path_factory.mktemp("wheel-source"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("-w", str(out), str(source)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:  # failing, never skipping: the wheel is what is under test
        pytest.fail(f"building the wheel failed: {result.stderr[-2000:]}", pytrace=False)
    (found,) = out.glob("aigc_audit-*.whl")
    return found
