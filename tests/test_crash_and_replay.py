"""Crash safety and replay: the store is a projection of the bus that no crash can corrupt."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.store.checksums import table_checksums
from aigc_audit.producers.events import ModerationAction
from tests.harness import T0, Harness, generation

pytestmark = pytest.mark.chdb

EVENTS = 120
BATCH = 10


class Crash(Exception):
    pass


def emit_known_traffic(h: Harness) -> None:
    events: list[Any] = [generation(n) for n in range(EVENTS)]
    events.append(
        ModerationAction(
            case_id="case-1",
            target="generation",
            target_ref="req-3",
            detection_source="output_filter",
            risk_category="A.1.6",
            action="block_generation",
            detected_at=T0,
            acted_at=T0,
        )
    )
    h.emit("chat-1", events, batch_size=BATCH)


def assert_exactly_once(h: Harness) -> None:
    assert h.count("events") == EVENTS + 1
    assert h.count("generations") == EVENTS
    assert h.count("moderation_actions") == 1
    assert h.count("batches") == (EVENTS + 1 + BATCH - 1) // BATCH
    for table in ("events", "generations", "moderation_actions"):
        dupes = h.query(
            f"SELECT event_id FROM audit.{table} GROUP BY event_id HAVING count() > 1"
        ).rows
        assert dupes == [], f"duplicates in {table}"
    per_model = h.query(
        "SELECT model_name, count() FROM audit.generations GROUP BY model_name"
    ).rows
    assert per_model == [("chat-model", EVENTS)]
    assert h.count("quarantine") == 0


def test_crash_after_insert_before_commit(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data")
    try:
        emit_known_traffic(h)

        def crash() -> None:
            raise Crash

        with pytest.raises(Crash):
            h.materialiser(before_commit=crash).run_once(max_messages=1000)
        assert h.count("events") == EVENTS + 1  # inserted, but the bus position is not committed

        restarted = h.restart_materialiser()
        stats = restarted.run_until_idle()
        assert stats.redelivered_skipped == h.count("batches")
        assert stats.events_materialised == 0
        assert_exactly_once(h)
    finally:
        h.close()


def test_crash_between_the_inserts_of_one_poll(tmp_path: Path) -> None:
    """Killed after a poll's typed rows went in but before its ``batches`` rows: the retry reads
    the same messages and its inserts carry the same tokens, so the rows already written are
    not written twice."""
    h = Harness(tmp_path / "data")
    try:
        emit_known_traffic(h)
        store = h.deployment.store()
        real_insert = store.insert

        def failing_insert(table: Any, rows: Any, *, token: str) -> None:
            if table.name == "batches":
                raise Crash
            real_insert(table, rows, token=token)

        store.insert = failing_insert  # type: ignore[method-assign]
        with pytest.raises(Crash):
            h.materialiser().run_once(max_messages=1000)
        store.insert = real_insert  # type: ignore[method-assign]
        assert h.count("batches") == 0
        assert h.count("generations") == EVENTS  # the poll's rows are in, unmarked

        h.restart_materialiser().run_until_idle()
        assert_exactly_once(h)
    finally:
        h.close()


def test_replay_from_offset_zero_rebuilds_identical_tables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    h = Harness(data)
    try:
        emit_known_traffic(h)
        h.publish(b"not a batch at all")  # quarantine must replay identically too
        h.materialise()
        original = table_checksums(h.deployment.store())
    finally:
        h.close()
    assert original["events"][0] == EVENTS + 1
    assert original["quarantine"][0] == 1

    shutil.move(data / "store", tmp_path / "original-store")
    replay = Harness(data, consumer_group="replay-from-zero")
    try:
        replay.materialise()
        rebuilt = table_checksums(replay.deployment.store())
    finally:
        replay.close()
    assert rebuilt == original


def test_checksums_notice_a_changed_row(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data")
    try:
        emit_known_traffic(h)
        h.materialise()
        store = h.deployment.store()
        before = table_checksums(store)
        store.command(
            "ALTER TABLE audit.generations UPDATE latency_ms = 1 WHERE request_id = 'req-7' "
            "SETTINGS mutations_sync = 1"
        )
        after = table_checksums(store)
        assert after["generations"][0] == before["generations"][0]
        assert after["generations"][1] != before["generations"][1]
        assert {k: v for k, v in after.items() if k != "generations"} == {
            k: v for k, v in before.items() if k != "generations"
        }
    finally:
        h.close()


def emit_broken_chains(h: Harness) -> None:
    """A chain with a gap, a late missing batch, a resent successor, a fork and a replay."""
    enc = [[h.encode(generation(1000 + 10 * s + i), "svc-1") for i in range(2)] for s in range(4)]
    b0, b1, b2, b3 = h.chain("svc-1", enc)
    fork = h.seal("svc-1", enc[0], sequence=2, prev=bytes(range(32)))
    for batch in (b0, b2, fork, b1, fork, b2, b0, b3):
        h.publish_batch(batch)


def test_replay_with_chain_findings_rebuilds_identical_tables(tmp_path: Path) -> None:
    """Chain verdicts depend only on the accepted batches before them in bus order, so a replay
    from offset 0 gives the same accepted batches, findings and quarantine."""
    data = tmp_path / "data"
    h = Harness(data)
    try:
        emit_broken_chains(h)
        h.materialise()
        original = table_checksums(h.deployment.store())
        reasons = h.quarantine_reasons()
    finally:
        h.close()
    # b2 early: gap; the fork early: gap; b1: accepted; the fork now: fork (head's next, linked
    # elsewhere); b2 resent: accepted; b0 again: replay; b3: accepted.
    assert reasons == [(1, "chain_gap"), (2, "chain_gap"), (4, "chain_fork"), (6, "replay")]
    assert original["batches"][0] == 4

    shutil.move(data / "store", tmp_path / "original-store")
    replay = Harness(data, consumer_group="replay-from-zero")
    try:
        m = replay.materialiser()
        for _ in range(4):  # in polls of two messages, not one poll as the first time
            m.run_once(max_messages=2)
        assert m.stats.batches_accepted + m.stats.messages_quarantined == 8
        replay.materialise()
        rebuilt = table_checksums(replay.deployment.store())
    finally:
        replay.close()
    assert rebuilt == original


def test_crash_after_a_chain_finding_before_commit(tmp_path: Path) -> None:
    """The heads a restarted materialiser reads back come from ``batches`` only: a gap written
    before the crash does not become a head, and the redelivered poll is not judged twice."""
    h = Harness(data_dir := tmp_path / "data")
    try:
        emit_broken_chains(h)

        def crash() -> None:
            raise Crash

        with pytest.raises(Crash):
            h.materialiser(before_commit=crash).run_once(max_messages=3)
        assert h.quarantine_reasons() == [(1, "chain_gap"), (2, "chain_gap")]
        h.restart_materialiser().run_until_idle()
        after_crash = table_checksums(h.deployment.store())
    finally:
        h.close()
    shutil.move(data_dir / "store", tmp_path / "crashed-store")
    clean = Harness(data_dir, consumer_group="no-crash")
    try:
        clean.materialise()
        assert table_checksums(clean.deployment.store()) == after_crash
        assert clean.count("chain_findings") == 4
    finally:
        clean.close()
