"""A non-editable install works: the wheel carries the schemas and the query pack, and the client
library and the CLI find them from site-packages, away from the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("aigc_audit-*.whl")
    return found


def test_wheel_carries_data_and_code(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {Path(n).name for n in names if n.startswith("schemas/") and n.endswith(".avsc")}
    assert {"aigc.audit.Generation.avsc", "aigc.audit.SignedBatch.avsc"} <= schemas
    assert any(n.startswith("schemas/released/v1/") for n in names)
    sql = {n for n in names if n.startswith("queries/") and n.endswith(".sql")}
    assert len(sql) >= 8
    assert "producers/client.py" in names and "consumers/cli.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_copy_works_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import producers, consumers, schemas, queries\n"
        "from producers.codec import default_catalogue\n"
        "from consumers.query_pack import load_query_pack\n"
        f"assert producers.__file__.startswith({str(target)!r}), producers.__file__\n"
        "assert 'aigc.audit.Generation' in default_catalogue().names\n"
        "print(len(load_query_pack()))\n"
    )
    # -I ignores the source tree and PYTHONPATH; the installed copy comes first on sys.path and
    # the third-party libraries still come from this environment's site-packages.
    site = [p for p in sys.path if p.endswith("site-packages")]
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(target), *site]!r}\n" + probe,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 8


def test_client_library_never_imports_the_platform() -> None:
    for path in (ROOT / "producers").rglob("*.py"):
        text = path.read_text()
        assert "import consumers" not in text and "from consumers" not in text, path
    probe = "import sys, producers, producers.client; print('consumers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
