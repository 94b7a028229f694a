"""A flood of bad messages on the bus does not halt ingestion (Issue 12, 4).

Anyone who can write to the events topic can write garbage. The materialiser must quarantine
every bad message with its reason and position, go on ingesting the valid producers' batches
between them, and raise an alert on a sustained run of refusals (a warning line, a count, a
``reject_flood`` row ``trail_integrity`` reports) instead of stopping. The quarantine path must
do a bounded amount of work per poll against the store and the key registry, never an amount
that grows with the messages or the history. Real parts throughout: the embedded bus, the chDB
store, real keys and Ed25519 signatures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.consumers.ingest.materialiser import MaterialiseStats
from aigc_audit.consumers.query.pack import bind_params, get_query, run_query
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.signing import SigningKey, batch_signing_input
from tests.harness import Harness, generation

pytestmark = pytest.mark.chdb

GOOD = "good-1"
ROGUE = "rogue-1"  # a registered producer whose chain is forged (its key leaked, say)
STREAK = 1000  # the default reject_alert_streak


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "data")
    yield harness
    harness.close()


class Garbage:
    """A stranger's bad messages, one of each kind, built once and published many times."""

    def __init__(self, h: Harness, good: list[SignedBatch]) -> None:
        stranger = SigningKey.generate()  # never registered
        target = h.seal(GOOD, [h.encode(generation(9000), GOOD)])
        forged = dataclasses.replace(
            target, signature=stranger.sign(batch_signing_input(target.head))
        )
        rogue = [h.encode(generation(8000), ROGUE)]
        self.kinds: list[tuple[str, bytes]] = [
            ("not_a_batch", os.urandom(64)),
            ("not_a_batch", b""),
            ("bad_signature", forged.encode(h.catalogue)),
            ("unknown_key", h.seal("stranger-1", rogue, key=stranger).encode(h.catalogue)),
            ("chain_gap", h.seal(ROGUE, rogue, sequence=7, prev=b"\x07" * 32).encode()),
            ("chain_fork", h.seal(ROGUE, rogue, sequence=0, prev=b"\x01" * 32).encode()),
            ("replay", good[0].encode(h.catalogue)),  # copied off the bus
        ]

    def publish(self, h: Harness, n: int, expected: list[tuple[int, str]], at: int) -> int:
        """Publish ``n`` bad messages from offset ``at``; records what each must become."""
        for i in range(n):
            reason, value = self.kinds[i % len(self.kinds)]
            if reason == "replay" and i % 70:
                reason, value = self.kinds[0]  # a replay costs a lookup: keep them rarer
            h.publish(value)
            expected.append((at + i, reason))
        return at + n


@pytest.mark.slow
def test_a_flood_does_not_halt_ingestion(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    good = h.chain(
        GOOD, [[h.encode(generation(100 * s + i), GOOD) for i in range(3)] for s in range(8)]
    )
    garbage = Garbage(h, good)
    runs = [0, STREAK + 150, 9, 1, STREAK - 1, 40, 3, 2 * STREAK + 20]  # before each good batch
    expected: list[tuple[int, str]] = []
    at = 0
    flood_ends: list[int] = []
    good_offsets: list[int] = []
    for run, batch in zip(runs, good, strict=True):
        start = at
        at = garbage.publish(h, run, expected, at)
        flood_ends += [start + k * STREAK - 1 for k in range(1, run // STREAK + 1)]
        h.publish_batch(batch)
        good_offsets.append(at)
        at += 1
    with caplog.at_level(logging.INFO, logger="aigc_audit.consumers.ingest.materialiser"):
        stats = h.materialise()  # the old rule stopped here, at the 1000th refusal in a row

    # Every valid event is in, from every batch, flood or not.
    assert h.count("generations", f"producer_id = '{GOOD}'") == 24
    accepted = h.query(f"SELECT offset FROM audit.batches WHERE producer_id = '{GOOD}'").rows
    assert sorted(int(o) for (o,) in accepted) == good_offsets
    # Every bad message is in quarantine, at its position, with its reason.
    assert h.quarantine_reasons() == expected
    assert stats.messages_quarantined == len(expected) == sum(runs)
    # Floods: the runs of 1150 and 2020 raised one and two alerts; the run of 999 none.
    floods = h.query(
        "SELECT producer_id, offset, detail FROM audit.chain_findings "
        "WHERE kind = 'reject_flood' ORDER BY offset"
    ).rows
    assert [int(o) for _, o, _ in floods] == flood_ends
    assert {p for p, _, _ in floods} == {"(bus)"}
    assert floods[-1][2] == (
        f"{2 * STREAK} messages in a row refused on aigc-audit.events/0, "
        f"offsets {good_offsets[-2] + 1}..{flood_ends[-1]}"
    )
    assert stats.reject_floods == 3
    # One warning per flood when it starts, one when it ends; not one per message past the
    # threshold (those are debug lines).
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(m.startswith("reject flood:") for m in warnings) == 2
    assert sum(m.startswith("reject flood on ") for m in warnings) == 2
    past_threshold = sum(max(0, run - STREAK) for run in runs)
    assert sum(m.startswith("quarantined") for m in warnings) == len(expected) - past_threshold
    # trail_integrity reports it.
    trail = {r["producer_id"]: r for r in _query(h, "trail_integrity")}
    assert trail["(bus)"]["findings_by_kind"] == ["reject_flood: 3"]
    assert trail[GOOD]["batches"] == 8


def test_quarantine_work_per_poll_does_not_grow_with_the_flood(h: Harness) -> None:
    """A flood of unknown keys, garbage and replayed batches costs a fixed number of store
    queries and registry reads per poll: nothing per message."""
    good = h.chain(GOOD, [[h.encode(generation(1), GOOD)]])
    h.publish_batch(good[0])
    garbage = Garbage(h, good)
    mix = [garbage.kinds[3][1], garbage.kinds[0][1], garbage.kinds[6][1]]  # unknown key,
    for i in range(600):  # junk, replay; under the old stop limit, so it cannot stop early
        h.publish(mix[i % 3])
    m = h.materialiser()
    store, keys = h.deployment.store(), m._keys
    calls = {"query": 0, "keys_poll": 0}
    real_query, real_poll = store.query, keys.poll

    def query(*args: Any, **kwargs: Any) -> Any:
        calls["query"] += 1
        return real_query(*args, **kwargs)

    def poll(*args: Any, **kwargs: Any) -> Any:
        calls["keys_poll"] += 1
        return real_poll(*args, **kwargs)

    store.query = query  # type: ignore[method-assign]
    keys.poll = poll  # type: ignore[method-assign]
    try:
        polls = 0
        while m.run_once(max_messages=200) != MaterialiseStats():
            polls += 1
    finally:
        store.query = real_query  # type: ignore[method-assign]
        keys.poll = real_poll  # type: ignore[method-assign]
    assert h.count("quarantine") == 600
    assert polls == 4  # 601 messages
    assert calls["query"] <= 10 * (polls + 1), calls
    assert calls["keys_poll"] <= 3 * (polls + 1), calls


def test_the_alert_shows_in_consume(tmp_path: Path) -> None:
    data = tmp_path / "data"
    h = Harness(data)
    try:
        h.publish_batch(h.chain(GOOD, [[h.encode(generation(1), GOOD)]])[0])
        for n in range(7):
            h.publish(f"garbage {n}".encode())
    finally:
        h.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    env.update(AIGC_AUDIT_DATA_DIR=str(data), AIGC_AUDIT_REJECT_ALERT_STREAK="3")
    # The command runs the code under test, wherever this checkout is.
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])
    result = subprocess.run(
        [sys.executable, "-m", "aigc_audit.consumers.cli.main", "consume", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.splitlines()[-1])
    assert (counts["reject_floods"], counts["messages_quarantined"]) == (2, 7)
    assert counts["events_materialised"] == 1
    assert "reject flood: 2 alert(s)" in result.stderr
    assert "reject flood: 3 messages in a row refused" in result.stderr  # the log line


def _query(h: Harness, name: str) -> list[dict[str, Any]]:
    query = get_query(name)
    return run_query(h.deployment.store(), query, bind_params(query, {})).as_dicts()


def test_replaying_the_bus_raises_the_same_alerts(tmp_path: Path) -> None:
    """The run of refusals is settled per partition in bus order and the alert row carries
    only bus positions and times: a replay into an empty store, in polls of one message,
    writes the same rows as the first run did in one poll."""
    data = tmp_path / "data"

    def alerts(h: Harness) -> list[tuple[Any, ...]]:
        return [
            tuple(r)
            for r in h.query(
                "SELECT kind, producer_id, expected_sequence, got_sequence, detail, topic, "
                "partition, offset, received_at FROM audit.chain_findings ORDER BY offset"
            ).rows
        ]

    first = Harness(data, reject_alert_streak=2)
    try:
        for n in range(5):
            first.publish(f"garbage {n}".encode())
        first.publish_batch(first.chain(GOOD, [[first.encode(generation(1), GOOD)]])[0])
        for n in range(3):
            first.publish(f"more {n}".encode())
        first.materialise()
        original = alerts(first)
    finally:
        first.close()
    assert [(r[0], r[7]) for r in original] == [
        ("reject_flood", 1),
        ("reject_flood", 3),
        ("reject_flood", 7),
    ]
    (data / "store").rename(tmp_path / "first-store")
    replay = Harness(data, consumer_group="replay", reject_alert_streak=2)
    try:
        m = replay.materialiser()
        while m.run_once(max_messages=1) != MaterialiseStats():
            pass
        assert alerts(replay) == original
    finally:
        replay.close()
