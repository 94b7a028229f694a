"""What ``verify --store`` reports: numbered checks and findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["altered", "deleted", "inserted", "unproven", "forged"]


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
