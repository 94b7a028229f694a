"""The pieces every event model shares: the head fields a client fills in, ids, times, digests."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from aigc_audit.producers.taxonomy import check_risk_code

SCHEMA_VERSION = 2
"""The version of the event schemas this library writes (``head.schema_version``).

Version 1 is the released snapshot ``schemas/released/v1/``; version 2 adds the
``agreement_acceptance`` data-handling kind. Data written with version 1 still decodes."""

AVRO_INT_MAX = 2**31 - 1
AVRO_LONG_MAX = 2**63 - 1
"""The largest value an Avro ``int`` / ``long`` holds: integer fields are bounded by these, so
that a model that validates always encodes."""

MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", str_max_length=2**31 - 1)
"""The configuration of every event model and of the models nested in them.

Frozen, because an emitted event is encoded later, on the client's worker thread. The string
limit is no practical limit: any limit makes pydantic check that a string is valid Unicode, so
a lone surrogate (which has no UTF-8 form, and so no Avro form) is refused when the event is
built instead of failing when it is encoded."""


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
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # pydantic reports only ValueError as a validation error
        raise ValueError(f"{value.isoformat()} is outside the years 1 to 9999 in UTC") from exc


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


@dataclass(frozen=True)
class Attr:
    """A record field read from the attribute ``name`` of the object being written (the event,
    or the nested model it is part of); a nested model is written field by field."""

    name: str


@dataclass(frozen=True)
class Const:
    """A record field with the same value in every record of a kind."""

    value: Any


@dataclass(frozen=True)
class Param:
    """A record field the client supplies: ``service_id`` or ``producer_id``."""

    name: str


@dataclass(frozen=True)
class Nested:
    """A nested record whose fields are read from the same object as the enclosing record's."""

    fields: Mapping[str, Source]


Source: TypeAlias = Attr | Const | Param | Nested
RecordLayout: TypeAlias = Mapping[str, Source]
"""Where each field of an Avro record comes from; a schema field it leaves out takes its default."""


class AuthorityReport(BaseModel):
    """Whether and how a matter was reported to the competent authority (Art. 14)."""

    model_config = MODEL_CONFIG

    reported: bool = False
    authority: str | None = None
    reference: str | None = None
    reported_at: UtcTime | None = None


class AuditEvent(BaseModel):
    """Base of every event model.

    ``event_id`` and ``occurred_at`` default to a fresh UUIDv7 and now; the client fills in the
    rest of the head (service, producer, schema version) when the event is emitted.
    """

    model_config = MODEL_CONFIG

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

    @classmethod
    def head_layout(cls) -> RecordLayout:
        """:meth:`head` as a :data:`RecordLayout`."""
        return {
            "event_id": Attr("event_id"),
            "event_type": Const(cls.EVENT_TYPE),
            "occurred_at": Attr("occurred_at"),
            "service_id": Param("service_id"),
            "producer_id": Param("producer_id"),
            "schema_version": Const(SCHEMA_VERSION),
        }

    @classmethod
    def record_layout(cls) -> RecordLayout:
        """:meth:`to_record` as a :data:`RecordLayout`, for encoders that read the model's
        attributes instead of building the dict (:mod:`producers.record_encoder`).

        A kind that overrides :meth:`head`, :meth:`body` or :meth:`to_record` overrides this
        too, in step; otherwise the encoder cannot trust it and writes the kind through
        :meth:`to_record`. The encoder's tests compare both ways byte for byte.
        """
        body = {name: Attr(name) for name in cls.model_fields if name not in _HEAD_ATTRIBUTES}
        return {"head": Nested(cls.head_layout()), **body}


_HEAD_ATTRIBUTES = frozenset({"event_id", "occurred_at"})
