"""The base install (``pip install aigc-audit``, no extras) is the client library plus the offline
verifier: built as a wheel and installed into a fresh venv with its own dependencies only, it has
none of the platform's libraries, ``aigc-audit --help`` and ``aigc-audit verify BUNDLE --trust``
work, and a platform command says in one line which extra to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aigc_audit.consumers.errors import PLATFORM_MODULES

ROOT = Path(__file__).resolve().parents[1]

# The platform commands a base-install user is most likely to try, each run as far as the first
# thing it needs from the platform (none of them gets further on a base install).
PLATFORM_COMMANDS = (
    ("consume",),
    ("demo", "--generations", "100", "--users", "10"),
    ("demo", "--json", "--generations", "100", "--users", "10"),
    ("serve",),
    ("query", "run", "trail_integrity"),
    ("export", "out"),
    ("report",),
    ("migrate",),
)


def _run(args: list[str], *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # Nothing of this environment leaks in: no PYTHONPATH onto the source tree, no config.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIGC_AUDIT_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))
    }
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False
    )


def _must(result: subprocess.CompletedProcess[str], what: str) -> None:
    # Failing, never skipping: a base install that cannot be made is the thing under test.
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}): {result.stderr[-2000:]}")


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Path:
    """The bin directory of a fresh venv holding the wheel and its base dependencies."""
    work = tmp_path_factory.mktemp("base-install")
    venv = work / "venv"
    _must(_run([sys.executable, "-m", "venv", str(venv)], cwd=work), "python -m venv")
    bin_dir = venv / "bin"
    _must(
        _run(
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                str(built_wheel),
            ],
            cwd=work,
        ),
        "pip install <wheel> (base dependencies only)",
    )
    return bin_dir


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small real export bundle and its root public key, made by this (platform) install."""
    from aigc_audit.consumers.bundle.export import export_bundle
    from aigc_audit.consumers.query.selection import Selection
    from tests.harness import Harness, generation

    base = tmp_path_factory.mktemp("bundle")
    h = Harness(base / "data", batch_size=10)
    try:
        h.emit("chat-1", [generation(n) for n in range(30)], batch_size=10)
        h.materialise()
        export_bundle(
            h.deployment.store(),
            Selection(),
            base / "bundle",
            export_key=h.deployment.export_key(),
            exported_by="inspector@example",
        )
        root = Path(shutil.copy(h.settings.root_public_key_path, base / "root.pub"))
    finally:
        h.close()
    return base / "bundle", root


def test_the_platform_modules_are_the_platform_extra() -> None:
    # The CLI tells "install [platform]" from a bug by these names: they must be the extra's.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def import_name(requirement: str) -> str:
        return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("-", "_")

    assert {import_name(r) for r in project["optional-dependencies"]["platform"]} == set(
        PLATFORM_MODULES
    )
    assert not {import_name(r) for r in project["dependencies"]} & PLATFORM_MODULES


@pytest.mark.install
def test_the_base_install_has_no_platform_library(base_venv: Path, tmp_path: Path) -> None:
    for module in sorted(PLATFORM_MODULES):
        result = _run([str(base_venv / "python"), "-c", f"import {module}"], cwd=tmp_path)
        assert result.returncode != 0, f"{module} is in the base install"
        assert "ModuleNotFoundError" in result.stderr, result.stderr


@pytest.mark.install
def test_help_works_on_the_base_install(base_venv: Path, tmp_path: Path) -> None:
    result = _run([str(base_venv / "aigc-audit"), "--help"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "verify" in result.stdout and "consume" in result.stdout


@pytest.mark.install
@pytest.mark.chdb
def test_verify_of_a_bundle_passes_on_the_base_install(
    base_venv: Path, bundle: tuple[Path, Path], tmp_path: Path
) -> None:
    path, root = bundle
    result = _run(
        [str(base_venv / "aigc-audit"), "verify", str(path), "--trust", str(root)],
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bundle verified" in result.stdout
    assert "✗" not in result.stdout


@pytest.mark.install
@pytest.mark.parametrize("command", PLATFORM_COMMANDS, ids=" ".join)
def test_a_platform_command_names_the_extra_in_one_line(
    base_venv: Path, command: tuple[str, ...], tmp_path: Path
) -> None:
    result = _run([str(base_venv / "aigc-audit"), *command], cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    name = " ".join(command[:2]) if command[0] == "query" else command[0]
    assert lines[0] == (
        f"aigc-audit: error: aigc-audit {name} needs the platform: "
        "pip install 'aigc-audit[platform]' (missing: chdb)"
    )
