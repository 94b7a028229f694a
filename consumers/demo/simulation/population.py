"""The simulated users: pseudonymous subjects with a skewed activity and a little mischief.

Real usage is heavy-tailed: a few power users and API customers make a large share of requests,
most users come back a handful of times. Misuse is concentrated too: a small set of accounts draws
most moderation actions, which is what makes sanctions escalate. Both are modelled here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from aigc_audit.consumers.demo.simulation.catalogue import DEMO_SECRET, ProviderProfile, Service
from aigc_audit.consumers.demo.simulation.runtime import Runtime
from aigc_audit.producers.pseudonym import pseudonymise

_RISKY_CAP = 0.45
"""Even a determined abuser gets most requests through: cap the chance that one is flagged."""


@dataclass(slots=True, eq=False)
class User:
    """One account: who it is (only as a subject id), where it lives, and its state."""

    number: int
    subject: str
    home: Service
    minor: bool
    """Uses minor mode wherever the service offers one (Art. 10)."""
    verifies: bool
    """Verifies a real identity at first use (Draft 9): only that and how is recorded."""
    flag_probability: float
    seen: bool = False
    agreement_version: str | None = None
    """The version of the service agreement the user last accepted; None before sign-up."""
    suspended_until: datetime | None = None
    terminated: bool = False
    deleted: bool = False

    def can_use(self, when: datetime) -> bool:
        """Whether the account can make a request at ``when`` (not sanctioned away or deleted)."""
        if self.terminated or self.deleted:
            return False
        return self.suspended_until is None or when >= self.suspended_until


@dataclass(slots=True)
class Population:
    """Every user, and the cumulative activity weights to draw a requester from."""

    users: list[User]
    cumulative_weights: list[float]

    def draw(self, rt: Runtime, when: datetime) -> User | None:
        """A user active at ``when``, drawn by activity; None if the few tries all hit blocked."""
        for _ in range(8):
            (user,) = rt.rng.choices(self.users, cum_weights=self.cumulative_weights)
            if user.can_use(when):
                return user
        return None


def make_population(rt: Runtime, profile: ProviderProfile) -> Population:
    """Draw ``plan.users`` users: home service, minor mode, verification, activity, risk."""
    plan, rng = rt.plan, rt.rng
    n = plan.users
    services = profile.services
    homes = rng.choices(services, weights=[s.weight for s in services], k=n)
    # Zipf-like activity; shuffled so that user numbers say nothing about activity.
    activity = [1.0 / (rank**plan.activity_skew) for rank in range(1, n + 1)]
    rng.shuffle(activity)
    risky = [rng.random() < plan.risky_share for _ in range(n)]

    # Pick the ordinary users' flag chance so the overall rate per generation is plan.flag_rate.
    total = sum(activity)
    risky_mass = sum(a for a, r in zip(activity, risky, strict=True) if r) / total
    normal_p = plan.flag_rate / (1.0 - risky_mass + plan.risky_multiplier * risky_mass)
    risky_p = min(_RISKY_CAP, normal_p * plan.risky_multiplier)

    users = []
    for i in range(n):
        home = homes[i]
        users.append(
            User(
                number=i + 1,
                subject=pseudonymise(DEMO_SECRET, f"user-{i + 1}"),
                home=home,
                minor=home.minor_mode and rng.random() < plan.minor_share,
                verifies=rng.random() < plan.verification_share,
                flag_probability=risky_p if risky[i] else normal_p,
            )
        )
    return Population(users=users, cumulative_weights=list(itertools.accumulate(activity)))
