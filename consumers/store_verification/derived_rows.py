"""Steps 3 and 4: events prove against their batch roots, and every row derived from them is
exactly the row the materialiser would write."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aigc_audit.consumers.store.rows import BusPosition, DecodedEvent, batch_rows
from aigc_audit.consumers.store.tables import BATCHES, EVENTS, FAMILY_TABLES, LEGAL_HOLDS, Table
from aigc_audit.consumers.store_verification.canonical import (
    actual_row,
    canonical,
    canonical_select,
)
from aigc_audit.consumers.store_verification.ledger import StoredBatch, VerifierBase
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.merkle import leaf_hash, root_from_leaf_hashes

DERIVED_TABLES: tuple[Table, ...] = (EVENTS, *FAMILY_TABLES.values(), LEGAL_HOLDS)
CHUNK_EVENTS = 50_000


class DerivedRows(VerifierBase):
    # 3 and 4. events and every row derived from them -----------------------------------------

    def _chunks(self) -> list[tuple[str, int, int]]:
        by_producer: dict[str, list[StoredBatch]] = defaultdict(list)
        for batch in self._batches.values():
            by_producer[batch.head.producer_id].append(batch)
        chunks = []
        for producer, batches in sorted(by_producer.items()):
            batches.sort(key=lambda b: b.head.sequence)
            group: list[StoredBatch] = []
            for batch in batches:
                if group and sum(b.head.event_count for b in group) + batch.head.event_count > (
                    CHUNK_EVENTS
                ):
                    chunks.append((producer, group[0].head.sequence, group[-1].head.sequence))
                    group = []
                group.append(batch)
            chunks.append((producer, group[0].head.sequence, group[-1].head.sequence))
        return chunks

    def _verify_events_and_rows(self) -> None:
        before = len(self.result.findings)
        proven_events = 0
        compared: dict[str, int] = defaultdict(int)
        for producer, first, last in self._chunks():
            proven_events += self._verify_chunk(producer, first, last, compared)
            self._progress("events", proven_events)
        self._orphans()
        self.result.counts["events"] = proven_events
        self._check(
            "3-4. events and derived rows",
            before,
            f"{proven_events} events prove against their batches' signed roots; rows compared: "
            + ", ".join(f"{t} {n}" for t, n in sorted(compared.items())),
        )

    def _verify_chunk(self, producer: str, first: int, last: int, compared: dict[str, int]) -> int:
        params = {"p": producer, "a": first, "b": last}
        in_chunk = "producer_id = {p:String} AND batch_sequence BETWEEN {a:UInt64} AND {b:UInt64}"
        event_rows = self._store.query(
            f"SELECT batch_sequence, leaf_index, toString(event_id), lower(hex(leaf_hash)), "
            f"base64Encode(event_bytes) FROM {self._db}.events WHERE {in_chunk}",
            params,
        ).rows
        leaves: dict[int, dict[int, set[tuple[str, bytes]]]] = defaultdict(lambda: defaultdict(set))
        self._event_partition = {}
        for seq, index, event_id, stored_leaf, raw in event_rows:
            data = base64.b64decode(raw)
            batch = self._batches.get((producer, int(seq)))
            if batch is not None:
                self._event_partition[event_id] = batch.where
            if leaf_hash(data).hex() != stored_leaf:
                self._find(
                    "events",
                    "altered",
                    batch.where if batch else None,
                    event_id,
                    f"its bytes no longer hash to its leaf hash ({producer}#{seq} leaf {index})",
                )
            leaves[int(seq)][int(index)].add((event_id, data))

        expected: dict[str, dict[Any, tuple[Any, ...]]] = defaultdict(dict)
        unproven: set[str] = set()
        proven = 0
        for (p, seq), batch in self._batches.items():
            if p != producer or not first <= seq <= last:
                continue
            events = self._prove(batch, leaves.get(seq, {}))
            if events is None:
                unproven.update(e for slot in leaves.get(seq, {}).values() for e, _ in slot)
                continue
            proven += len(events)
            self._expect(batch, events, expected)

        for table in (*DERIVED_TABLES, BATCHES):
            self._compare(table, params, in_chunk, expected[table.name], unproven)
            compared[table.name] += len(expected[table.name])
        return proven

    def _prove(
        self, batch: StoredBatch, slots: Mapping[int, set[tuple[str, bytes]]]
    ) -> list[bytes] | None:
        """The batch's event bytes if its rows prove against the signed root, else None."""
        count = batch.head.event_count
        missing = [i for i in range(count) if i not in slots]
        for index in missing:
            self._find(
                "events", "deleted", batch.where, None, f"{batch.name} leaf {index} has no row"
            )
        extra = sorted(i for i in slots if i >= count)
        for index in extra:
            for event_id, _ in slots[index]:
                self._find(
                    "events",
                    "inserted",
                    batch.where,
                    event_id,
                    f"{batch.name} has {count} events; this row claims leaf {index}",
                )
        ambiguous = [i for i in range(count) if len({d for _, d in slots.get(i, ())}) > 1]
        for index in ambiguous:
            for event_id, _ in slots[index]:
                self._find(
                    "events",
                    "altered",
                    batch.where,
                    event_id,
                    f"{batch.name} leaf {index} has rows with different bytes",
                )
        if missing or extra or ambiguous or not batch.proven:
            return None
        events = [next(iter(slots[i]))[1] for i in range(count)]
        if root_from_leaf_hashes([leaf_hash(e) for e in events]) != batch.head.merkle_root:
            ids = ", ".join(sorted(e for i in range(count) for e, _ in slots[i]))
            self._find(
                "events",
                "altered",
                batch.where,
                None,
                f"{batch.name}: its event rows no longer hash to its signed root (one of: {ids})",
            )
            batch.proven = False
            return None
        return events

    def _expect(
        self,
        batch: StoredBatch,
        events: list[bytes],
        expected: dict[str, dict[Any, tuple[Any, ...]]],
    ) -> None:
        decoded = []
        for raw in events:
            schema, record = self._catalogue.decode(raw, logical_types=False)
            decoded.append(DecodedEvent(schema, raw[2:10], record, raw))
        signed = SignedBatch(
            producer_id=batch.head.producer_id,
            key_id=batch.head.key_id,
            sequence=batch.head.sequence,
            prev_digest=batch.head.prev_digest,
            created_at_us=batch.head.created_at_us,
            events=tuple(events),
            merkle_root=batch.head.merkle_root,
            signature=batch.signature,
        )
        rows = batch_rows(
            signed, decoded, BusPosition(batch.topic, batch.partition, batch.offset, 0)
        )
        for table, table_rows in rows.by_table.values():
            for row in table_rows:
                expected[table.name][_row_key(table, row)] = canonical(table, row)

    def _compare(
        self,
        table: Table,
        params: dict[str, Any],
        in_chunk: str,
        expected: dict[Any, tuple[Any, ...]],
        unproven: set[str],
    ) -> None:
        if table is BATCHES:
            where = in_chunk.replace("batch_sequence", "sequence")
        elif table is EVENTS:
            where = in_chunk
        else:
            where = f"event_id IN (SELECT event_id FROM {self._db}.events WHERE {in_chunk})"
        rows = self._store.query(
            f"SELECT DISTINCT {canonical_select(table)} FROM {self._db}.{table.name} WHERE {where}",
            params,
        ).rows
        names = table.column_names
        actual: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for values in rows:
            row = actual_row(values)
            actual[_row_key(table, dict(zip(names, row, strict=True)))].append(row)
        for key, got in actual.items():
            event_id = key if isinstance(key, str) else None
            partition = self._partition_of(table, key, got[0])
            want = expected.get(key)
            if want is None:
                if event_id in unproven:
                    self._find(
                        table.name,
                        "unproven",
                        partition,
                        event_id,
                        "its event is in a batch that no longer proves",
                    )
                else:
                    self._find(
                        table.name,
                        "inserted",
                        partition,
                        event_id,
                        "no verified event gives this row",
                    )
                continue
            for row in got:
                if row != want:
                    columns = [n for n, a, b in zip(names, row, want, strict=True) if a != b]
                    self._find(
                        table.name,
                        "altered",
                        partition,
                        event_id,
                        f"columns differ from the signed event: {', '.join(columns)}",
                    )
        for key in expected.keys() - actual.keys():
            event_id = key if isinstance(key, str) else None
            if table is LEGAL_HOLDS and self._superseded_hold(expected[key]):
                continue
            partition = self._partition_of(table, key, None)
            what = "" if event_id else f"batch {key[0]}#{key[1]}: "
            self._find(
                table.name,
                "deleted",
                partition,
                event_id,
                f"{what}the row a verified event gives is missing",
            )

    def _superseded_hold(self, row: tuple[Any, ...]) -> bool:
        """A hold's older state is merged away by its newer one (ReplacingMergeTree by key)."""
        values = dict(zip(LEGAL_HOLDS.column_names, row, strict=True))
        newer = self._store.query(
            f"SELECT count() FROM {self._db}.{LEGAL_HOLDS.name} WHERE hold_key = {{k:String}} "
            "AND occurred_at > {t:DateTime64(6, 'UTC')}",
            {
                "k": values["hold_key"],
                "t": datetime.fromisoformat(values["occurred_at"] + "+00:00"),
            },
        ).rows
        return int(newer[0][0]) > 0

    def _partition_of(self, table: Table, key: Any, row: tuple[Any, ...] | None) -> str | None:
        if isinstance(key, tuple):
            batch = self._batches.get(key)
            return batch.where if batch else None
        return self._event_partition.get(key)

    def _orphans(self) -> None:
        """Rows whose event (or batch) the store does not hold at all."""
        rows = self._store.query(
            f"SELECT toString(event_id), producer_id, batch_sequence FROM {self._db}.events "
            f"WHERE (producer_id, batch_sequence) NOT IN "
            f"(SELECT producer_id, sequence FROM {self._db}.batches)"
        ).rows
        for event_id, producer, seq in rows:
            self._find(
                "events",
                "inserted",
                None,
                event_id,
                f"claims batch {producer}#{seq}, which the store does not hold",
            )
        for table in (*FAMILY_TABLES.values(), LEGAL_HOLDS):
            orphans = self._store.query(
                f"SELECT DISTINCT toString(event_id) FROM {self._db}.{table.name} "
                f"WHERE event_id NOT IN (SELECT event_id FROM {self._db}.events)"
            ).rows
            for (event_id,) in orphans:
                self._find(
                    table.name,
                    "inserted",
                    None,
                    event_id,
                    "no event row in the store gives it (or that row was deleted)",
                )


def _row_key(table: Table, row: Mapping[str, Any]) -> Any:
    if table is BATCHES:
        return (row["producer_id"], int(row["sequence"]))
    return str(row["event_id"])
