"""The materialiser: reads signed batches from the bus, verifies them, writes them to the store.

For each message, in bus order: verify (see :mod:`consumers.ingest.verification`); write the
accepted batch's rows (typed tables, then ``events``, then ``batches`` last) or the refused
message to ``quarantine`` (after its chain finding, if any); and only when every message of a
poll is written, commit the bus position. Each insert carries a token derived from the message's
position, so a crash anywhere in between is repaired by processing the same messages again.

A flood of bad messages does not stop ingestion: every ``reject_alert_streak`` messages in a row
refused on one bus partition raise a ``reject_flood`` alert (one warning line, the
``reject_floods`` count of :class:`MaterialiseStats`, and a row in ``chain_findings`` at the bus
position that completed the run, which ``trail_integrity`` reports under the producer ``(bus)``),
and the materialiser goes on. The run is counted per partition, in bus order, and read back from
the store at start-up, so a replay or a restart raises the same alerts at the same positions.
With ``on_reject_flood="stop"`` the materialiser stops at the alert instead
(:class:`MaterialiserHalted`), for operators who prefer a halt to a quarantined stream.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aigc_audit.consumers.checkpoints.checkpointer import Checkpointer
from aigc_audit.consumers.ingest.chain import AcceptedBatch, ChainHead, ChainTracker
from aigc_audit.consumers.ingest.engine_path import (
    GenerationIngest,
    engine_reads_files,
    ingest_directory,
)
from aigc_audit.consumers.ingest.errors import IngestError
from aigc_audit.consumers.ingest.poll_write import PollWrite
from aigc_audit.consumers.ingest.verification import BatchVerifier, Verdict
from aigc_audit.consumers.keys.keyring import KeyRejected, Keyring
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.retention import ACTIVE_HOLDS
from aigc_audit.consumers.store.rows import BusPosition, batch_rows, us_to_datetime
from aigc_audit.consumers.store.tables import CHAIN_FINDINGS, KEYS, QUARANTINE
from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.signing import KeyRegistration
from aigc_audit.producers.transports.base import BusMessage, BusReader

log = logging.getLogger(__name__)

ACCEPTED_CACHE = 65_536
"""Accepted batches (and known absences) kept in memory by (producer, sequence), so that a
flood of replayed batches is judged without a store query each."""
LOOKUP_SPAN = 1024
"""Sequences read in one store query around a lookup that missed the cache: a replay of a run
of old batches costs one query per this many."""


class MaterialiserHalted(IngestError):
    """Too many messages in a row failed verification and ``on_reject_flood`` is "stop": the
    materialiser stopped on purpose."""


FLOOD_KIND = "reject_flood"
FLOOD_PRODUCER = "(bus)"
"""A reject flood is a finding about a bus partition, not about a producer: the messages in it
are unauthenticated (or refused), so none of the producer ids they claim is credible."""


@dataclass
class RejectStreak:
    """The run of refused messages at the end of one bus partition, as far as it is settled."""

    count: int = 0
    first_offset: int = 0

    def settle(self, offset: int, accepted: bool) -> None:
        if accepted:
            self.count = 0
            return
        if self.count == 0:
            self.first_offset = offset
        self.count += 1


@dataclass
class MaterialiseStats:
    batches_accepted: int = 0
    events_materialised: int = 0
    messages_quarantined: int = 0
    events_quarantined: int = 0
    chain_findings: int = 0
    keys_registered: int = 0
    redelivered_skipped: int = 0
    engine_decoded: int = 0
    """Of ``events_materialised``, those the store's engine decoded (generation_ingest)."""
    reject_floods: int = 0
    """``reject_flood`` alerts raised: each is ``reject_alert_streak`` more messages refused in
    a row on one partition."""

    def add(self, other: MaterialiseStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Materialiser:
    """Owns the read side of one consumer group; one instance per process. The store must be
    migrated already (``Deployment.store()`` does it when it opens one)."""

    def __init__(
        self,
        *,
        store: Store,
        events: BusReader,
        keys: BusReader,
        root_public_key: bytes,
        catalogue: SchemaCatalogue | None = None,
        before_commit: Callable[[], None] | None = None,
        reject_alert_streak: int = 1000,
        on_reject_flood: Literal["alert", "stop"] = "alert",
        checkpointer: Checkpointer | None = None,
        engine_decoding: bool | None = None,
    ) -> None:
        """``engine_decoding``: let the store's engine decode generation events (see
        :mod:`consumers.ingest.engine_path`); None: wherever the store can (the embedded one).
        ``reject_alert_streak``: refused messages in a row on one partition that raise a
        ``reject_flood`` alert (0: never); ``on_reject_flood``: go on after it, or stop."""
        self._checkpointer = checkpointer
        self._alert_streak = reject_alert_streak
        self._stop_on_flood = on_reject_flood == "stop"
        self._streaks: dict[tuple[str, int], RejectStreak] = {}
        self._store = store
        self._events = events
        self._keys = keys
        self._catalogue = catalogue or default_catalogue()
        self._before_commit = before_commit
        self._db = store.database
        self.stats = MaterialiseStats()
        self._keyring = Keyring(root_public_key)
        # The registry is small and compacted: read it whole at every start.
        self._keys.seek_to_beginning()
        self._accepted_cache: OrderedDict[tuple[str, int], AcceptedBatch | None] = OrderedDict()
        self._chain = ChainTracker(self._load_heads(), self._accepted_batch)
        self._verifier = BatchVerifier(self._catalogue, self._keyring, self._chain)
        self._processed: dict[tuple[str, int], dict[int, bool]] = {}
        """Per partition: offsets at or past the committed position that the store already
        holds, and whether each was accepted."""
        self._poll = PollWrite()
        if engine_decoding is None:
            engine_decoding = engine_reads_files(store)
        self._ingest = (
            GenerationIngest(store, self._catalogue, ingest_directory(store))
            if engine_decoding
            else None
        )

    # -- start-up state, read back from the store ------------------------------------------

    def _load_heads(self) -> dict[str, ChainHead]:
        # Only accepted batches move a head (consumers.ingest.chain), so the heads are the last
        # accepted batch of each producer; what quarantine holds never counts.
        result = self._store.query(
            f"SELECT producer_id, max(sequence), hex(argMax(digest, sequence)) "
            f"FROM {self._db}.batches GROUP BY producer_id"
        )
        return {p: ChainHead(int(s), bytes.fromhex(d)) for p, s, d in result.rows}

    def _accepted_batch(self, producer_id: str, sequence: int) -> AcceptedBatch | None:
        pending = self._poll.accepted.get((producer_id, sequence))
        if pending is not None:  # accepted earlier in this poll, not yet written
            return pending
        key = (producer_id, sequence)
        if key in self._accepted_cache:
            self._accepted_cache.move_to_end(key)
            return self._accepted_cache[key]
        # One query for the sequences around this one: replays come in runs, and a flood of
        # them must not cost a query each. A sequence in the span that ``batches`` lacks is
        # remembered as absent (the cache is cleared when another materialiser may write).
        low = max(0, sequence - LOOKUP_SPAN // 2)
        result = self._store.query(
            f"SELECT sequence, hex(digest), topic, partition, offset FROM {self._db}.batches "
            "WHERE producer_id = {p:String} AND sequence >= {lo:UInt64} "
            "AND sequence < {hi:UInt64}",
            {"p": producer_id, "lo": low, "hi": low + LOOKUP_SPAN},
        )
        found = {
            int(seq): AcceptedBatch(bytes.fromhex(digest), topic, int(partition), int(offset))
            for seq, digest, topic, partition, offset in result.rows
        }
        head = self._chain.head(producer_id)
        top = min(low + LOOKUP_SPAN, (head.sequence + 1) if head is not None else 0)
        for seq in range(low, max(top, sequence + 1)):
            self._remember((producer_id, seq), found.get(seq))
        return found.get(sequence)

    def _remember(self, key: tuple[str, int], accepted: AcceptedBatch | None) -> None:
        self._accepted_cache[key] = accepted
        self._accepted_cache.move_to_end(key)
        while len(self._accepted_cache) > ACCEPTED_CACHE:
            self._accepted_cache.popitem(last=False)

    def _already_processed(self, message: BusMessage) -> bool:
        """True for a message written before a crash but not committed: it must not count twice.
        Its verdict still extends or ends the partition's reject streak, as it did the first
        time, so that the alerts after it fall where they would have without the crash."""
        tp = (message.topic, message.partition)
        if tp not in self._processed:
            self._load_partition(tp)
        accepted = self._processed[tp].get(message.offset)
        if accepted is None:
            return False
        self._streaks[tp].settle(message.offset, accepted)
        return True

    def _load_partition(self, tp: tuple[str, int]) -> None:
        """What the store holds of a partition from its committed position on, and the reject
        streak the messages before that position left (read once per partition per start)."""
        start = self._events.committed(*tp) or 0
        params = {"t": tp[0], "p": tp[1], "o": start}
        here = "topic = {t:String} AND partition = {p:UInt32}"
        result = self._store.query(
            f"SELECT offset, 1 FROM {self._db}.batches WHERE {here} AND offset >= {{o:UInt64}} "
            f"UNION ALL SELECT offset, 0 FROM {self._db}.quarantine "
            f"WHERE {here} AND offset >= {{o:UInt64}}",
            params,
        )
        self._processed[tp] = {int(o): bool(int(a)) for o, a in result.rows}
        # The run before ``start``: the refused messages after the last accepted one.
        last = self._store.query(
            f"SELECT count(), max(offset) FROM {self._db}.batches "
            f"WHERE {here} AND offset < {{o:UInt64}}",
            params,
        ).rows[0]
        after = int(last[1]) + 1 if int(last[0]) else 0
        run = self._store.query(
            f"SELECT count(), min(offset) FROM {self._db}.quarantine "
            f"WHERE {here} AND offset >= {{a:UInt64}} AND offset < {{o:UInt64}}",
            {**params, "a": after},
        ).rows[0]
        self._streaks[tp] = RejectStreak(int(run[0]), int(run[1]) if int(run[0]) else 0)

    # -- the loop ----------------------------------------------------------------------------

    def run_once(self, max_messages: int = 200, timeout_s: float = 0.0) -> MaterialiseStats:
        """Read and settle one poll's worth of messages; returns what this poll did."""
        step = MaterialiseStats()
        self._settle_keys(step)
        messages = self._events.poll(max_messages=max_messages, timeout_s=timeout_s)
        if _assignment_changed(self._events):
            # Another materialiser may have advanced these partitions' chains meanwhile.
            self._chain = ChainTracker(self._load_heads(), self._accepted_batch)
            self._verifier = BatchVerifier(self._catalogue, self._keyring, self._chain)
            self._processed.clear()
            self._streaks.clear()
            self._accepted_cache.clear()
            if self._checkpointer is not None:
                self._checkpointer.forget()
        write = PollWrite()
        self._poll = write
        keys_reread = False
        if self._ingest is not None and messages:
            write.engine = (self._ingest, self._ingest.check(messages, self._catalogue))
        for index, message in enumerate(messages):
            if self._already_processed(message):
                # Its rows and its chain step are already in the store (read back at start-up).
                step.redelivered_skipped += 1
                continue
            engine_checked = write.engine is not None and write.engine[1].is_checked(index)
            decoded = write.engine[1].decoded.get(index) if write.engine is not None else None
            verdict = self._verifier.verify(message, engine_checked=engine_checked, decoded=decoded)
            if verdict.reason == "unknown_key" and not keys_reread:
                # A producer registers its key before its first batch, but on another topic:
                # read the registry to its end before calling the key unknown. Once per poll
                # is enough (a key registered before any batch of this poll was published is
                # then read), and keeps a flood of unknown keys from polling the registry per
                # message.
                keys_reread = True
                self._settle_keys(step)
                verdict = self._verifier.verify(
                    message, engine_checked=engine_checked, decoded=decoded
                )
            streak = self._streaks[(message.topic, message.partition)]
            flooding = 0 < self._alert_streak <= streak.count
            self._settle(message, verdict, step, write, index, quiet=flooding)
            if verdict.accepted and flooding:
                log.warning(
                    "reject flood on %s/%s ended at offset %s: %s messages in a row were "
                    "refused from offset %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    streak.count,
                    streak.first_offset,
                )
            streak.settle(message.offset, verdict.accepted)
            crossed = self._alert_streak > 0 and not verdict.accepted
            if crossed and streak.count % self._alert_streak == 0:
                self._alert(message, streak, step, write)
                if self._stop_on_flood:
                    # What was written is committed; then stop, as the operator asked.
                    self._write(write)
                    self._events.commit(_next_positions(messages[: index + 1]))
                    self.stats.add(step)
                    self.checkpoint(force=True)
                    raise MaterialiserHalted(
                        f"{streak.count} messages in a row failed verification (the last: "
                        f"{verdict.reason} at {message.topic}/{message.partition}/"
                        f"{message.offset}); stopped as on_reject_flood is 'stop': check "
                        "the producers' keys and deployment, then start again"
                    )
        if messages:
            self._write(write)
            if self._before_commit is not None:
                self._before_commit()
            self._events.commit(_next_positions(messages))
        self.stats.add(step)
        self.checkpoint()
        return step

    def _alert(
        self, message: BusMessage, streak: RejectStreak, step: MaterialiseStats, write: PollWrite
    ) -> None:
        """One ``reject_flood`` alert: the row at the position that completed the run (derived
        from bus positions and times only, so a replay writes the same row), a count, a line."""
        detail = (
            f"{streak.count} messages in a row refused on {message.topic}/{message.partition}, "
            f"offsets {streak.first_offset}..{message.offset}"
        )
        write.rows(CHAIN_FINDINGS).append(
            {
                "producer_id": FLOOD_PRODUCER,
                "kind": FLOOD_KIND,
                "expected_sequence": None,
                "got_sequence": 0,  # a flood names no sequence; the run is in ``detail``
                "detail": detail,
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "received_at": us_to_datetime(message.timestamp_us),
            }
        )
        step.reject_floods += 1
        if streak.count == self._alert_streak:
            log.warning(
                "reject flood: %s; quarantining goes on%s",
                detail,
                "" if not self._stop_on_flood else ", but on_reject_flood is 'stop'",
            )
        else:
            log.info("reject flood goes on: %s", detail)

    def _write(self, write: PollWrite) -> None:
        """The poll's rows into the store, then its batches into the partition trees."""
        write.flush(self._store)
        self._poll = PollWrite()
        for key, accepted in write.accepted.items():  # in the store now: remember them
            self._remember(key, accepted)
        if write.holds_changed:
            # Retention consults the dictionary: a new hold must protect its rows now.
            self._store.command(f"SYSTEM RELOAD DICTIONARY {self._db}.{ACTIVE_HOLDS}")
        if self._checkpointer is not None:
            for topic, partition, offset, digest in write.tree_leaves:
                self._checkpointer.accepted(topic, partition, offset, digest)
            for topic, partition, offset in write.settled:
                self._checkpointer.settled(topic, partition, offset)

    def checkpoint(self, *, force: bool = False) -> int:
        """Sign checkpoints of the partitions that grew (see :class:`Checkpointer`); every
        ``checkpoint_interval_s``, or now with ``force``. Returns how many were written."""
        if self._checkpointer is None:
            return 0
        return self._checkpointer.checkpoint(force=force)

    def run_until_idle(
        self,
        progress: Callable[[MaterialiseStats], None] | None = None,
        *,
        patience_s: float = 30.0,
    ) -> MaterialiseStats:
        """Process everything on the bus now, then return the totals.

        Idle means a poll brought nothing and the reader has read to the end of its partitions;
        a reader in a consumer group that has no partitions yet (or at all) is given
        ``patience_s`` of quiet before the materialiser stops waiting.
        """
        total = MaterialiseStats()
        wait_s = float(getattr(self._events, "idle_poll_timeout_s", 0.0))
        caught_up = getattr(self._events, "caught_up", None)
        quiet_since: float | None = None
        while True:
            step = self.run_once(timeout_s=wait_s)
            total.add(step)
            if progress is not None:
                progress(total)
            if step != MaterialiseStats():
                quiet_since = None
                continue
            if caught_up is None or caught_up():
                self.checkpoint(force=True)
                return total
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > patience_s:
                self.checkpoint(force=True)
                return total

    def _settle_keys(self, step: MaterialiseStats) -> None:
        while True:
            messages = self._keys.poll(max_messages=500)
            if not messages:
                return
            for message in messages:
                position = _position(message)
                try:
                    reg = self._keyring.admit(message.value)
                except KeyRejected as exc:
                    self._quarantine(message, exc.reason, exc.detail, None, step)
                    continue
                self._store.insert(KEYS, [_key_row(reg)], token=position.token(KEYS))
                step.keys_registered += 1

    def _settle(
        self,
        message: BusMessage,
        verdict: Verdict,
        step: MaterialiseStats,
        write: PollWrite,
        index: int,
        *,
        quiet: bool = False,
    ) -> None:
        """``quiet``: the message is part of a reject flood already alerted on, so its
        quarantine is logged at debug level rather than one warning per message."""
        position = _position(message)
        batch = verdict.batch
        if self._checkpointer is not None:
            self._checkpointer.touch(message.topic, message.partition)
        write.positions.append(position)
        if verdict.accepted and batch is not None:
            engine_keys: list[str] = []
            engine_decoded = sum(1 for event in verdict.events if event.record is None)
            if engine_decoded:
                assert write.engine is not None  # only an engine-checked message has such events
                engine_keys = write.engine[1].checked[index]
                write.engine_accepted.append(index)
                step.engine_decoded += engine_decoded
            write.add(batch_rows(batch, verdict.events, position, engine_keys))
            write.accepted[(batch.producer_id, batch.sequence)] = AcceptedBatch(
                batch.digest, message.topic, message.partition, message.offset
            )
            self._chain.advance(batch)
            write.tree_leaves.append(
                (message.topic, message.partition, message.offset, batch.digest)
            )
            step.batches_accepted += 1
            step.events_materialised += len(batch.events)
            return
        chain = verdict.chain
        if chain is not None and not chain.ok and batch is not None:
            finding = {
                "producer_id": batch.producer_id,
                "kind": chain.kind,
                "expected_sequence": chain.expected_sequence,
                "got_sequence": batch.sequence,
                "detail": chain.detail,
                "topic": position.topic,
                "partition": position.partition,
                "offset": position.offset,
                "received_at": us_to_datetime(position.timestamp_us),
            }
            write.rows(CHAIN_FINDINGS).append(finding)
            step.chain_findings += 1
        write.rows(QUARANTINE).append(
            self._quarantine_row(
                message, verdict.reason or "rejected", verdict.detail, verdict, quiet=quiet
            )
        )
        step.messages_quarantined += 1
        step.events_quarantined += len(batch.events) if batch else 0
        write.settled.append((message.topic, message.partition, message.offset))

    def _quarantine(
        self,
        message: BusMessage,
        reason: str,
        detail: str,
        verdict: Verdict | None,
        step: MaterialiseStats,
    ) -> None:
        position = _position(message)
        row = self._quarantine_row(message, reason, detail, verdict)
        self._store.insert(QUARANTINE, [row], token=position.token(QUARANTINE))
        step.messages_quarantined += 1

    def _quarantine_row(
        self,
        message: BusMessage,
        reason: str,
        detail: str,
        verdict: Verdict | None,
        *,
        quiet: bool = False,
    ) -> dict[str, Any]:
        batch = verdict.batch if verdict is not None else None
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "quarantined %s/%s/%s: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
            detail,
        )
        return {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "received_at": us_to_datetime(message.timestamp_us),
            "reason": reason,
            "detail": detail,
            "producer_id": batch.producer_id if batch else None,
            "key_id": batch.key_id if batch else None,
            "sequence": batch.sequence if batch else None,
            "digest": batch.digest if batch else None,
            # Kept for stores written when a chain finding moved the head; none does now.
            "advances_chain": False,
            "message": message.value,
        }


def _assignment_changed(reader: BusReader) -> bool:
    """Readers in a consumer group (Kafka) say when their partitions changed; others never do."""
    take = getattr(reader, "take_assignment_change", None)
    return bool(take()) if take is not None else False


def _position(message: BusMessage) -> BusPosition:
    return BusPosition(message.topic, message.partition, message.offset, message.timestamp_us)


def _next_positions(messages: list[BusMessage]) -> dict[tuple[str, int], int]:
    positions: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic, m.partition)
        positions[key] = max(positions.get(key, 0), m.offset + 1)
    return positions


def _key_row(reg: KeyRegistration) -> dict[str, Any]:
    def opt(us: int | None) -> Any:
        return None if us is None else us_to_datetime(us)

    return {
        "key_id": reg.key_id,
        "producer_id": reg.producer_id,
        "public_key": reg.public_key,
        "valid_from": us_to_datetime(reg.valid_from_us),
        "valid_until": opt(reg.valid_until_us),
        "revoked_at": opt(reg.revoked_at_us),
        "registered_at": us_to_datetime(reg.registered_at_us),
        "root_key_id": reg.root_key_id,
        "signature": reg.signature,
    }
