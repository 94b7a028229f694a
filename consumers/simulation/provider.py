"""Synthetic traffic of a realistic provider: what ``aigc-audit demo`` and ``emit`` send.

:func:`simulate` plays one period of the provider in :mod:`consumers.simulation.catalogue`:
thousands of users generating text, images, audio, video and code, the filters and reviewers
acting on what they flag, sanctions against repeat offenders, complaints, personal-information
requests, and the model platform's and compliance office's records. A seed fixes everything,
event ids included, so two runs with one seed emit identical events.

Example::

    plan = SimulationPlan.default(seed=7)
    with deployment:  # one AuditClient per service id
        clients = {s: deployment.client(s, f"{s}-1") for s in PROVIDER.emitting_service_ids}
        summary = simulate(plan, lambda service_id, event: clients[service_id].emit(event))
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aigc_audit.consumers.simulation.agreements import Agreements
from aigc_audit.consumers.simulation.catalogue import PROVIDER, ProviderProfile
from aigc_audit.consumers.simulation.governance import Governance
from aigc_audit.consumers.simulation.moderation import Moderation
from aigc_audit.consumers.simulation.population import make_population
from aigc_audit.consumers.simulation.requests import Requests
from aigc_audit.consumers.simulation.runtime import Emit, Runtime
from aigc_audit.consumers.simulation.sanctions import Sanctions
from aigc_audit.consumers.simulation.traffic import Traffic
from aigc_audit.producers.events import EVENT_KINDS, AuditEvent

FAMILIES: dict[str, str] = {
    "aigc.audit.Generation": "generation",
    "aigc.audit.ModerationAction": "moderation_action",
    "aigc.audit.UserSanction": "user_sanction",
    "aigc.audit.DataHandling": "data_handling",
}
"""Event family (its store table) by Avro schema; complaints are moderation-action rows."""

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


@dataclass
class SimulationSummary:
    """What one run emitted. The counts are exactly the events passed to ``emit``."""

    seed: int
    provider: str
    start: datetime
    as_of: datetime
    counts: dict[str, int]
    """Events per ``event_type``."""
    families: dict[str, int]
    """Events per family: generation, moderation_action (complaints too), user_sanction,
    data_handling."""
    total: int
    users: int
    active_subjects: int
    """Subjects with at least one generation."""
    services: int
    models: int
    unfiled_models: list[str]
    """Model versions without a filing number, as ``name version``."""
    unfiled_generations: int
    flagged_generations: int
    emitting_services: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line about the simulated provider and period, free of markup characters."""
        unfiled = ", ".join(self.unfiled_models) or "none"
        return (
            f"{self.provider}: {self.services} services, {self.models} model versions "
            f"(without a filing number: {unfiled}), {self.users:,} users "
            f"({self.active_subjects:,} active), {self.start:%Y-%m-%d} to "
            f"{self.as_of:%Y-%m-%d}, seed {self.seed}"
        )


def simulate(
    plan: SimulationPlan, emit: Emit, *, profile: ProviderProfile = PROVIDER
) -> SimulationSummary:
    """Play ``plan`` and pass every event to ``emit(service_id, event)``, in time order.

    ``service_id`` is one of ``profile.emitting_service_ids``. The value ``emit`` returns is
    taken as the event's id, and sanctions cite those ids as evidence. Deterministic for
    ``plan.seed``; raises whatever ``emit`` raises.
    """
    rt = Runtime(plan, emit)
    population = make_population(rt, profile)
    sanctions = Sanctions(rt, profile)
    moderation = Moderation(rt, sanctions)
    requests = Requests(rt)
    agreements = Agreements(rt, profile)
    traffic = Traffic(rt, profile, population, moderation, requests, agreements)

    Governance(rt, profile).schedule()
    backlog_models = [m for s in profile.services if s.minor_mode for m in s.models]
    for i in range(plan.backlog_incidents):
        model = rt.rng.choice(backlog_models)
        service = next(s for s in profile.services if model in s.models)
        user = rt.rng.choice(population.users)
        moderation.backlog(service.service_id, user, model, oldest=i == 0)
    traffic.schedule()
    requests.schedule_personal_information_requests(population)
    rt.run()

    counts = {kind: rt.counts[kind] for kind in EVENT_KINDS if rt.counts[kind]}
    families: Counter[str] = Counter()
    for kind, n in counts.items():
        families[FAMILIES[EVENT_KINDS[kind].SCHEMA]] += n
    return SimulationSummary(
        seed=plan.seed,
        provider=profile.name,
        start=plan.start,
        as_of=plan.as_of,
        counts=counts,
        families={family: families[family] for family in FAMILIES.values()},
        total=sum(counts.values()),
        users=plan.users,
        active_subjects=len(traffic.subjects),
        services=len(profile.services),
        models=len(profile.models),
        unfiled_models=[m.label for m in profile.unfiled_models],
        unfiled_generations=traffic.unfiled,
        flagged_generations=traffic.flagged,
        emitting_services=list(profile.emitting_service_ids),
    )


def collect(
    plan: SimulationPlan, *, profile: ProviderProfile = PROVIDER
) -> tuple[list[tuple[str, AuditEvent]], SimulationSummary]:
    """Run ``plan`` into a list of ``(service_id, event)``: for tests and offline use."""
    events: list[tuple[str, AuditEvent]] = []

    def keep(service_id: str, event: AuditEvent) -> uuid.UUID:
        events.append((service_id, event))
        return event.event_id

    summary = simulate(plan, keep, profile=profile)
    return events, summary
