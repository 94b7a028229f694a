"""Pseudonymous subject ids: the provider's user id never leaves the provider's systems."""

from __future__ import annotations

import hashlib
import hmac


def pseudonymise(secret: bytes, user_id: str) -> str:
    """The subject id of ``user_id``: hex HMAC-SHA-256 under the provider's secret, 32 chars.

    The same user always maps to the same subject, so a subject's history can be assembled;
    without the secret the mapping cannot be reversed or recomputed.

    Example::

        subject = pseudonymise(b"provider-secret", "user-10086")
    """
    if len(secret) < 16:
        raise ValueError("the pseudonymisation secret must be at least 16 bytes")
    return hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
