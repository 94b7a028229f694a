"""The CLI as a user meets it: every mistake a user can make is one line on stderr and exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.chdb


def cli(
    *args: str, data_dir: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    full_env = {**inherited, "AIGC_AUDIT_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aigc_audit.consumers.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or data_dir.parent,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aigc-audit: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a little synthetic traffic emitted and materialised via the CLI."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    emitted = cli(
        "emit", "--generations", "300", "--users", "40", "--seed", "7", "--json", data_dir=data_dir
    )
    assert emitted.returncode == 0, emitted.stderr
    total = json.loads(emitted.stdout.strip().splitlines()[-1])["emitted"]
    consumed = cli("consume", "--json", data_dir=data_dir)
    assert consumed.returncode == 0, consumed.stderr
    stats = json.loads(consumed.stdout.strip().splitlines()[-1])
    assert stats["events_materialised"] == total
    assert stats["messages_quarantined"] == 0
    return data_dir


def test_query_list_names_every_query(populated: Path) -> None:
    result = cli("query", "list", data_dir=populated)
    assert result.returncode == 0, result.stderr
    for name in ("subject_history", "complaints_overdue", "trail_integrity"):
        assert name in result.stdout


def test_query_run_formats(populated: Path) -> None:
    as_json = cli("query", "run", "trail_integrity", "--format", "json", data_dir=populated)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert sum(r["events"] for r in rows) > 300
    as_csv = cli("query", "run", "trail_integrity", "-f", "csv", data_dir=populated)
    assert as_csv.returncode == 0, as_csv.stderr
    lines = as_csv.stdout.strip().splitlines()
    assert lines[0].startswith("producer_id,batches,events")
    assert len(lines) == len(rows) + 1
    table = cli("query", "run", "trail_integrity", data_dir=populated)
    assert table.returncode == 0 and "Integrity of the audit trail" in table.stdout


def test_unknown_query_name(populated: Path) -> None:
    result = cli("query", "run", "complaints_overdeu", data_dir=populated)
    assert_one_line_error(result, "complaints_overdeu", "complaints_overdue")


def test_missing_query_parameter(populated: Path) -> None:
    result = cli("query", "run", "subject_history", data_dir=populated)
    assert_one_line_error(result, "subject")


@pytest.mark.parametrize(
    ("param", "needle"),
    [("as_of=last tuesday", "as_of"), ("colour=blue", "colour"), ("as_of", "NAME=VALUE")],
)
def test_ill_typed_or_unknown_parameter(populated: Path, param: str, needle: str) -> None:
    result = cli("query", "run", "complaints_overdue", "--param", param, data_dir=populated)
    assert_one_line_error(result, needle)


def test_unknown_format(populated: Path) -> None:
    result = cli("query", "run", "trail_integrity", "--format", "xml", data_dir=populated)
    assert_one_line_error(result, "xml")


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = cli("--config", str(missing), "query", "list", data_dir=tmp_path / "d")
    assert_one_line_error(result, str(missing))


def test_unreadable_config_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("data_dir = [unclosed\n")
    result = cli("query", "list", data_dir=tmp_path / "d", env={"AIGC_AUDIT_CONFIG": str(broken)})
    assert_one_line_error(result, str(broken))
    unreadable = tmp_path / "secret.toml"
    unreadable.write_text("batch_size = 10\n")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything; a directory is unreadable as TOML
        unreadable = tmp_path
    result = cli("--config", str(unreadable), "query", "list", data_dir=tmp_path / "d")
    assert_one_line_error(result, str(unreadable))


def test_invalid_setting_in_config(tmp_path: Path) -> None:
    config = tmp_path / "aigc-audit.toml"
    config.write_text("batch_size = -5\n")
    result = cli("--config", str(config), "consume", data_dir=tmp_path / "d")
    assert_one_line_error(result, "batch_size")


def test_data_directory_held_by_another_process(populated: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from aigc_audit.consumers.app.data_dir import DataDirLock; "
            "DataDirLock(Path(sys.argv[1])).acquire(); print('held', flush=True); "
            "time.sleep(60)",
            str(populated),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = cli("query", "run", "trail_integrity", data_dir=populated)
        assert_one_line_error(result, "in use", str(holder.pid))
        consume = cli("consume", data_dir=populated)
        assert_one_line_error(consume, "in use")
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # released with its process: the directory is usable again
        result = cli("query", "run", "trail_integrity", "-f", "json", data_dir=populated)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_demo_json_summary_and_rerun(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    for _ in range(2):  # a second demo starts afresh in the directory the first one made
        result = cli("demo", "--json", "--generations", "400", "--users", "60", data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["materialised"] == summary["emitted"] > 400
        assert summary["quarantined"] == 0
        assert sum(summary["emitted_by_type"].values()) == summary["emitted"]
        assert len(summary["queries"]) >= 10
        assert summary["queries"]["generations_without_filing"] >= 1

    # The demo's inspection: a report, a bundle, and the root key that verifies it offline.
    assert summary["bundle_verified"] is True
    assert summary["exported_events"] == summary["emitted"]
    report = Path(summary["report"]).read_text(encoding="utf-8")
    assert "<svg" in report and "生成" in report
    handed = tmp_path / "inspector"
    shutil.copytree(summary["bundle"], handed / "bundle")
    shutil.copy(summary["trust"], handed / "root.pub")
    shutil.rmtree(data_dir)  # the inspector has the bundle and the key, nothing else
    bundle, key = str(handed / "bundle"), str(handed / "root.pub")
    verified = cli("verify", bundle, "--trust", key, data_dir=tmp_path / "none")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "bundle verified" in verified.stdout

    flip_one_byte_of_one_event(handed / "bundle")
    refused = cli("verify", bundle, "--trust", key, data_dir=tmp_path / "none")
    assert refused.returncode == 1
    assert "✗ 6. events" in refused.stdout and "FAILED" in refused.stdout


def flip_one_byte_of_one_event(bundle: Path) -> None:
    """Change one byte of one event's signed bytes inside its Avro container file, re-writing
    the file as a valid container so that only the proofs can tell."""
    import fastavro

    path = bundle / "events" / "generations.avro"
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema = reader.writer_schema
        records = list(reader)
    raw = bytearray(records[0]["event_bytes"])
    raw[-1] ^= 0x01
    records[0]["event_bytes"] = bytes(raw)
    with path.open("wb") as fh:
        fastavro.writer(fh, schema, records, codec="deflate")


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    data_dir = tmp_path / "real"
    data_dir.mkdir()
    (data_dir / "bus.sqlite3").write_bytes(b"production data")
    result = cli("demo", "--generations", "100", data_dir=data_dir)
    assert_one_line_error(result, "not the demo's")
    assert (data_dir / "bus.sqlite3").read_bytes() == b"production data"


@pytest.mark.slow
def test_export_report_and_verify_from_the_cli(populated: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "generations.zip"
    exported = cli("export", str(bundle), "--family", "generations", data_dir=populated)
    assert exported.returncode == 0, exported.stderr
    assert bundle.is_file()
    key = str(populated.with_name(f"{populated.name}.keys") / "root.pub")  # the default key_dir
    verified = cli("verify", str(bundle), "--trust", key, data_dir=populated)
    assert verified.returncode == 0, verified.stdout
    assert "300 events" in verified.stdout  # exactly the generations, nothing else

    report = tmp_path / "report.html"
    written = cli("report", str(report), "--since", "2000-01-01", data_dir=populated)
    assert written.returncode == 0, written.stderr
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    store = cli("verify", "--store", data_dir=populated)
    assert store.returncode == 0, store.stdout
    assert "store verified" in store.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("verify",), "either BUNDLE --trust KEY, or --store"),
        (("verify", "nowhere.zip", "--trust", "root.pub"), "root.pub"),
        (("export", "out", "--since", "last tuesday"), "not an ISO 8601 time"),
        (("export", "out", "--family", "emails"), "unknown event family"),
        (("export", "out", "--param", "as_of=now"), "--param needs --query"),
        (("report", "r.html", "--query", "no_such_query"), "unknown query"),
    ],
)
def test_inspection_commands_refuse_bad_input_in_one_line(
    populated: Path, args: tuple[str, ...], needle: str
) -> None:
    assert_one_line_error(cli(*args, data_dir=populated), needle)
