"""Every package type-checks under ``mypy --strict`` ([tool.mypy] in pyproject.toml), run over
the package tree as it installs (tests/import_tree.py): mypy cannot follow the package-dir
mapping, so it reads a mirror of hard links instead of the checkout."""

from __future__ import annotations

import fcntl
import sys

from tests.import_tree import ROOT, run_in_mirror, to_source_path

# A mirror of its own (tests/test_layers.py builds others), at a fixed place: the mirror's
# paths and the sources' mtimes stay the same between runs, so mypy's cache stays warm.
TREE = ROOT / "build" / "import-tree-mypy"
CACHE = ROOT / "build" / "mypy-cache"


def test_every_package_passes_mypy_strict() -> None:
    TREE.parent.mkdir(parents=True, exist_ok=True)
    # Two sessions at once would rebuild the mirror under each other's mypy.
    with open(TREE.parent / "import-tree-mypy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = run_in_mirror(
            [
                *(sys.executable, "-m", "mypy", "--strict"),
                *("--config-file", str(ROOT / "pyproject.toml")),
                *("--cache-dir", str(CACHE)),
                *("-p", "aigc_audit"),
            ],
            TREE,
        )
    report, code = to_source_path(done.stdout + done.stderr, TREE), done.returncode
    assert code == 0, report
    assert "Success: no issues found" in report, report
