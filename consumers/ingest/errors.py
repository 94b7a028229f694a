"""The ingest stage's error: the materialiser cannot go on."""

from __future__ import annotations

from aigc_audit.consumers.errors import PlatformError


class IngestError(PlatformError):
    """Ingest stopped: the materialiser halted, or its bus or store refused it."""
