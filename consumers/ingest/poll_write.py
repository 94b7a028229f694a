"""Everything one poll of the materialiser writes, gathered so that each table gets one insert.

One insert per table per poll, instead of one per table per message, is what lets the store keep
up: an insert has a fixed cost far above the cost of its rows. The insert token names the bus
positions of the whole poll, so redoing the same poll after a crash is absorbed; ``batches`` is
written last, as before, because its rows mark the messages whose rows are all in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aigc_audit.consumers.ingest.chain import AcceptedBatch
from aigc_audit.consumers.ingest.engine_path import GenerationIngest, PollGenerations
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.rows import BatchRows, BusPosition
from aigc_audit.consumers.store.tables import (
    BATCHES,
    CHAIN_FINDINGS,
    LEGAL_HOLDS,
    QUARANTINE,
    Table,
)


@dataclass
class PollWrite:
    positions: list[BusPosition] = field(default_factory=list)
    accepted: dict[tuple[str, int], AcceptedBatch] = field(default_factory=dict)
    """Batches accepted in this poll, not yet in the store: the chain must see them."""
    tree_leaves: list[tuple[str, int, int, bytes]] = field(default_factory=list)
    """(topic, partition, offset, digest) of each accepted batch, for the checkpointer."""
    settled: list[tuple[str, int, int]] = field(default_factory=list)
    """Quarantined positions, for the checkpointer."""
    engine: tuple[GenerationIngest, PollGenerations] | None = None
    """The poll's generation events as written for the store's engine, if it decodes them."""
    engine_accepted: list[int] = field(default_factory=list)
    """Indexes (in the poll) of accepted messages whose generation events the engine inserts."""
    _tables: dict[str, tuple[Table, list[dict[str, Any]]]] = field(default_factory=dict)

    def rows(self, table: Table) -> list[dict[str, Any]]:
        return self._tables.setdefault(table.name, (table, []))[1]

    def add(self, rows: BatchRows) -> None:
        for table, table_rows in rows.by_table.values():
            self.rows(table).extend(table_rows)

    @property
    def holds_changed(self) -> bool:
        return bool(self._tables.get(LEGAL_HOLDS.name, (None, []))[1])

    def token(self, table: Table) -> str:
        """The insert token of this poll's rows in ``table``: every partition's offset range."""
        return f"{self._ranges()}/{table.name}"

    def _ranges(self) -> str:
        ranges: dict[tuple[str, int], list[int]] = {}
        for p in self.positions:
            span = ranges.setdefault((p.topic, p.partition), [p.offset, p.offset])
            span[0], span[1] = min(span[0], p.offset), max(span[1], p.offset)
        return ",".join(f"{t}/{n}/{a}-{b}" for (t, n), (a, b) in sorted(ranges.items()))

    def _in_order(self) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
        # Findings before quarantine, typed tables before ``events``, ``batches`` last.
        last = (CHAIN_FINDINGS.name, QUARANTINE.name, "events", BATCHES.name)
        tables = sorted(
            self._tables.values(),
            key=lambda item: last.index(item[0].name) if item[0].name in last else -1,
        )
        yield from tables

    def flush(self, store: Store) -> None:
        """One insert per table, in the order that keeps a crash repairable (the engine's
        generation rows and their ``events`` rows first, ``batches`` last)."""
        try:
            if self.engine is not None:
                ingest, generations = self.engine
                ingest.insert(generations, self.engine_accepted, self._ranges())
            for table, rows in self._in_order():
                if rows:
                    store.insert(table, rows, token=self.token(table))
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the poll's file for the engine (written again if the poll is redone)."""
        if self.engine is not None:
            self.engine[1].discard()
