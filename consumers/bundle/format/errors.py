"""The format's error: a bundle record that is not what the format says."""

from __future__ import annotations

from aigc_audit.consumers.errors import PlatformError


class FormatError(PlatformError, ValueError):
    """A bundle record that is not what the format says (a missing field, bad hex)."""
