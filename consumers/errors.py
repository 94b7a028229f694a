"""One base error for the platform side; the CLI turns any of them into one line and exit 2."""

from __future__ import annotations


class PlatformError(Exception):
    """A failure the user can act on: bad configuration, a held directory, a refused query."""
