"""The service agreement (Art. 9): which version each user accepted, and when.

Every user accepts the version in force before their first generation. Partway through the
period the provider publishes a new version; a user accepts it on their next visit, just before
that visit's request, so the version in force for a subject changes at a different time for each.
Users who are never back after the update stay on the version they accepted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aigc_audit.consumers.demo.simulation.catalogue import ProviderProfile
from aigc_audit.consumers.demo.simulation.population import User
from aigc_audit.consumers.demo.simulation.runtime import Runtime
from aigc_audit.producers.events import AgreementAcceptance, Channel

_ACCEPTED_VIA = {Channel.APP: "app", Channel.API: "web"}
"""Where a user of each request channel accepts the agreement: API customers accept it in the
developer console on the web."""


class Agreements:
    """Emits each user's acceptances of the provider's service agreement."""

    def __init__(self, rt: Runtime, profile: ProviderProfile) -> None:
        self._rt = rt
        self.agreement_id = profile.agreement_id
        self.initial, self.update = profile.agreement_versions
        day = rt.plan.agreement_update_day
        published = rt.start + timedelta(days=day)
        self.published_at: datetime | None = published if day < rt.plan.days else None
        """When the new version takes effect; None if it is not published in the period."""

    def version_at(self, when: datetime) -> str:
        """The version of the agreement in force at ``when``."""
        if self.published_at is not None and when >= self.published_at:
            return self.update
        return self.initial

    def before_request(self, service_id: str, user: User, channel: Channel, when: datetime) -> None:
        """Before ``user``'s request at ``when``: accept the version in force, if not yet done."""
        version = self.version_at(when)
        if user.agreement_version == version:
            return
        rt = self._rt
        # Signing up (reading, scrolling, ticking the box) takes longer than accepting an update.
        lead = rt.rng.uniform(30, 300) if user.agreement_version is None else rt.rng.uniform(3, 40)
        at = max(rt.last_emitted_at, when - timedelta(seconds=lead))
        if version == self.update and self.published_at is not None:
            at = max(at, self.published_at)  # never before the version existed
        rt.emit(
            service_id,
            AgreementAcceptance(
                event_id=rt.event_id(at),
                occurred_at=at,
                subject=user.subject,
                agreement_id=self.agreement_id,
                agreement_version=version,
                accepted_at=at,
                channel=_ACCEPTED_VIA[channel],
            ),
        )
        user.agreement_version = version
