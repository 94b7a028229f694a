"""The export's error: a bundle that cannot be written."""

from __future__ import annotations

from aigc_audit.consumers.errors import PlatformError


class ExportError(PlatformError):
    """The export cannot be written: a bad output path, or a store that cannot prove the
    selected events (a batch no checkpoint covers yet, a missing key registration)."""
