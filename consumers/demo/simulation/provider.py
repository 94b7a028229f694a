"""Synthetic traffic of a realistic provider: what ``aigc-audit demo`` and ``emit`` send.

:func:`simulate` plays one period of the provider in :mod:`consumers.demo.simulation.catalogue`:
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

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from aigc_audit.consumers.demo.simulation.agreements import Agreements
from aigc_audit.consumers.demo.simulation.catalogue import PROVIDER, ProviderProfile
from aigc_audit.consumers.demo.simulation.governance import Governance
from aigc_audit.consumers.demo.simulation.moderation import Moderation
from aigc_audit.consumers.demo.simulation.plan import SimulationPlan
from aigc_audit.consumers.demo.simulation.population import make_population
from aigc_audit.consumers.demo.simulation.requests import Requests
from aigc_audit.consumers.demo.simulation.runtime import Emit, Runtime
from aigc_audit.consumers.demo.simulation.sanctions import Sanctions
from aigc_audit.consumers.demo.simulation.traffic import Traffic
from aigc_audit.producers.events import EVENT_KINDS, AuditEvent

FAMILIES: dict[str, str] = {
    "aigc.audit.Generation": "generation",
    "aigc.audit.ModerationAction": "moderation_action",
    "aigc.audit.UserSanction": "user_sanction",
    "aigc.audit.DataHandling": "data_handling",
}
"""Event family (its store table) by Avro schema; complaints are moderation-action rows."""


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
