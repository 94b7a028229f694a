"""How much of what the simulation plays: the plan every part of it reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_DEFAULT_START = datetime(2025, 9, 1, tzinfo=UTC)
"""A fixed start keeps a seed's events identical across days; the Labelling Measures apply."""


@dataclass
class SimulationPlan:
    """How much of what to simulate. Rates are per generation unless they say otherwise."""

    seed: int = 20250901
    users: int = 5000
    generations: int = 20_000
    start: datetime = _DEFAULT_START
    days: int = 30

    # Users.
    activity_skew: float = 0.8
    """Zipf exponent of activity: higher means fewer, heavier users."""
    home_service_share: float = 0.85
    """Share of a user's requests that go to the service they signed up with."""
    minor_share: float = 0.04
    verification_share: float = 0.6
    """Share of users who verify their identity at first use."""
    agreement_update_day: int = 15
    """Day of the period on which the provider publishes a new version of its service agreement;
    users accept it at their next visit (Art. 9). At or after ``days``: no new version."""
    risky_share: float = 0.02
    """Share of accounts that misuse the service; they draw most moderation actions."""
    risky_multiplier: float = 12.0

    # Generations and moderation.
    flag_rate: float = 0.025
    """Share of generations the input or output filter flags."""
    blocked_share: float = 0.7
    """Of flagged generations, the share refused at the input or blocked at the output."""
    review_share: float = 0.6
    """Of flagged generations delivered anyway, the share escalated to a human reviewer."""
    patrol_rate: float = 0.002
    """Share of passed generations that a human patrol later finds and takes down."""
    implicit_label_miss_rate: float = 0.02
    explicit_label_miss_rate: float = 0.005
    unlabelled_on_request_rate: float = 0.03
    """Share of media generations over the API delivered without an explicit label on request."""

    # Illegal content (risk category A.1).
    a1_report_share: float = 0.85
    rectification_share: float = 0.4
    rectification_days: int = 90
    """Draft 15's three months from opening a rectification ticket to closing it."""
    rectification_close_share: float = 0.6
    backlog_incidents: int = 6
    """A.1 cases carried over from before the period, each with its rectification ticket."""
    backlog_days: int = 170

    # Complaints (Art. 15).
    complaint_rate: float = 0.005
    complaint_due_days: int = 15
    complaint_late_share: float = 0.08
    complaint_open_share: float = 0.05

    # Sanctions (Art. 14 para 2).
    sanction_thresholds: tuple[int, int, int, int] = (2, 4, 6, 9)
    """Incidents of a subject at which a warning, restriction, suspension, termination follow."""
    suspension_days: int = 7
    reinstatement_share: float = 0.35

    # Personal-information requests (Art. 11), per user over the period.
    pi_request_rate: float = 0.015
    pi_due_days: int = 21
    """15 working days, approximated by three calendar weeks."""
    pi_late_share: float = 0.12
    pi_open_share: float = 0.05
    pi_refused_share: float = 0.08

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("SimulationPlan.start must carry a time zone (use UTC)")
        self.start = self.start.astimezone(UTC)
        if self.users < 1 or self.generations < 0 or self.days < 1:
            raise ValueError("a plan needs at least one user and one day, and generations >= 0")
        if self.agreement_update_day < 0:
            raise ValueError("SimulationPlan.agreement_update_day must not be negative")
        if len(self.sanction_thresholds) != 4 or list(self.sanction_thresholds) != sorted(
            self.sanction_thresholds
        ):
            raise ValueError("sanction_thresholds are four rising incident counts")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_share", "_rate")) and not 0.0 <= value <= 1.0:
                raise ValueError(f"SimulationPlan.{f.name} must be between 0 and 1, got {value}")

    @property
    def as_of(self) -> datetime:
        """The end of the simulated period: nothing is emitted after it."""
        return self.start + timedelta(days=self.days)

    @classmethod
    def default(cls, seed: int = 20250901, **overrides: Any) -> SimulationPlan:
        """A month of a mid-sized provider: 5,000 users, 20,000 generations.

        ``overrides`` sets any other field, e.g. ``default(seed=7, generations=2000)``.
        """
        return cls(seed=seed, **overrides)

    @classmethod
    def small(cls, seed: int = 20250901, **overrides: Any) -> SimulationPlan:
        """A month in miniature for tests: 200 users, 600 generations, denser incidents.

        The rates are raised so that every kind of event and every finding still occurs.
        """
        fields: dict[str, Any] = {
            "users": 200,
            "generations": 600,
            "flag_rate": 0.05,
            "risky_share": 0.05,
            "complaint_rate": 0.03,
            "pi_request_rate": 0.08,
            "patrol_rate": 0.01,
            "backlog_incidents": 4,
        }
        return cls(seed=seed, **{**fields, **overrides})

    def scaled(self, factor: float) -> SimulationPlan:
        """This plan with users and generations multiplied by ``factor``; rates unchanged."""
        return dataclasses.replace(
            self,
            users=max(1, round(self.users * factor)),
            generations=max(0, round(self.generations * factor)),
        )
