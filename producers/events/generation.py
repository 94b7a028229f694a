"""Generations: one request served by a generative model (Art. 4, 10, 12, 17)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from aigc_audit.producers.events.base import (
    AVRO_INT_MAX,
    AVRO_LONG_MAX,
    MODEL_CONFIG,
    AuditEvent,
    Identifier,
    Sha256Digest,
)


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    CODE = "code"


class Channel(StrEnum):
    APP = "app"
    API = "api"


class SafetyVerdict(StrEnum):
    PASSED = "passed"
    REFUSED = "refused"
    FLAGGED = "flagged"
    BLOCKED = "blocked"


class ImplicitLabel(BaseModel):
    """The implicit label written into the content's metadata under ``AIGC`` (GB 45438-2025)."""

    model_config = MODEL_CONFIG

    label: Literal["1", "2", "3"] = "1"
    content_producer: Identifier
    produce_id: Identifier
    reserved_code1: str | None = None


class Generation(AuditEvent):
    """One request served by a model.

    Example::

        Generation(request_id="req-1", model_name="qwen-chat", model_version="2.1",
                   filing_number="Beijing-QwenChat-20240101", modality="text", channel="app",
                   subject=pseudonymise(secret, "user-42"), input_sha256=sha256(prompt).digest(),
                   output_sha256=sha256(answer).digest(), input_tokens=12, output_tokens=80,
                   explicit_label=True, safety_verdict="passed", latency_ms=420)
    """

    EVENT_TYPE: ClassVar[str] = "generation"
    SCHEMA: ClassVar[str] = "aigc.audit.Generation"

    request_id: Identifier
    model_name: Identifier
    model_version: Identifier
    filing_number: str | None = None
    modality: Modality
    channel: Channel
    subject: Identifier
    input_sha256: Sha256Digest
    output_sha256: Sha256Digest | None = None
    input_tokens: int | None = Field(default=None, ge=0, le=AVRO_LONG_MAX)
    output_tokens: int | None = Field(default=None, ge=0, le=AVRO_LONG_MAX)
    output_bytes: int | None = Field(default=None, ge=0, le=AVRO_LONG_MAX)
    explicit_label: bool
    implicit_label: ImplicitLabel | None = None
    unlabelled_on_request: bool = False
    safety_verdict: SafetyVerdict
    minor_mode: bool = False
    latency_ms: int = Field(ge=0, le=AVRO_INT_MAX)
