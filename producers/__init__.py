"""aigc-audit's client library: what a generative-AI service installs to emit signed audit events.

Example::

    from aigc_audit.producers import AuditClient, Generation, SigningKey, pseudonymise
    from aigc_audit.producers.transports.embedded_log import EmbeddedLog

    bus = EmbeddedLog(".aigc-audit/bus.sqlite3").writer()
    with AuditClient(service_id="chat", producer_id="chat-1",
                     key=SigningKey.from_file("chat-1.key"), bus=bus) as audit:
        audit.generation(Generation(...))

This package never imports the platform side (``consumers``).
"""

from __future__ import annotations

from aigc_audit.producers.client import EVENTS_TOPIC, AuditClient, build_event
from aigc_audit.producers.errors import (
    AuditError,
    AuditTrailDownError,
    BackPressureError,
    BusError,
    BusUnavailableError,
    ClientClosedError,
    EventValidationError,
    SpoolError,
    SpoolFullError,
)
from aigc_audit.producers.events import *  # noqa: F403 - the event models are the client's vocabulary
from aigc_audit.producers.events import __all__ as _event_names
from aigc_audit.producers.pseudonym import pseudonymise
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.spool import DiskSpool, SpoolDepth

__all__ = [
    "EVENTS_TOPIC",
    "AuditClient",
    "AuditError",
    "AuditTrailDownError",
    "BackPressureError",
    "BusError",
    "BusUnavailableError",
    "ClientClosedError",
    "DiskSpool",
    "EventValidationError",
    "SigningKey",
    "SpoolDepth",
    "SpoolError",
    "SpoolFullError",
    "build_event",
    "pseudonymise",
    *_event_names,
]
