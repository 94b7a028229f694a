"""``aigc-audit verify --store``: prove the store still holds what the materialiser wrote.

Everything is recomputed from the store and the root public key alone; nothing the store says
about itself is taken on trust. The steps, in order:

1. Keys: every registration verifies under the root key.
2. Batches: each row's signed head verifies under its producer's registered key, and its
   ``digest`` column is the digest of that head.
3. Events: each batch's event rows, by leaf index, hash to the batch's signed Merkle root.
4. Derived rows: the rows of ``events``, ``batches``, the typed tables and ``legal_holds`` are
   exactly the rows the proven events give (:func:`consumers.rows.batch_rows`), so a row
   altered, deleted or inserted in any of them is named by table, event id and partition.
5. Checkpoints: each is signed by a checkpoint key the root registered, and its root is the
   root of the partition's tree recomputed from the batch rows.
6. Bus positions: every offset a checkpoint accounts for is in ``batches`` or ``quarantine``
   exactly once, so a deleted quarantine row is found too.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from consumers.checkpoints.note import CheckpointError, open_checkpoint
from consumers.key_registry import CHECKPOINT_KEY_OWNER, PLATFORM_KEY_PREFIX
from consumers.rows import BusPosition, DecodedEvent, batch_rows
from consumers.store.base import Store
from consumers.store.tables import BATCHES, EVENTS, FAMILY_TABLES, LEGAL_HOLDS, Table
from producers.batch import SignedBatch
from producers.codec import SchemaCatalogue, default_catalogue
from producers.errors import AuditError
from producers.merkle import leaf_hash, root_from_leaf_hashes
from producers.signing import (
    BatchHead,
    KeyRegistration,
    batch_digest,
    batch_signing_input,
    verify_registration,
    verify_signature,
)

Kind = Literal["altered", "deleted", "inserted", "unproven", "forged"]
DERIVED_TABLES: tuple[Table, ...] = (EVENTS, *FAMILY_TABLES.values(), LEGAL_HOLDS)
CHUNK_EVENTS = 50_000


@dataclass(frozen=True)
class Finding:
    """One thing the store holds that the materialiser did not write (or lost)."""

    table: str
    kind: Kind
    partition: str | None
    event_id: str | None
    detail: str

    def line(self) -> str:
        where = f" partition {self.partition}" if self.partition else ""
        event = f" event {self.event_id}" if self.event_id else ""
        return f"{self.table}: {self.kind}{where}{event}: {self.detail}"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class StoreVerification:
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not self.findings


@dataclass
class _Batch:
    head: BatchHead
    signature: bytes
    digest: bytes
    topic: str
    partition: int
    offset: int
    proven: bool = True

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}"

    @property
    def name(self) -> str:
        return f"{self.head.producer_id}#{self.head.sequence}"


def _us(value: Any) -> int | None:
    return None if value is None else int(value)


# -- canonical row values: the store's JSON text and Python's row values, made comparable ------


def canonical_select(table: Table) -> str:
    """A SELECT list that reads every column of ``table`` in a form :func:`canonical` matches."""
    exprs = []
    for name, ctype in table.columns:
        if name in table.binary_columns:
            inner = f"lower(hex(`{name}`))" if "FixedString" in ctype else f"base64Encode(`{name}`)"
        elif "UUID" in ctype:
            inner = f"toString(`{name}`)"
        else:
            inner = f"`{name}`"
        exprs.append(inner)
    return ", ".join(exprs)


_FIXED = re.compile(r"FixedString\((\d+)\)")


def canonical(table: Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row as built by :mod:`consumers.rows`, in the form :func:`canonical_select` reads."""
    binary = table.binary_columns
    out = []
    for name, ctype in table.columns:
        value = row.get(name)
        if value is None:
            out.append(None if ctype.startswith("Nullable(") else _default(ctype))
        elif name in binary:
            raw = bytes(value)
            fixed = _FIXED.search(ctype)
            if fixed:
                out.append(raw.ljust(int(fixed.group(1)), b"\0").hex())
            else:
                out.append(base64.b64encode(raw).decode("ascii"))
        elif "DateTime64" in ctype:
            out.append(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        elif "Array" in ctype:
            out.append(tuple(value))
        elif "Bool" in ctype:
            out.append(bool(value))
        elif "Float" in ctype:
            out.append(float(value))
        elif "Int" in ctype:
            out.append(int(value))
        else:
            out.append(str(value))
    return tuple(out)


def _default(ctype: str) -> Any:
    if "Array" in ctype:
        return ()
    if "DateTime64" in ctype:
        return "1970-01-01 00:00:00.000000"
    if "Bool" in ctype:
        return False
    if "Int" in ctype or "Float" in ctype:
        return 0
    if "UUID" in ctype:
        return "00000000-0000-0000-0000-000000000000"
    return ""


def _actual(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


class StoreVerifier:
    def __init__(
        self,
        store: Store,
        root_public_key: bytes,
        *,
        catalogue: SchemaCatalogue | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        self._store = store
        self._db = store.database
        self._root = root_public_key
        self._catalogue = catalogue or default_catalogue()
        self._progress = progress or (lambda _step, _n: None)
        self.result = StoreVerification()
        self._keys: dict[str, KeyRegistration] = {}
        self._batches: dict[tuple[str, int], _Batch] = {}
        self._by_position: dict[tuple[str, int], list[_Batch]] = defaultdict(list)
        self._event_partition: dict[str, str] = {}

    def _find(
        self, table: str, kind: Kind, partition: str | None, event_id: str | None, detail: str
    ) -> None:
        self.result.findings.append(Finding(table, kind, partition, event_id, detail))

    def _check(self, name: str, before: int, detail: str) -> None:
        found = len(self.result.findings) - before
        ok = found == 0
        text = detail if ok else f"{found} finding(s); {detail}"
        self.result.checks.append(Check(name, ok, text))

    def run(self) -> StoreVerification:
        for step in (
            self._verify_keys,
            self._verify_batches,
            self._verify_events_and_rows,
            self._verify_checkpoints,
        ):
            step()
        return self.result

    # 1. keys ---------------------------------------------------------------------------------

    def _verify_keys(self) -> None:
        before = len(self.result.findings)
        rows = self._store.query(
            "SELECT key_id, producer_id, hex(public_key), toUnixTimestamp64Micro(valid_from), "
            "toUnixTimestamp64Micro(valid_until), toUnixTimestamp64Micro(revoked_at), "
            "toUnixTimestamp64Micro(registered_at), root_key_id, hex(signature) "
            f"FROM {self._db}.keys"
        ).rows
        for key_id, producer, pub, vf, vu, rv, reg_at, root_id, sig in rows:
            reg = KeyRegistration(
                key_id=key_id,
                producer_id=producer,
                public_key=bytes.fromhex(pub),
                valid_from_us=int(vf),
                valid_until_us=_us(vu),
                revoked_at_us=_us(rv),
                registered_at_us=int(reg_at),
                root_key_id=root_id,
                signature=bytes.fromhex(sig),
            )
            try:
                verify_registration(self._root, reg)
            except (AuditError, ValueError) as exc:
                self._find("keys", "altered", None, None, f"key {key_id} ({producer}): {exc}")
                continue
            held = self._keys.get(key_id)
            if held is None or reg.registered_at_us >= held.registered_at_us:
                self._keys[key_id] = reg
        self.result.counts["keys"] = len(rows)
        self._check("1. keys", before, f"{len(rows)} registrations verify under the root key")

    # 2. batches ------------------------------------------------------------------------------

    def _verify_batches(self) -> None:
        before = len(self.result.findings)
        rows = self._store.query(
            "SELECT DISTINCT producer_id, sequence, key_id, hex(prev_digest), hex(digest), "
            "toUnixTimestamp64Micro(created_at), event_count, hex(merkle_root), hex(signature), "
            f"topic, partition, offset FROM {self._db}.batches ORDER BY topic, partition, offset"
        ).rows
        for producer, seq, key_id, prev, dig, created, count, root, sig, topic, part, off in rows:
            head = BatchHead(
                producer_id=producer,
                key_id=key_id,
                sequence=int(seq),
                prev_digest=bytes.fromhex(prev),
                created_at_us=int(created),
                event_count=int(count),
                merkle_root=bytes.fromhex(root),
            )
            batch = _Batch(head, bytes.fromhex(sig), batch_digest(head), topic, int(part), int(off))
            problem = self._batch_problem(batch, bytes.fromhex(dig))
            if problem:
                batch.proven = False
                self._find("batches", "altered", batch.where, None, f"{batch.name}: {problem}")
            key = (producer, int(seq))
            if key in self._batches:
                other = self._batches[key]
                self._find(
                    "batches",
                    "inserted",
                    batch.where,
                    None,
                    f"{batch.name} has two different rows (offsets {other.offset} and {off})",
                )
                other.proven = batch.proven = False
            self._batches[key] = batch
            self._by_position[(topic, int(part))].append(batch)
        self.result.counts["batches"] = len(rows)
        self._check("2. batches", before, f"{len(rows)} batch heads signed by registered keys")

    def _batch_problem(self, batch: _Batch, stored_digest: bytes) -> str | None:
        reg = self._keys.get(batch.head.key_id)
        if reg is None:
            return f"signed by key {batch.head.key_id}, which the root never registered"
        if reg.producer_id != batch.head.producer_id or reg.producer_id.startswith(
            PLATFORM_KEY_PREFIX
        ):
            return f"key {reg.key_id} belongs to {reg.producer_id}"
        valid, why = reg.is_valid_at(batch.head.created_at_us)
        if not valid:
            return f"key {reg.key_id} was not valid at the batch's time ({why})"
        try:
            verify_signature(reg.public_key, batch_signing_input(batch.head), batch.signature)
        except (AuditError, ValueError):
            return "the signature does not hold over the row's head"
        if stored_digest != batch.digest:
            return "the digest column is not the digest of the signed head"
        return None

    # 3 and 4. events and every row derived from them -----------------------------------------

    def _chunks(self) -> list[tuple[str, int, int]]:
        by_producer: dict[str, list[_Batch]] = defaultdict(list)
        for batch in self._batches.values():
            by_producer[batch.head.producer_id].append(batch)
        chunks = []
        for producer, batches in sorted(by_producer.items()):
            batches.sort(key=lambda b: b.head.sequence)
            group: list[_Batch] = []
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
        self, batch: _Batch, slots: Mapping[int, set[tuple[str, bytes]]]
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
        self, batch: _Batch, events: list[bytes], expected: dict[str, dict[Any, tuple[Any, ...]]]
    ) -> None:
        decoded = []
        for raw in events:
            schema, record = self._catalogue.decode(raw)
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
            row = _actual(values)
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

    # 5 and 6. checkpoints and bus positions --------------------------------------------------

    def _verify_checkpoints(self) -> None:
        before = len(self.result.findings)
        signers = [
            reg.public_key for reg in self._keys.values() if reg.producer_id == CHECKPOINT_KEY_OWNER
        ]
        rows = self._store.query(
            "SELECT topic, partition, tree_size, lower(hex(root_hash)), next_offset, origin, note "
            f"FROM {self._db}.checkpoints ORDER BY topic, partition, tree_size, next_offset"
        ).rows
        latest: dict[tuple[str, int], int] = {}
        for topic, part, size, root, next_offset, origin, note in rows:
            where = f"{topic}/{part}"
            try:
                checkpoint, _ = open_checkpoint(note, signers)
            except CheckpointError as exc:
                self._find("checkpoints", "forged", where, None, str(exc))
                continue
            row_says = (origin, int(size), root, int(next_offset))
            note_says = (
                checkpoint.origin,
                checkpoint.tree_size,
                checkpoint.root_hash.hex(),
                checkpoint.next_offset,
            )
            if row_says != note_says:
                self._find(
                    "checkpoints",
                    "altered",
                    where,
                    None,
                    f"the row at size {size} does not match its signed note",
                )
            batches = sorted(self._by_position.get((topic, int(part)), []), key=lambda b: b.offset)
            leaves = [leaf_hash(b.digest) for b in batches]
            if checkpoint.tree_size > len(leaves):
                self._find(
                    "batches",
                    "deleted",
                    where,
                    None,
                    f"the checkpoint at size {checkpoint.tree_size} counts "
                    f"{checkpoint.tree_size - len(leaves)} more batches than the store holds",
                )
            elif root_from_leaf_hashes(leaves[: checkpoint.tree_size]) != checkpoint.root_hash:
                self._find(
                    "batches",
                    "altered",
                    where,
                    None,
                    f"the partition's first {checkpoint.tree_size} batches no longer hash to "
                    "the signed checkpoint root (a batch row was altered, moved or inserted)",
                )
            key = (topic, int(part))
            latest[key] = max(latest.get(key, 0), checkpoint.next_offset)
        for key in sorted(set(self._by_position) - set(latest)):
            self._find(
                "checkpoints",
                "deleted",
                f"{key[0]}/{key[1]}",
                None,
                "the partition has batches but no checkpoint",
            )
        self._verify_offsets(latest)
        self.result.counts["checkpoints"] = len(rows)
        self._check(
            "5-6. checkpoints and bus positions",
            before,
            f"{len(rows)} checkpoints of {len(latest)} partition(s) signed and matching the "
            "recomputed trees; every settled bus offset accounted for",
        )

    def _verify_offsets(self, latest: Mapping[tuple[str, int], int]) -> None:
        quarantined: dict[tuple[str, int], list[int]] = defaultdict(list)
        for topic, part, offset in self._store.query(
            f"SELECT DISTINCT topic, partition, offset FROM {self._db}.quarantine"
        ).rows:
            quarantined[(topic, int(part))].append(int(offset))
        for key, next_offset in sorted(latest.items()):
            seen: dict[int, int] = defaultdict(int)
            for batch in self._by_position.get(key, []):
                seen[batch.offset] += 1
            for offset in quarantined.get(key, []):
                seen[offset] += 1
            where = f"{key[0]}/{key[1]}"
            missing = [o for o in range(next_offset) if o not in seen]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                self._find(
                    "quarantine",
                    "deleted",
                    where,
                    None,
                    f"bus offsets settled by a checkpoint but in no table: {shown}",
                )
            twice = sorted(o for o, n in seen.items() if n > 1)
            if twice:
                self._find(
                    "quarantine",
                    "inserted",
                    where,
                    None,
                    f"bus offsets in both batches and quarantine: {twice[:10]}",
                )


def _row_key(table: Table, row: Mapping[str, Any]) -> Any:
    if table is BATCHES:
        return (row["producer_id"], int(row["sequence"]))
    return str(row["event_id"])


def verify_store(
    store: Store,
    root_public_key: bytes,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> StoreVerification:
    """Run every check on ``store`` (see the module docstring); the result lists each check and
    every finding. Read-only: it works on a served or a read-only store."""
    return StoreVerifier(store, root_public_key, progress=progress).run()
