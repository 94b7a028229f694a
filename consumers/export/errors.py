"""The export's errors: one for a failed export, one for a malformed bundle record."""

from __future__ import annotations

from aigc_audit.consumers.errors import PlatformError


class ExportError(PlatformError):
    """The export cannot be written: a bad output path, or a store that cannot prove the
    selected events (a batch no checkpoint covers yet, a missing key registration)."""


class FormatError(ValueError):
    """A bundle record that is not what the format says (a missing field, bad hex)."""
