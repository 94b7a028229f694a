"""The query stage's error: a named query or a selection that cannot be run."""

from __future__ import annotations

from aigc_audit.consumers.errors import PlatformError


class QueryError(PlatformError):
    """A query or a selection that cannot be found, bound or run; the message is one line."""
