"""The package tree as it installs (``aigc_audit/producers/...``), mirrored from this checkout for
the tools that read source files rather than import them: import-linter (grimp) and mypy.

The repository keeps the design card's top-level folders and setuptools maps them under
``aigc_audit`` (pyproject's ``package-dir``); both tools look for ``aigc_audit/producers`` on
disk and find nothing there. The mirror is a directory of hard links (copies where a link
cannot be made), rebuilt from the files git knows, so a module since moved or deleted is not
checked, and mtimes stay those of the sources, which keeps mypy's cache valid between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT / "build" / "import-tree"


def package_dirs() -> dict[str, str]:
    """pyproject's mapping of import names to folders: ``{"aigc_audit.producers": "producers"}``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return mapping


def _git_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def mirror(target: Path = MIRROR) -> Path:
    """Rebuild ``target`` as the installed tree of the Python files; returns ``target``."""
    if target.exists():
        shutil.rmtree(target)
    folders = sorted(package_dirs().items(), key=lambda item: len(item[1]), reverse=True)
    for name in _git_files():
        source = ROOT / name
        if source.suffix not in {".py", ".pyi"} and source.name != "py.typed":
            continue
        if not source.is_file():  # a file deleted but not yet staged is still listed
            continue
        for package, folder in folders:
            prefix = folder.rstrip("/") + "/"
            if name.startswith(prefix):
                dest = target / package.replace(".", "/") / name[len(prefix) :]
                break
        else:
            continue  # tests/ and other files outside the packages
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, dest)
        except OSError:
            shutil.copy2(source, dest)
    return target


def to_source_path(text: str, target: Path = MIRROR) -> str:
    """``text`` (a tool's report) with mirror paths turned back into the repository's."""
    for package, folder in sorted(package_dirs().items(), key=lambda i: len(i[0]), reverse=True):
        text = text.replace(f"{target}/{package.replace('.', '/')}/", f"{folder}/")
        text = text.replace(f"{package.replace('.', '/')}/", f"{folder}/")
    return text


def run_in_mirror(command: list[str], target: Path = MIRROR) -> subprocess.CompletedProcess[str]:
    """``command`` run inside a fresh mirror at ``target``; see :func:`run_in`."""
    return run_in(mirror(target), command)


def run_in(tree: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """``command`` run inside the mirror ``tree``, which both tools find as the package tree
    (``PYTHONPATH`` for grimp, ``MYPYPATH`` for mypy); its report carries mirror paths."""
    return subprocess.run(
        command,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), "MYPYPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
    )


if __name__ == "__main__":
    # `python -m tests.import_tree lint-imports` (or mypy ...): what `make lint` runs; plain
    # `lint-imports` in the checkout finds only aigc_audit/__init__.py and says the rest is
    # missing.
    done = run_in_mirror(sys.argv[1:])
    sys.stdout.write(to_source_path(done.stdout + done.stderr))
    sys.exit(done.returncode)
