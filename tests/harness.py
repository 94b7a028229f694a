"""A whole embedded deployment in a temporary directory, for tests that run the real pipeline.

It uses the real parts: the SQLite log, the chDB store, real keys and signatures. Helpers build
events with known content and craft bus messages the way an attacker or a broken producer would.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings, load_settings
from aigc_audit.consumers.ingest.materialiser import Materialiser, MaterialiseStats
from aigc_audit.consumers.store.base import QueryResult
from aigc_audit.producers.batch import SignedBatch, seal_batch
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.events import AuditEvent, Generation
from aigc_audit.producers.signing import GENESIS_DIGEST, SigningKey

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def generation(n: int, **overrides: Any) -> Generation:
    fields: dict[str, Any] = {
        "request_id": f"req-{n}",
        "model_name": "chat-model",
        "model_version": "1.0",
        "filing_number": "Beijing-ChatModel-202405150012",
        "modality": "text",
        "channel": "app",
        "subject": f"subject-{n % 7}",
        "input_sha256": digest(f"prompt {n}"),
        "output_sha256": digest(f"answer {n}"),
        "input_tokens": 10 + n,
        "output_tokens": 50 + n,
        "explicit_label": True,
        "safety_verdict": "passed",
        "latency_ms": 300,
        "occurred_at": T0 + timedelta(seconds=n),
    }
    fields.update(overrides)
    return Generation(**fields)


def now_us() -> int:
    return time.time_ns() // 1000


class Harness:
    """One data directory, one deployment; close() releases the store for the next test."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.settings: Settings = load_settings(environ={}, data_dir=data_dir, **settings)
        self.deployment = Deployment(self.settings)
        self.catalogue = default_catalogue()
        self._materialiser: Materialiser | None = None

    # -- producing ------------------------------------------------------------------------

    def key(self, producer_id: str) -> SigningKey:
        return self.deployment.producer_key(producer_id)

    def emit(self, producer_id: str, events: list[AuditEvent], batch_size: int = 500) -> None:
        client = self.deployment.client(producer_id.split("-")[0], producer_id)
        client._batcher._batch_size = batch_size
        for event in events:
            client.emit(event)
        client.close()

    def encode(self, event: AuditEvent, producer_id: str) -> bytes:
        record = event.to_record(service_id=producer_id.split("-")[0], producer_id=producer_id)
        return self.catalogue.encode(event.SCHEMA, record)

    def seal(
        self,
        producer_id: str,
        events: list[bytes],
        *,
        sequence: int = 0,
        prev: bytes = GENESIS_DIGEST,
        key: SigningKey | None = None,
        created_at_us: int | None = None,
    ) -> SignedBatch:
        return seal_batch(
            events,
            producer_id=producer_id,
            key=key or self.key(producer_id),
            sequence=sequence,
            prev_digest=prev,
            created_at_us=now_us() if created_at_us is None else created_at_us,
        )

    def chain(self, producer_id: str, batches_of_events: list[list[bytes]]) -> list[SignedBatch]:
        """Properly chained batches from sequence 0, not yet published."""
        out: list[SignedBatch] = []
        prev = GENESIS_DIGEST
        for seq, events in enumerate(batches_of_events):
            batch = self.seal(producer_id, events, sequence=seq, prev=prev)
            out.append(batch)
            prev = batch.digest
        return out

    def publish(self, value: bytes, key: bytes = b"p") -> None:
        self.deployment.writer.publish(self.settings.events_topic, key, value)

    def publish_batch(self, batch: SignedBatch) -> None:
        self.publish(batch.encode(self.catalogue), batch.producer_id.encode())

    # -- consuming ------------------------------------------------------------------------

    def materialiser(self, before_commit: Callable[[], None] | None = None) -> Materialiser:
        """The harness's materialiser; asking with a hook starts a new one (a restart)."""
        if self._materialiser is None or before_commit is not None:
            self._materialiser = self.deployment.materialiser(before_commit)
        return self._materialiser

    def restart_materialiser(self) -> Materialiser:
        """A new materialiser on the same store and bus, as after a process restart."""
        self._materialiser = self.deployment.materialiser()
        return self._materialiser

    def materialise(self) -> MaterialiseStats:
        return self.materialiser().run_until_idle()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        return self.deployment.store().query(sql, params)

    def count(self, table: str, where: str = "1") -> int:
        return int(self.query(f"SELECT count() FROM audit.{table} WHERE {where}").rows[0][0])

    def quarantine_reasons(self) -> list[tuple[int, str]]:
        rows = self.query("SELECT offset, reason FROM audit.quarantine ORDER BY offset").rows
        return [(int(o), r) for o, r in rows]

    def close(self) -> None:
        self._materialiser = None
        self.deployment.close()
