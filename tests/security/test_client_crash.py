"""A client killed with SIGKILL at random points never forks its chain and never loses a flushed
event (issue 12, deliverable 6).

A child process runs a real :class:`~producers.AuditClient` against the real embedded log of a
harness deployment: it emits bursts of events, flushes, and appends the ids of each burst whose
``flush()`` returned to a side file. The parent kills it with SIGKILL after a random delay, many
times, restarting it each time with the same state directory (so the same chain state and
spool), then lets one last run close cleanly. A real materialiser (chDB store) then consumes the
whole log, and the test asserts:

* no batch was quarantined as ``chain_fork`` or ``chain_gap`` (a ``replay`` is allowed: it is the
  re-send of a batch that had arrived before the kill, and it is dropped);
* no sequence appears on the bus twice with different digests;
* the accepted chain is unbroken from sequence 0;
* every event id a flush confirmed is in the store.

The kills land anywhere: while the child starts, while it re-sends, between a publish and the
chain-state write (the window the old client forked in), during fsyncs. In the ``bus-flapping``
variant the bus is down now and then for a few milliseconds, so batches are spooled and drained
and kills land in those paths too; the last run drains the spool before it closes. Set
``AIGC_AUDIT_CRASH_SEED`` to replay a run; every failure message names the seed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.transports.embedded_log import EmbeddedLog
from tests.harness import Harness

pytestmark = pytest.mark.chdb

SEED = int(os.environ.get("AIGC_AUDIT_CRASH_SEED", "20261204"))
KILLS = 24
PRODUCER = "chat-1"
# Small batches and a short linger: many batches, so many publish/save windows to land in.
BATCH_SIZE = 40
REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import hashlib, random, sys, time
from datetime import UTC, datetime
from pathlib import Path

from aigc_audit.producers import AuditClient, BusUnavailableError, Generation, SigningKey
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

key_path, bus_path, state_dir, topic, side_path, run, seed, batch_size, final, flap = sys.argv[1:]
run, seed, batch_size = int(run), int(seed), int(batch_size)
rng = random.Random(seed * 1000 + run)
log = EmbeddedLog(Path(bus_path))


class FlappingBus:
    # The real log, down now and then for a few milliseconds: batches go to the spool and
    # drain from it, so kills land in spool appends, drains and re-sends behind the spool too.
    def __init__(self, inner):
        self.inner, self.down_until = inner, 0.0

    def publish(self, topic, key, value):
        self.publish_many(topic, [(key, value)])

    def publish_many(self, topic, items):
        now = time.monotonic()
        if flap == "1" and now >= self.down_until and rng.random() < 0.04:
            self.down_until = now + rng.uniform(0.0, 0.03)
        if now < self.down_until:
            raise BusUnavailableError("flapping test bus is down")
        self.inner.publish_many(topic, items)

    def close(self):
        self.inner.close()


client = AuditClient(
    service_id="chat", producer_id="chat-1", key=SigningKey.from_file(key_path),
    bus=FlappingBus(log.writer()), topic=topic, state_dir=Path(state_dir),
    batch_size=batch_size, linger=0.002, retry_backoff=0.002, max_retry_backoff=0.02,
)
print("ready", flush=True)
digest = hashlib.sha256(b"x").digest()

def gen(n):
    return Generation(
        request_id=f"run{run}-{n}", model_name="m", model_version="1", filing_number="F-1",
        modality="text", channel="api", subject="s1", input_sha256=digest,
        output_sha256=digest, output_bytes=10, explicit_label=True,
        safety_verdict="passed", latency_ms=5, occurred_at=datetime(2026, 9, 1, tzinfo=UTC),
    )

n = 0
with open(side_path, "a") as side:
    for burst in range(3 if final == "1" else 1_000_000):
        ids = [str(client.generation(gen(n + i))) for i in range(rng.randint(1, 3 * batch_size))]
        n += len(ids)
        client.flush()
        # Only after flush returned: these are the events the client promised are durable.
        side.write("".join(i + "\n" for i in ids))
        side.flush()
client.drain(timeout=30)  # the last run: leave nothing in the spool
client.close()
print("closed", flush=True)
"""


def _run_child(args: list[str], *, kill_after: float | None) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "ready\n", f"child did not start (seed {SEED}): {line!r} {child.stderr}"
        if kill_after is None:
            out, err = child.communicate(timeout=30)
            assert child.returncode == 0 and "closed" in out, f"seed {SEED}: {err}"
            return
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL, (
            f"seed {SEED}: the child ended before the kill: {child.stderr.read()}"
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def _flushed_ids(side: Path) -> set[uuid.UUID]:
    ids = set()
    for line in side.read_text().splitlines(keepends=True):
        if line.endswith("\n"):  # a line cut short by the kill confirms nothing
            ids.add(uuid.UUID(line.strip()))
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("flapping", [False, True], ids=["bus-up", "bus-flapping"])
def test_sigkill_at_random_points_never_forks_and_never_loses_a_flushed_event(
    tmp_path: Path, flapping: bool
) -> None:
    rng = random.Random(SEED)
    h = Harness(tmp_path / "data")
    try:
        key_path = tmp_path / "producer.key"
        h.key(PRODUCER).to_file(key_path)  # registered on the bus under the root
        s = h.settings
        side = tmp_path / "flushed.txt"
        side.touch()
        common = [str(key_path), str(s.bus_path), str(s.producer_state_dir), s.events_topic]
        common.append(str(side))
        flap = "1" if flapping else "0"
        for run in range(KILLS):
            # Mostly short delays: the first batches of a run, and the re-send at start-up,
            # are where a restart goes wrong.
            delay = rng.choice([rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.4)])
            _run_child([*common, str(run), str(SEED), str(BATCH_SIZE), "0", flap], kill_after=delay)
        # The last run, with the bus up, drains what the spool holds and closes.
        _run_child([*common, str(KILLS), str(SEED), str(BATCH_SIZE), "1", "0"], kill_after=None)

        flushed = _flushed_ids(side)
        assert len(flushed) > 10 * BATCH_SIZE, f"seed {SEED}: too little traffic to judge"

        # On the bus: one digest per sequence, however often a batch was sent.
        with EmbeddedLog(s.bus_path) as log:
            reader = log.reader(f"check-{uuid.uuid4()}", [s.events_topic])
            messages = reader.poll(max_messages=1_000_000)
            reader.close()
        digests: dict[int, set[bytes]] = defaultdict(set)
        for message in messages:
            batch = SignedBatch.decode(message.value)
            digests[batch.sequence].add(batch.digest)
        reused = {seq: len(d) for seq, d in digests.items() if len(d) > 1}
        assert not reused, f"seed {SEED}: sequences sent with different batches: {reused}"
        assert sorted(digests) == list(range(len(digests))), f"seed {SEED}: a sequence is missing"

        if flapping:  # the spool was really used (AUTOINCREMENT remembers its highest seq)
            spool_db = s.producer_state_dir / "spool" / PRODUCER / "spool.sqlite3"
            with contextlib.closing(sqlite3.connect(spool_db)) as db:
                row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
                spooled = (row.fetchone() or (0,))[0]
                left = db.execute("SELECT count(*) FROM messages").fetchone()[0]
            assert spooled > 0, f"seed {SEED}: nothing was ever spooled"
            assert left == 0, f"seed {SEED}: {left} batches were left in the spool"

        h.materialise()
        reasons = [reason for _, reason in h.quarantine_reasons()]
        broken = [r for r in reasons if r in ("chain_fork", "chain_gap")]
        assert not broken, f"seed {SEED}: quarantined {broken} (all findings: {reasons})"
        assert set(reasons) <= {"replay"}, f"seed {SEED}: unexpected quarantine {reasons}"
        assert h.count("batches") == len(digests), f"seed {SEED}: the accepted chain is broken"

        stored = {
            uuid.UUID(str(row[0])) for row in h.query("SELECT event_id FROM audit.events").rows
        }
        missing = flushed - stored
        assert not missing, f"seed {SEED}: {len(missing)} flushed events are not in the store"
        print(
            f"seed {SEED}, flapping={flapping}: {KILLS} kills, {len(digests)} batches, "
            f"{len(messages)} messages ({len(reasons)} replays), {len(flushed)} flushed events "
            "all stored"
        )
    finally:
        h.close()
