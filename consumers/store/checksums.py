"""Order-independent checksums of the store's tables, to prove two stores hold the same rows.

The store is a projection of the bus: replaying the bus into an empty store must give the same
checksums. ``schema_migrations`` is left out because it records when the store was created, and
``checkpoints`` because they are the materialiser's signed statements about the store at the
moments it chose, not a projection of the bus (``aigc-audit verify --store`` checks them).
"""

from __future__ import annotations

from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.tables import ALL_TABLES, CHECKPOINTS, SCHEMA_MIGRATIONS


def table_checksums(store: Store) -> dict[str, tuple[int, int]]:
    """``{table: (rows, checksum)}`` where the checksum is a sum of per-row hashes over every
    column, so row order and part layout do not matter but any changed value does."""
    sums: dict[str, tuple[int, int]] = {}
    for table in ALL_TABLES:
        if table in (SCHEMA_MIGRATIONS, CHECKPOINTS):
            continue
        columns = ", ".join(f"`{c}`" for c in table.column_names)
        rows, checksum = store.query(
            # Hash a tuple: cityHash64 over bare Nullable arguments is NULL if any value is NULL.
            f"SELECT count(), sum(cityHash64(tuple({columns}))) FROM {store.database}.{table.name}"
        ).rows[0]
        sums[table.name] = (int(rows), int(checksum))
    return sums
