"""What a bundle verification reports: numbered checks, each with its problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_audit.consumers.errors import PlatformError

MAX_PROBLEMS = 200
"""Problems kept per check (all are counted)."""
SHOWN_PROBLEMS = 3
"""Problems a check's detail line names."""


class BundleError(PlatformError):
    """The path is not a bundle at all (missing, or neither a bundle directory nor a zip)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    problems: tuple[str, ...] = ()
    """Every problem found (up to MAX_PROBLEMS), the first of them in ``detail``."""


@dataclass
class BundleVerification:
    path: Path
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    """What the bundle holds: events (and by family), batches, checkpoints, keys."""
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def check(self, number: int) -> Check:
        """The check whose name starts with ``number``."""
        for check in self.checks:
            if check.name.startswith(f"{number}."):
                return check
        raise KeyError(number)


def short_id(key_id: str) -> str:
    return f"{key_id[:8]}…" if len(key_id) > 8 else key_id


def counted(count: Any, noun: str) -> str:
    plural = noun + ("es" if noun.endswith(("s", "ch")) else "s")
    return f"{count} {noun if count == 1 else plural}"


def format_checks(result: BundleVerification) -> list[str]:
    """One line per check: ``✓ 1. manifest signature: ...`` or ``✗ 6. events: ...``."""
    return [f"{'✓' if c.ok else '✗'} {c.name}: {c.detail}" for c in result.checks]


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def __call__(self, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(message)

    def check(self, name: str, ok_detail: str) -> Check:
        if not self.count:
            return Check(name, True, ok_detail)
        shown = "; ".join(self.items[:SHOWN_PROBLEMS])
        if self.count > SHOWN_PROBLEMS:
            shown += f" (and {self.count - SHOWN_PROBLEMS} more)"
        return Check(name, False, shown, tuple(self.items))
