"""A producer's chain head moves only on an accepted batch that links to it (Issue 12, 5).

The attacks: a batch with a bogus ``prev_digest`` (a gap or a fork) that, once quarantined,
would become the head, so that the next batch linking to it is accepted clean; a second batch
with a sequence already claimed; a restart that reads heads back from quarantine. All run the
real pipeline: the embedded bus, the chDB store, real keys and signatures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_audit.consumers.store.checksums import table_checksums
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.signing import GENESIS_DIGEST
from tests.harness import Harness, generation

pytestmark = pytest.mark.chdb

P = "svc-1"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "data")
    yield harness
    harness.close()


def events(h: Harness, first: int, n: int = 2) -> list[bytes]:
    return [h.encode(generation(i), P) for i in range(first, first + n)]


def sealed(h: Harness, sequence: int, prev: bytes, first: int) -> SignedBatch:
    return h.seal(P, events(h, first), sequence=sequence, prev=prev)


def accepted_sequences(h: Harness) -> list[int]:
    rows = h.query(f"SELECT sequence FROM audit.batches WHERE producer_id = '{P}'").rows
    return sorted(int(r[0]) for r in rows)


def findings(h: Harness) -> list[tuple[int, str, int | None, int]]:
    rows = h.query(
        "SELECT offset, kind, expected_sequence, got_sequence FROM audit.chain_findings "
        "ORDER BY offset"
    ).rows
    return [(int(o), k, None if e is None else int(e), int(g)) for o, k, e, g in rows]


def test_a_batch_linking_to_a_quarantined_gap_is_not_accepted(h: Harness) -> None:
    b0 = sealed(h, 0, GENESIS_DIGEST, 0)
    bogus = sealed(h, 2, b"\x66" * 32, 10)  # authentic, but links to nothing accepted
    after = sealed(h, 3, bogus.digest, 20)  # links to the bogus batch
    for b in (b0, bogus, after):
        h.publish_batch(b)
    h.materialise()
    assert accepted_sequences(h) == [0]
    assert h.quarantine_reasons() == [(1, "chain_gap"), (2, "chain_gap")]
    # Both judged against the last accepted head, b0: sequence 1 is what was expected.
    assert findings(h) == [(1, "chain_gap", 1, 2), (2, "chain_gap", 1, 3)]
    assert h.count("generations", "request_id IN ('req-20', 'req-21')") == 0


def test_a_batch_linking_to_a_quarantined_fork_is_not_accepted(h: Harness) -> None:
    b0 = sealed(h, 0, GENESIS_DIGEST, 0)
    fork = sealed(h, 1, b"\x77" * 32, 10)  # the head's next sequence, linked elsewhere
    on_fork = sealed(h, 2, fork.digest, 20)
    b1 = sealed(h, 1, b0.digest, 30)  # the real sequence 1, after the fork
    b2 = sealed(h, 2, b1.digest, 40)
    for b in (b0, fork, on_fork, b1, b2):
        h.publish_batch(b)
    h.materialise()
    assert h.quarantine_reasons() == [(1, "chain_fork"), (2, "chain_gap")]
    assert findings(h) == [(1, "chain_fork", 1, 1), (2, "chain_gap", 1, 2)]
    # The fork did not take the head, so the genuine chain goes on from b0.
    assert accepted_sequences(h) == [0, 1, 2]
    digests = h.query(
        f"SELECT sequence, hex(digest) FROM audit.batches WHERE producer_id = '{P}' "
        "ORDER BY sequence"
    ).rows
    assert [d for _, d in digests] == [b.digest.hex().upper() for b in (b0, b1, b2)]


def test_a_second_batch_claiming_a_used_sequence_is_a_fork(h: Harness) -> None:
    b0 = sealed(h, 0, GENESIS_DIGEST, 0)
    b1 = sealed(h, 1, b0.digest, 10)
    first_claim = sealed(h, 2, b"\x01" * 32, 20)  # sequence 2, refused: not accepted
    second_claim = sealed(h, 2, b"\x02" * 32, 30)  # sequence 2 again, another digest
    rival_of_b1 = sealed(h, 1, b0.digest, 40)  # same sequence and link as b1, other events
    for b in (b0, b1, first_claim, second_claim, rival_of_b1, b0):
        h.publish_batch(b)
    h.materialise()
    assert h.quarantine_reasons() == [
        (2, "chain_fork"),
        (3, "chain_fork"),  # on the old rule: chain_reorder
        (4, "chain_fork"),
        (5, "replay"),  # the very same batch again stays a replay
    ]
    assert [f[1] for f in findings(h)] == ["chain_fork", "chain_fork", "chain_fork", "replay"]
    assert accepted_sequences(h) == [0, 1]
    assert "chain_reorder" not in {r for _, r in h.quarantine_reasons()}


def test_the_late_missing_batch_is_accepted_and_a_resent_successor_too(h: Harness) -> None:
    """b2 and b3 come before b1: they are gaps. b1 links to the head and is accepted; the early
    copies of b2 and b3 stay in quarantine as findings (nothing comes back out of quarantine),
    and when the producer sends them again they link and are accepted."""
    b0, b1, b2, b3 = h.chain(P, [events(h, 10 * i) for i in range(4)])
    for b in (b0, b2, b3, b1, b2, b3):
        h.publish_batch(b)
    h.materialise()
    assert h.quarantine_reasons() == [(1, "chain_gap"), (2, "chain_gap")]
    assert findings(h) == [(1, "chain_gap", 1, 2), (2, "chain_gap", 1, 3)]
    assert accepted_sequences(h) == [0, 1, 2, 3]
    offsets = h.query(
        f"SELECT sequence, offset FROM audit.batches WHERE producer_id = '{P}' ORDER BY sequence"
    ).rows
    assert [(int(s), int(o)) for s, o in offsets] == [(0, 0), (1, 3), (2, 4), (3, 5)]
    assert h.count("generations", f"producer_id = '{P}'") == 8


def test_a_restart_reads_heads_from_accepted_batches_only(h: Harness) -> None:
    b0 = sealed(h, 0, GENESIS_DIGEST, 0)
    bogus = sealed(h, 5, b"\x55" * 32, 10)
    h.publish_batch(b0)
    h.publish_batch(bogus)
    h.materialise()
    assert h.quarantine_reasons() == [(1, "chain_gap")]

    h.restart_materialiser()  # a new process: its heads come from the store
    h.publish_batch(sealed(h, 6, bogus.digest, 20))
    h.publish_batch(sealed(h, 1, b0.digest, 30))
    h.materialise()
    assert h.quarantine_reasons() == [(1, "chain_gap"), (2, "chain_gap")]
    assert accepted_sequences(h) == [0, 1]
    assert h.query("SELECT countIf(advances_chain) FROM audit.quarantine").rows == [(0,)]


class Crash(Exception):
    pass


def crash() -> None:
    raise Crash


def publish_adversarial_stream(h: Harness) -> None:
    """Two producers' chains broken every way, with garbage between, and a run of refusals
    long enough to raise reject-flood alerts (reject_alert_streak is 4 in the test below)."""
    a = h.chain("svc-1", [events(h, 10 * i) for i in range(6)])
    b = h.chain("svc-2", [[h.encode(generation(500 + i), "svc-2")] for i in range(4)])
    fork = h.seal("svc-1", events(h, 900), sequence=2, prev=b"\x09" * 32)
    stream: list[SignedBatch | bytes] = [
        a[0],
        b[0],
        a[2],  # gap
        b[1],
        fork,  # gap too: sequence 2 is beyond the head, 0
        a[1],  # the missing batch, late: accepted
        fork,  # now a fork: sequence 2 is the head's next, linked elsewhere
        *(f"garbage {n}".encode() for n in range(9)),  # two alerts
        a[2],  # resent: accepted
        a[0],  # replay
        b[3],  # gap
        b[2],
        b[3],
        a[4],
        a[3],
        a[5],  # gap: judged against a[3]
    ]
    for item in stream:
        if isinstance(item, SignedBatch):
            h.publish_batch(item)
        else:
            h.publish(item)


def test_a_restart_mid_stream_gives_the_tables_of_an_uninterrupted_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    h = Harness(data, reject_alert_streak=4)
    try:
        publish_adversarial_stream(h)
        h.materialise()
        uninterrupted = table_checksums(h.deployment.store())
        kinds = h.query(
            "SELECT kind, count() FROM audit.chain_findings GROUP BY kind ORDER BY kind"
        ).rows
    finally:
        h.close()
    assert kinds == [("chain_fork", 1), ("chain_gap", 5), ("reject_flood", 2), ("replay", 1)]

    shutil.move(data / "store", tmp_path / "uninterrupted-store")
    again = Harness(data, consumer_group="restarted", reject_alert_streak=4)
    try:
        polls = 0
        while True:
            # A new process for every three messages: heads, reject runs and what is already
            # written all come back from the store. Every other process crashes after its
            # inserts and before its commit, so the next one is handed the same messages again.
            polls += 1
            if polls % 2:
                try:
                    again.materialiser(before_commit=crash).run_once(max_messages=3)
                except Crash:
                    continue
                break  # nothing was left to poll, so nothing to commit
            again.restart_materialiser().run_once(max_messages=3)
        restarted = table_checksums(again.deployment.store())
    finally:
        again.close()
    assert polls > 16  # 25 messages, three a poll, each poll crashed once
    assert restarted == uninterrupted
