"""``verify --store`` catches rows altered, deleted or inserted directly in ClickHouse."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aigc_audit.consumers.cli.main import main
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.tables import GENERATIONS
from aigc_audit.consumers.store_verification import Finding, verify_store
from aigc_audit.producers.events import ModerationAction
from aigc_audit.producers.signing import load_public_key
from tests.harness import T0, Harness, generation
from tests.store_rows import generation as generation_row
from tests.store_rows import insert

pytestmark = pytest.mark.chdb

SYNC = " SETTINGS mutations_sync = 2"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A materialised deployment: two producers, several batches, a quarantined message. (A
    chDB store cannot be copied: its Atomic database links by absolute path.)"""
    h = Harness(tmp_path / "data")
    h.emit("chat-1", [generation(n) for n in range(40)], batch_size=8)
    h.publish(b"garbage")
    incident = ModerationAction(
        case_id="case-1",
        target="generation",
        target_ref="req-3",
        subject="subject-3",
        detection_source="output_filter",
        risk_category="A.1.6",
        action="block_generation",
        detected_at=T0,
        acted_at=T0,
    )
    h.emit("mod-1", [incident, *[generation(n) for n in range(40, 50)]], batch_size=4)
    h.materialise()
    yield h
    h.close()


def findings(h: Harness) -> list[Finding]:
    root = load_public_key(h.settings.root_public_key_path)
    result = verify_store(h.deployment.store(), root)
    assert result.ok == (not result.findings)
    return result.findings


def an_event(store: Store, table: str, where: str = "1") -> str:
    rows = store.query(
        f"SELECT toString(event_id) FROM audit.{table} WHERE {where} ORDER BY event_id LIMIT 1"
    ).rows
    return str(rows[0][0])


def test_an_untouched_store_verifies(harness: Harness) -> None:
    root = load_public_key(harness.settings.root_public_key_path)
    result = verify_store(harness.deployment.store(), root)
    assert result.ok, [f.line() for f in result.findings]
    assert result.counts["events"] == 51
    assert result.counts["checkpoints"] >= 1
    assert [c.name for c in result.checks] == [
        "1. keys",
        "2. batches",
        "3-4. events and derived rows",
        "5-6. checkpoints and bus positions",
    ]


def test_an_altered_typed_row_is_named(harness: Harness) -> None:
    store = harness.deployment.store()
    event_id = an_event(store, "moderation_actions")
    store.command(
        "ALTER TABLE audit.moderation_actions UPDATE acted_at = acted_at + INTERVAL 3 DAY "
        f"WHERE event_id = '{event_id}'" + SYNC
    )
    (finding,) = findings(harness)
    assert (finding.table, finding.kind, finding.event_id) == (
        "moderation_actions",
        "altered",
        event_id,
    )
    assert finding.partition == "aigc-audit.events/0"
    assert "acted_at" in finding.detail


def test_altered_event_bytes_are_named(harness: Harness) -> None:
    store = harness.deployment.store()
    event_id = an_event(store, "events", "family = 'aigc.audit.Generation'")
    store.command(
        "ALTER TABLE audit.events UPDATE event_bytes = concat(event_bytes, 'x') "
        f"WHERE event_id = '{event_id}'" + SYNC
    )
    found = findings(harness)
    assert ("events", "altered", event_id) in {(f.table, f.kind, f.event_id) for f in found}


def test_a_deleted_typed_row_is_named(harness: Harness) -> None:
    store = harness.deployment.store()
    event_id = an_event(store, "generations")
    store.command(f"ALTER TABLE audit.generations DELETE WHERE event_id = '{event_id}'" + SYNC)
    (finding,) = findings(harness)
    assert (finding.table, finding.kind, finding.event_id) == ("generations", "deleted", event_id)


def test_an_inserted_typed_row_is_named(harness: Harness) -> None:
    store = harness.deployment.store()
    forged = uuid.uuid4()
    insert(store, GENERATIONS, [generation_row(event_id=forged, request_id="never-happened")])
    (finding,) = findings(harness)
    assert (finding.table, finding.kind, finding.event_id) == (
        "generations",
        "inserted",
        str(forged),
    )


def test_a_deleted_batch_with_its_events_is_caught_by_the_checkpoint(harness: Harness) -> None:
    store = harness.deployment.store()
    store.command("ALTER TABLE audit.batches DELETE WHERE producer_id = 'chat-1' AND sequence = 2"
                  + SYNC)  # fmt: skip
    for table in ("generations", "events"):
        store.command(
            f"ALTER TABLE audit.{table} DELETE WHERE event_id IN (SELECT event_id FROM "
            "audit.events WHERE producer_id = 'chat-1' AND batch_sequence = 2)" + SYNC
        )
    found = {(f.table, f.kind) for f in findings(harness)}
    assert ("batches", "deleted") in found  # the signed tree counts one batch more
    assert ("quarantine", "deleted") in found  # its bus offset is in no table


def test_a_deleted_quarantine_row_is_caught(harness: Harness) -> None:
    store = harness.deployment.store()
    store.command("ALTER TABLE audit.quarantine DELETE WHERE 1" + SYNC)
    (finding,) = findings(harness)
    assert (finding.table, finding.kind) == ("quarantine", "deleted")
    assert "5" in finding.detail  # the garbage message's offset


def test_a_forged_checkpoint_is_caught(harness: Harness) -> None:
    store = harness.deployment.store()
    store.command(
        "ALTER TABLE audit.checkpoints UPDATE note = replaceOne(note, 'next-offset', "
        "'next-offset 1\\nnext-offset') WHERE 1" + SYNC
    )
    found = {(f.table, f.kind) for f in findings(harness)}
    assert ("checkpoints", "forged") in found


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda store: None, 0),
        (lambda store: store.command("ALTER TABLE audit.user_sanctions DELETE WHERE 1" + SYNC), 0),
        (lambda store: store.command("ALTER TABLE audit.generations DELETE WHERE 1" + SYNC), 1),
    ],
)
def test_cli_exit_code(
    harness: Harness, tamper: Callable[[Store], None], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(harness.deployment.store())
    data_dir = harness.settings.data_dir
    harness.close()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(data_dir), "verify", "--store"])
    assert exit_info.value.code == code
    printed = capsys.readouterr().out
    assert ("store verified" in printed) == (code == 0)
