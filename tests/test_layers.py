"""The allowed imports hold: import-linter's contracts (pyproject.toml, [tool.importlinter]) run
over the package tree as it installs, and a contract broken on purpose is reported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.import_tree import ROOT, mirror, run_in, run_in_mirror, to_source_path

LINT_IMPORTS = [
    str(Path(sys.executable).with_name("lint-imports")),
    *(str(ROOT / "pyproject.toml"), "--no-cache"),
]


def test_every_import_contract_is_kept(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    done = run_in_mirror(LINT_IMPORTS, tree)
    report = to_source_path(done.stdout + done.stderr, tree)
    assert done.returncode == 0, report
    assert "0 broken" in report and "Contracts: " in report


@pytest.mark.parametrize(
    ("module", "imports", "contract"),
    [
        (
            "aigc_audit/producers/leak.py",
            "from aigc_audit.consumers.store import base",
            "The client library never imports the platform",
        ),
        (
            "aigc_audit/consumers/store/upward.py",
            "from aigc_audit.consumers.cli import context",
            "The platform reads as the flow",
        ),
        (
            "aigc_audit/consumers/bundle/verify/heavy.py",
            "import chdb",
            "The offline verifier needs nothing but",
        ),
        (
            "aigc_audit/consumers/ingest/loop.py",
            "from aigc_audit.consumers.ingest import materialiser",
            "No import cycles",
        ),
    ],
)
def test_a_broken_contract_is_reported(
    tmp_path: Path, module: str, imports: str, contract: str
) -> None:
    broken = mirror(tmp_path / "tree")
    (broken / module).write_text(imports + "\n", encoding="utf-8")
    if "loop" in module:  # the cycle needs its other half: materialiser importing loop
        path = broken / "aigc_audit/consumers/ingest/materialiser.py"
        os.unlink(path)  # a hard link to the source: never write through it
        path.write_text(
            (ROOT / "consumers/ingest/materialiser.py").read_text(encoding="utf-8")
            + "\nfrom aigc_audit.consumers.ingest import loop as _loop  # noqa\n",
            encoding="utf-8",
        )
    done = run_in(broken, LINT_IMPORTS)
    assert done.returncode != 0
    # The summary lists every contract; only the broken ones are explained after it.
    broken_part = done.stdout.split("Broken contracts", 1)[1]
    assert contract in broken_part
