"""The state shared by the steps of ``verify --store``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store_verification.report import Check, Finding, Kind, StoreVerification
from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.signing import BatchHead, KeyRegistration


@dataclass
class StoredBatch:
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


def optional_micros(value: Any) -> int | None:
    return None if value is None else int(value)


class VerifierBase:
    """The state the steps share: what the earlier steps proved, and the report so far."""

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
        self._batches: dict[tuple[str, int], StoredBatch] = {}
        self._by_position: dict[tuple[str, int], list[StoredBatch]] = defaultdict(list)
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
