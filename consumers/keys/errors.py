"""The keys stage's error: a key the platform holds cannot be used safely."""

from __future__ import annotations

from aigc_audit.consumers.errors import PlatformError


class KeysError(PlatformError):
    """A private key is missing, unreadable, or exposed; one line says which and what to do."""
