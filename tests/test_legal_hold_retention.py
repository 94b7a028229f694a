"""A legal hold keeps a subject's records past their retention period, and only until it is
released: the hold and its release are events, and the TTLs consult the holds in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aigc_audit.consumers.store.migrations import MigrationContext, migrate
from aigc_audit.consumers.store.retention import RetentionPolicy
from aigc_audit.producers.events import LegalHold
from tests.harness import Harness, generation

pytestmark = pytest.mark.chdb

LONG_AGO = datetime.now(UTC) - timedelta(days=400)  # past a 365-day retention


def hold(action: str) -> LegalHold:
    return LegalHold(
        subject="held",
        hold_id="hold-1",
        hold_scope="subject",
        hold_target="held",
        hold_action=action,
        hold_reason="authority inquiry",
    )


def expire(h: Harness, *tables: str) -> None:
    """Make ClickHouse apply the TTLs now rather than at its next merge."""
    store = h.deployment.store()
    for table in tables:
        store.command(f"ALTER TABLE audit.{table} MATERIALIZE TTL SETTINGS mutations_sync = 2")


def test_a_hold_keeps_expired_rows_until_it_is_released(tmp_path: Path) -> None:
    h = Harness(tmp_path / "data")
    try:
        old = [
            generation(n, subject="held" if n % 2 else "free", occurred_at=LONG_AGO)
            for n in range(10)
        ]
        h.emit("chat-1", [*old, hold("place")])
        h.materialise()
        assert h.count("generations") == 10
        assert h.count("legal_holds", "active") == 1

        store = h.deployment.store()
        migrate(store, MigrationContext("audit", None, RetentionPolicy.of(365)))
        expire(h, "generations", "events")
        # The free subject's expired rows are gone; the held subject's stay, with their events.
        assert h.count("generations", "subject = 'free'") == 0
        assert h.count("generations", "subject = 'held'") == 5
        assert h.count("events", "has(hold_keys, 'subject:held')") == 6  # 5 generations + hold
        assert h.count("events", "has(hold_keys, 'subject:free')") == 0

        h.emit("chat-1", [hold("release")])
        h.materialise()
        expire(h, "generations", "events")
        assert h.count("generations") == 0  # released: retention applies again
        # The hold's own records are recent: they stay as evidence of the hold.
        assert h.count("data_handling", "event_type = 'legal_hold'") == 2
    finally:
        h.close()
