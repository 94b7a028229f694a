"""Generation events decoded by the store's engine instead of by Python.

Generations are nearly all of the traffic, and decoding them one by one with fastavro, then
turning each record into a row, cost the materialiser three quarters of its time (~25 µs of
~35 µs an event). The embedded store's engine reads Avro itself, ~1 µs an event: so for each
poll the materialiser writes the poll's generation events, exactly as signed, into one Avro
object container file, and the engine checks them and later inserts their rows from it.

Nothing is checked less. Every batch is still decoded, its key, signature, Merkle root over the
exact event bytes, and chain checked in Python (:mod:`consumers.ingest.verification`); only step 6,
"every event decodes and names the batch's producer", is done by the engine for generation
events written under the current schema, and it is done strictly:

- each event is framed in a wrapper record between fields we write, and followed by a 16-byte
  seal drawn at random for the poll: an event with trailing bytes, or one that ends early,
  shifts the seal, which then no longer matches;
- the file declares each ``["null", T]`` union with a third, sentinel branch
  (:mod:`consumers.ingest.engine_schema`): the engine reads a two-branch union loosely (any index
  but 1 is null to it), a three-branch one strictly, so an index fastavro would refuse is an engine
  error or a row holding the sentinel; enum indexes and booleans it checks itself;
- every string is checked to be valid UTF-8 (the engine would take any bytes; fastavro not),
  the event id to be a UUID, every time to lie in the calendar, and every integer to fit its
  store column (:mod:`consumers.ingest.logical_values`, which the Python path applies too: the
  engine reads a long as Int64 and would store -5 wrapped in a UInt64 column, 70000 in a UInt16);
- any error the engine raises (a bad boolean, enum index or union branch, a truncated body),
  any seal or UTF-8 failure, any producer mismatch, or any difference between the number of
  records read and written sends the *whole poll* down the Python path, which decodes every
  event with fastavro and quarantines the culprit with its precise reason.

The rows the engine inserts are the rows :func:`consumers.store.rows.batch_rows` would build (same
columns, same values): ``aigc-audit verify --store`` rebuilds them in Python and compares, and
the tests hold the two paths to the same rows event by event.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro

from aigc_audit.consumers.ingest.engine_schema import EngineView, strict_unions
from aigc_audit.consumers.ingest.logical_values import (
    MAX_MICROS,
    MIN_MICROS,
    LogicalChecks,
    LogicalField,
    RangeField,
)
from aigc_audit.consumers.ingest.verification import DecodedBatch
from aigc_audit.consumers.store.tables import EVENTS, GENERATIONS, Table
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.codec import HEADER_SIZE, MAGIC, SchemaCatalogue
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.events import Generation
from aigc_audit.producers.merkle import leaf_hash
from aigc_audit.producers.record_encoder import write_long
from aigc_audit.producers.transports.base import BusMessage

log = logging.getLogger(__name__)

GENERATION = Generation.SCHEMA

_HEAD = {
    "event_id": "toUUID(tupleElement(tupleElement(event, 'head'), 'event_id'))",
    "occurred_at": "fromUnixTimestamp64Micro(tupleElement(tupleElement(event, 'head'), "
    "'occurred_at'), 'UTC')",
    "service_id": "tupleElement(tupleElement(event, 'head'), 'service_id')",
    "producer_id": "tupleElement(tupleElement(event, 'head'), 'producer_id')",
    # consumers.store.rows.hold_keys: a generation answers to its subject (it has no case)
    "hold_keys": "if(tupleElement(event, 'subject') != '', "
    "[concat('subject:', tupleElement(event, 'subject'))], [])",
}
"""Columns of both tables that come from the head (or, for hold keys, the subject)."""

_LABEL = {
    "label_value": "label",
    "content_producer": "content_producer",
    "produce_id": "produce_id",
    "reserved_code1": "reserved_code1",
}
"""Generation columns read from the implicit label (null where there is none)."""


def _logical_check(view: EngineView, field: LogicalField) -> str:
    """An engine expression that holds when the value is not what its logical type says (as
    :class:`consumers.ingest.logical_values.LogicalChecks` decides in Python)."""
    expr = view.value(field.path)
    if field.kind == "uuid":
        return f"isNull(toUUIDOrNull({expr}))"
    return f"NOT ({expr} BETWEEN {MIN_MICROS} AND {MAX_MICROS})"


def _range_check(view: EngineView, field: RangeField) -> str:
    """An engine expression that holds when the integer does not fit its store column (the
    bounds :class:`consumers.ingest.logical_values.LogicalChecks` holds the Python path to; null,
    not true, where the value is null, as for the checks above)."""
    return f"NOT ({view.value(field.path)} BETWEEN {field.low} AND {field.high})"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class PollGenerations:
    """The generation events of one poll in an Avro file, and what the engine found in them."""

    path: Path | None
    checked: dict[int, list[str]] = field(default_factory=dict)
    """Message index -> the hold keys of its generation events, for every message whose
    generation events all passed (absent: the Python path decodes them)."""
    decoded: dict[int, DecodedBatch] = field(default_factory=dict)
    """Message index -> its batch and leaf hashes, as the check decoded them: the verifier
    takes them rather than decoding the same bytes twice."""

    def is_checked(self, index: int) -> bool:
        return index in self.checked

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class GenerationIngest:
    """Writes a poll's generation events for the engine, checks them, and inserts their rows.

    Only for a store whose engine can read a file of this process (the embedded store).
    """

    def __init__(self, store: Any, catalogue: SchemaCatalogue, directory: Path) -> None:
        self.store = store
        self._db = store.database
        self._fingerprint = catalogue.fingerprint(GENERATION)
        event_schema = json.loads(catalogue.canonical_form(GENERATION))
        wrapper = {
            "type": "record",
            "name": "GenerationIngest",
            "namespace": "aigc.ingest",
            "fields": [
                {"name": "msg", "type": "long"},
                {"name": "leaf", "type": "long"},
                {"name": "sequence", "type": "long"},
                {"name": "producer", "type": "string"},
                {"name": "leaf_hash", "type": {"type": "fixed", "name": "Leaf", "size": 32}},
                {"name": "raw", "type": "bytes"},
                {"name": "event", "type": strict_unions(event_schema)},
                {"name": "seal", "type": {"type": "fixed", "name": "Seal", "size": 16}},
            ],
        }
        header = io.BytesIO()
        fastavro.writer(header, fastavro.parse_schema(wrapper), [])
        self._header = header.getvalue()
        self._sync = self._header[-16:]
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.avro"):  # left by a crash mid-poll: the bus has them
            stale.unlink(missing_ok=True)
        view = self._view = EngineView(event_schema)
        self._utf8 = [f"isValidUTF8({view.value(path)})" for path in view.strings()]
        self._sentinels = view.sentinels()
        checks = LogicalChecks(catalogue)
        self._logical = [_logical_check(view, field) for field in checks.fields(GENERATION)]
        self._ranges = [_range_check(view, field) for field in checks.ranges(GENERATION)]
        self._generation_select = self._select(GENERATIONS)
        self._events_select = self._events_exprs()

    # -- SQL ---------------------------------------------------------------------------------

    def _select(self, table: Table) -> str:
        view, fields = self._view, self._view.fields()
        exprs = []
        for name, _ in table.columns:
            if name in _HEAD:
                exprs.append(_HEAD[name])
            elif name == "implicit_label":  # store.rows.generation_row: whether there is one
                exprs.append(view.present(("implicit_label",)))
            elif name in _LABEL:
                exprs.append(view.value(("implicit_label", _LABEL[name])))
            elif name in fields:
                exprs.append(view.value((name,)))
            else:
                raise ValueError(f"column {table.name}.{name} has no source in {GENERATION}")
        return ", ".join(exprs)

    def _events_exprs(self) -> str:
        head = "tupleElement(event, 'head')"
        source = {
            "event_id": _HEAD["event_id"],
            "event_type": f"toString(tupleElement({head}, 'event_type'))",
            "family": _quote(GENERATION),
            "occurred_at": _HEAD["occurred_at"],
            "service_id": _HEAD["service_id"],
            "producer_id": _HEAD["producer_id"],
            "schema_version": f"tupleElement({head}, 'schema_version')",
            "schema_fingerprint": f"unhex('{self._fingerprint.hex()}')",
            "batch_sequence": "sequence",
            "leaf_index": "leaf",
            "leaf_hash": "leaf_hash",
            "event_bytes": "raw",
            "hold_keys": _HEAD["hold_keys"],
        }
        missing = set(EVENTS.column_names) - set(source)
        if missing:
            raise ValueError(f"events columns with no source: {sorted(missing)}")
        return ", ".join(source[name] for name in EVENTS.column_names)

    # -- a poll ------------------------------------------------------------------------------

    def check(self, messages: Sequence[BusMessage], catalogue: SchemaCatalogue) -> PollGenerations:
        """Write the generation events of ``messages`` and let the engine check them.

        Messages that do not decode as batches are left to the verifier, which refuses them.
        """
        records: list[bytes] = []
        expected: dict[int, int] = {}
        decoded: dict[int, DecodedBatch] = {}
        seal = os.urandom(16)
        for index, message in enumerate(messages):
            if message.value[: len(MAGIC)] != MAGIC:
                continue
            try:
                batch = SignedBatch.decode(message.value, catalogue)
            except (AuditError, ValueError, TypeError):
                continue
            leaves = [leaf_hash(raw) for raw in batch.events]
            decoded[index] = DecodedBatch(batch, leaves)
            mine = [
                (leaf, raw)
                for leaf, raw in enumerate(batch.events)
                if raw[2:HEADER_SIZE] == self._fingerprint
            ]
            producer = batch.producer_id.encode("utf-8")
            prefix_tail = write_long(batch.sequence) + write_long(len(producer)) + producer
            msg = write_long(index)
            for leaf, raw in mine:
                records.append(
                    b"".join(
                        (
                            msg,
                            write_long(leaf),
                            prefix_tail,
                            leaves[leaf],
                            write_long(len(raw)),
                            raw,
                            raw[HEADER_SIZE:],
                            seal,
                        )
                    )
                )
            if mine:
                expected[index] = len(mine)
        if not records:
            return PollGenerations(None, decoded=decoded)
        body = b"".join(records)
        fd, name = tempfile.mkstemp(suffix=".avro", dir=self._directory)
        path = Path(name)
        with os.fdopen(fd, "wb") as out:
            out.write(self._header)
            out.write(write_long(len(records)))
            out.write(write_long(len(body)))
            out.write(body)
            out.write(self._sync)
        poll = PollGenerations(path, decoded=decoded)
        checked = self._run_check(path, seal, expected)
        if checked is None:
            return poll  # the Python path takes every message of this poll
        poll.checked = checked
        return poll

    def _run_check(
        self, path: Path, seal: bytes, expected: Mapping[int, int]
    ) -> dict[int, list[str]] | None:
        head = "tupleElement(event, 'head')"
        bad = " OR ".join(
            [
                f"seal != unhex('{seal.hex()}')",
                f"tupleElement({head}, 'producer_id') != producer",
                *self._sentinels,
                *(f"NOT {check}" for check in self._utf8),
                *self._logical,
                *self._ranges,
            ]
        )
        subject = "tupleElement(event, 'subject')"
        sql = (
            f"SELECT msg, count(), countIf({bad}), "
            f"arraySort(groupUniqArrayIf(concat('subject:', {subject}), {subject} != '')) "
            f"FROM file({_quote(str(path))}, 'Avro') GROUP BY msg"
        )
        try:
            rows = self.store.query(sql).rows
        except Exception as exc:  # the engine refused the bytes: Python finds out why
            log.info("engine check of a poll's generations failed, decoding in Python: %s", exc)
            return None
        found = {int(msg): (int(n), int(nbad), list(keys)) for msg, n, nbad, keys in rows}
        if set(found) != set(expected) or any(
            n != expected[msg] or nbad for msg, (n, nbad, _keys) in found.items()
        ):
            return None
        return {msg: keys for msg, (_n, _nbad, keys) in found.items()}

    def insert(self, poll: PollGenerations, accepted: Iterable[int], token: str) -> int:
        """Insert the rows of the accepted messages' generation events; returns how many."""
        wanted = sorted(i for i in accepted if poll.is_checked(i))
        if not wanted or poll.path is None:
            return 0
        source = f"file({_quote(str(poll.path))}, 'Avro')"
        where = f"msg IN ({', '.join(str(i) for i in wanted)})"
        for table, select in (
            (GENERATIONS, self._generation_select),
            (EVENTS, self._events_select),
        ):
            names = ", ".join(f"`{n}`" for n in table.column_names)
            # optimize_on_insert = 0: a ReplacingMergeTree otherwise merges every inserted block
            # in itself before writing it, which cost more than half of this insert (3.96 µs a
            # generation row, 1.73 without). A poll's block has no two rows of one event unless
            # a producer repeated an event id, and that row pair every reader already takes
            # (LIMIT 1 BY, DISTINCT), as it would across two inserts until a merge.
            self.store.command(
                f"INSERT INTO {self._db}.{table.name} ({names}) SELECT {select} FROM {source} "
                f"WHERE {where} SETTINGS insert_deduplication_token = "
                f"{_quote(f'{token}/{table.name}/engine-decoded')}, optimize_on_insert = 0"
            )
        return len(wanted)


def occurred_at(store: Any, poll: PollGenerations, messages: Iterable[int]) -> list[int]:
    """When (µs since the epoch) each generation event of ``messages`` in ``poll`` occurred, read
    by the engine from the poll's file: what the benchmark's latency figure needs of events
    Python never decoded."""
    wanted = sorted(i for i in messages if poll.is_checked(i))
    if not wanted or poll.path is None:
        return []
    rows = store.query(
        "SELECT tupleElement(tupleElement(event, 'head'), 'occurred_at') "
        f"FROM file({_quote(str(poll.path))}, 'Avro') "
        f"WHERE msg IN ({', '.join(str(i) for i in wanted)})"
    ).rows
    return [int(r[0]) for r in rows]


def ingest_directory(store: Any) -> Path:
    """Where a store's poll files go: beside its directory, never inside the engine's own."""
    path = Path(store.path)
    return path.with_name(f"{path.name}.ingest")


def engine_reads_files(store: Any) -> bool:
    """Whether the store's engine runs in this process and can read a file we write."""
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    return isinstance(store, EmbeddedStore)
