"""The pieces every event model shares: the head fields a client fills in, ids, times, digests."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from producers.taxonomy import check_risk_code

SCHEMA_VERSION = 2
"""The version of the event schemas this library writes (``head.schema_version``).

Version 1 is the released snapshot ``schemas/released/v1/``; version 2 adds the
``agreement_acceptance`` data-handling kind. Data written with version 1 still decodes."""


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Time-ordered ids keep ClickHouse parts and Kafka keys roughly sorted by time.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _require_aware(value: datetime) -> datetime:
    # A naive timestamp is ambiguous evidence: refuse it rather than guess the zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a time zone (use UTC)")
    return value.astimezone(UTC)


def _digest_from_hex(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError("a SHA-256 digest is 64 hex characters") from exc
    return value


def _check_digest(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError(f"a SHA-256 digest is 32 bytes, got {len(value)}")
    return value


UtcTime = Annotated[datetime, AfterValidator(_require_aware)]
"""A timezone-aware timestamp, normalised to UTC; recorded to the microsecond."""

Sha256Digest = Annotated[bytes, BeforeValidator(_digest_from_hex), AfterValidator(_check_digest)]
"""A SHA-256 digest: 32 bytes, or 64 hex characters."""

RiskCode = Annotated[str, AfterValidator(check_risk_code)]
"""A TC260-003 Appendix A risk code such as ``A.1.6``."""

Identifier = Annotated[str, Field(min_length=1, max_length=256)]


class AuthorityReport(BaseModel):
    """Whether and how a matter was reported to the competent authority (Art. 14)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reported: bool = False
    authority: str | None = None
    reference: str | None = None
    reported_at: UtcTime | None = None


class AuditEvent(BaseModel):
    """Base of every event model.

    ``event_id`` and ``occurred_at`` default to a fresh UUIDv7 and now; the client fills in the
    rest of the head (service, producer, schema version) when the event is emitted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[str]
    SCHEMA: ClassVar[str]
    """Full name of the Avro record this kind is written as."""

    event_id: uuid.UUID = Field(default_factory=uuid7)
    occurred_at: UtcTime = Field(default_factory=utc_now)

    def head(self, *, service_id: str, producer_id: str) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.EVENT_TYPE,
            "occurred_at": self.occurred_at,
            "service_id": service_id,
            "producer_id": producer_id,
            "schema_version": SCHEMA_VERSION,
        }

    def body(self) -> dict[str, Any]:
        """The Avro record's fields other than ``head``; kinds that share a schema override it."""
        return self.model_dump(exclude={"event_id", "occurred_at"})

    def to_record(self, *, service_id: str, producer_id: str) -> dict[str, Any]:
        """The Avro record (a dict for fastavro) of this event."""
        return {"head": self.head(service_id=service_id, producer_id=producer_id), **self.body()}
