"""One base error for the client library, with a subclass per way things go wrong.

Callers catch :class:`AuditError` to handle anything the library raises on purpose; anything else
is a bug.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of every error the aigc-audit client library raises on purpose."""


class EventValidationError(AuditError):
    """An event does not satisfy its model (a missing field, a bad code, a naive timestamp)."""


class SchemaError(AuditError):
    """A schema is missing, unparsable, or a fingerprint names no known schema."""


class DecodeError(AuditError):
    """Bytes are not a valid single-object-encoded Avro record of a known schema."""


class UnknownSchemaError(DecodeError):
    """Single-object-encoded bytes carry a fingerprint that names no schema in the catalogue."""


class MerkleError(AuditError):
    """A Merkle inclusion proof does not lead to the expected root."""


class SignatureError(AuditError):
    """An Ed25519 signature does not verify, or a key file is unusable."""


class KeyFileError(SignatureError):
    """A private key file is unsafe to use: readable by group or others (the message names the
    file and its mode)."""


class BusError(AuditError):
    """The bus refused or could not take a message."""


class BusUnavailableError(BusError):
    """The bus cannot be reached (or its file is held by another process)."""


class ClientClosedError(AuditError):
    """An event was emitted after the client was closed."""


class SpoolError(AuditError):
    """The producer's on-disk spool cannot be opened or written (disk full, held by another
    client, not a spool file)."""


class BackPressureError(AuditError):
    """``emit`` refused an event because the client holds as much as it may in memory.

    The client keeps accepted events in memory until they are durable on the bus or in the
    spool, up to ``max_queue_events`` events and ``max_queue_bytes`` (estimated encoded) bytes.
    When the bus or the spool falls behind and the queue is full, ``emit`` waits up to
    ``emit_timeout_s`` for room, then raises this (at once when fail-closed or
    ``emit_timeout_s=0``). The event was not accepted; the ones accepted earlier are not
    affected. ``queued_events`` is how many were waiting.
    """

    def __init__(self, message: str, *, queued_events: int = 0) -> None:
        super().__init__(message)
        self.queued_events = queued_events


class SpoolFullError(BackPressureError, SpoolError):
    """``emit`` refused an event because the client cannot make batches durable on its disk.

    Raised (at once, without waiting) while the spool refuses batches (its disk is full, or it
    holds ``spool_max_bytes``) or the chain state next to it cannot be written; the spool itself
    raises it from ``append`` for the same reasons. The event was not accepted. The events
    accepted earlier stay in memory (``queued_events`` of them), and the worker keeps trying
    the spool and the bus; once either takes a batch, ``emit`` accepts events again.
    """


class AuditTrailDownError(AuditError):
    """The bus cannot take events and the client is fail-closed.

    Raised by ``emit`` (and every typed method) when the audit trail is down: the event was not
    accepted, and a provider that must not generate without an audit trail should block the
    generation. Raised by ``flush`` and ``close`` when events accepted earlier could not be
    written; ``events_not_written`` says how many, and none of them reached the bus (a batch is
    written whole or not at all).
    """

    def __init__(self, message: str, *, events_not_written: int = 0) -> None:
        super().__init__(message)
        self.events_not_written = events_not_written
