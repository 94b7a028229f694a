"""What every store offers the materialiser, the query runner and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aigc_audit.consumers.errors import PlatformError
from aigc_audit.consumers.store.tables import Table


class StoreError(PlatformError):
    """The store refused a statement or cannot be opened."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Store(Protocol):
    database: str

    def migrate(self) -> None:
        """Bring the schema up to date with the numbered migrations (consumers/store/migrations);
        safe to run twice; refuses a store newer than the code. Retention TTLs are left to
        ``aigc-audit migrate``."""

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]], *, token: str) -> None:
        """Insert rows; a second insert with the same token into the same table is a no-op."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a read query with ClickHouse query parameters ({name:Type} placeholders)."""

    def command(self, sql: str) -> None:
        """Run a statement that returns nothing."""

    def close(self) -> None: ...
