"""Synthetic traffic of a realistic generative-AI provider, for ``aigc-audit demo`` and ``emit``.

Start with :func:`simulate` and :class:`SimulationPlan`; :data:`PROVIDER` describes the provider
(services, model versions, filing numbers) and lists the service ids events are emitted under.
"""

from __future__ import annotations

from aigc_audit.consumers.demo.simulation.catalogue import (
    COMPLIANCE_SERVICE_ID,
    DEMO_SECRET,
    GOVERNANCE_SERVICE_ID,
    PROVIDER,
    ModelVersion,
    ProviderProfile,
    Service,
)
from aigc_audit.consumers.demo.simulation.plan import SimulationPlan
from aigc_audit.consumers.demo.simulation.provider import (
    FAMILIES,
    SimulationSummary,
    collect,
    simulate,
)
from aigc_audit.consumers.demo.simulation.runtime import Emit

__all__ = [
    "COMPLIANCE_SERVICE_ID",
    "DEMO_SECRET",
    "FAMILIES",
    "GOVERNANCE_SERVICE_ID",
    "PROVIDER",
    "Emit",
    "ModelVersion",
    "ProviderProfile",
    "Service",
    "SimulationPlan",
    "SimulationSummary",
    "collect",
    "simulate",
]
