"""Model governance and compliance office: the data-handling events behind each model version.

Training data intakes (Art. 7), annotation quality checks (Art. 8) and safety evaluations
(TC260-003) happen before a model version ships, so they are dated months before the period;
monthly re-evaluations, retention purges and an inspection's disclosure (Art. 19) fall inside it.
One evaluation misses TC260-003's 90 % qualified threshold: the unfiled beta's, which is why it
has no filing number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aigc_audit.consumers.demo.simulation.catalogue import (
    COMPLIANCE_SERVICE_ID,
    GOVERNANCE_SERVICE_ID,
    ModelVersion,
    ProviderProfile,
)
from aigc_audit.consumers.demo.simulation.runtime import Runtime
from aigc_audit.producers.events import (
    AnnotationQualityCheck,
    AuditEvent,
    AuthorityDisclosure,
    DataSourceKind,
    Modality,
    RetentionPurge,
    SafetyEvaluation,
    TrainingDataIntake,
)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A training data set as the provider's data register describes it."""

    dataset_id: str
    source: str
    kind: DataSourceKind
    legal_basis: str
    size_bytes: int
    record_count: int
    consent_basis: str | None = None
    only_for: tuple[str, str] | None = None
    """Fed only this model version (name, version); None for every version of the modality."""


_TEXT = (
    Dataset(
        "ds-web-zh-2024h1",
        "Chinese web crawl 2024H1, deduplicated and filtered",
        DataSourceKind.PUBLIC_WEB,
        "publicly available data; robots.txt honoured; source blocklist per TC260-003 5.1",
        2_100_000_000_000,
        910_000_000,
    ),
    Dataset(
        "ds-news-licensed-2024",
        "licensed news archive (partner feed, 2000-2024)",
        DataSourceKind.LICENSED,
        "licence agreement L-2024-117",
        86_000_000_000,
        41_000_000,
    ),
    Dataset(
        "ds-books-licensed-2024",
        "licensed e-book corpus",
        DataSourceKind.LICENSED,
        "licence agreement L-2024-093",
        310_000_000_000,
        620_000,
    ),
    Dataset(
        "ds-sft-synthetic-v6",
        "instruction-tuning data synthesised in-house",
        DataSourceKind.SYNTHETIC,
        "provider-generated data; no third-party rights",
        4_800_000_000,
        2_300_000,
    ),
    Dataset(
        "ds-chat-feedback-2024q4",
        "rated conversations from users who opted in to model improvement",
        DataSourceKind.USER_GENERATED,
        "user agreement v4.2 s7.3 (model improvement)",
        1_900_000_000,
        860_000,
        consent_basis="separate opt-in consent (PIPL art. 14), revocable in settings",
        only_for=("xinghe-lm", "3.5"),
    ),
)
_IMAGE = (
    Dataset(
        "ds-stock-images-licensed",
        "licensed stock photographs with captions",
        DataSourceKind.LICENSED,
        "licence agreement L-2024-131",
        94_000_000_000,
        120_000_000,
    ),
    Dataset(
        "ds-artworks-public-domain",
        "public-domain artworks (museum open-access collections)",
        DataSourceKind.PUBLIC_WEB,
        "public domain; open-access terms of each collection",
        6_500_000_000,
        1_400_000,
    ),
    Dataset(
        "ds-captions-synthetic-v3",
        "synthetic recaptions of licensed images",
        DataSourceKind.SYNTHETIC,
        "provider-generated data; derived from L-2024-131 material",
        900_000_000,
        120_000_000,
    ),
)
_VIDEO = (
    Dataset(
        "ds-stock-footage-licensed",
        "licensed stock video footage",
        DataSourceKind.LICENSED,
        "licence agreement L-2024-152",
        480_000_000_000,
        9_000_000,
    ),
    Dataset(
        "ds-renders-synthetic-v1",
        "3D-engine renders with scripted camera paths",
        DataSourceKind.SYNTHETIC,
        "provider-generated data; engine licence E-2023-08",
        120_000_000_000,
        2_000_000,
    ),
)
_AUDIO = (
    Dataset(
        "ds-audiobooks-licensed",
        "licensed audiobook recordings with transcripts",
        DataSourceKind.LICENSED,
        "licence agreement L-2024-140",
        38_000_000_000,
        410_000,
    ),
    Dataset(
        "ds-studio-voices-proprietary",
        "studio recordings by the provider's contracted voice talent",
        DataSourceKind.PROPRIETARY,
        "work-for-hire contracts VT-2024-01 to VT-2024-12",
        2_600_000_000,
        52_000,
    ),
)
_CODE = (
    Dataset(
        "ds-oss-code-2024",
        "open-source repositories under permissive licences",
        DataSourceKind.PUBLIC_WEB,
        "MIT, Apache-2.0 and BSD licences; licence filter v3",
        740_000_000_000,
        95_000_000,
    ),
    Dataset(
        "ds-internal-code",
        "the provider's own source code",
        DataSourceKind.PROPRIETARY,
        "provider-owned",
        36_000_000_000,
        4_100_000,
    ),
)
DATASETS = {
    Modality.TEXT: _TEXT,
    Modality.IMAGE: _IMAGE,
    Modality.VIDEO: _VIDEO,
    Modality.AUDIO: _AUDIO,
    Modality.CODE: _CODE,
}

_LOW_ANNOTATION = ("xinghe-motion", "1.0")
"""The video model's annotation sample misses TC260-003's 96 %: a finding for the report."""

AUTHORITY = "Beijing Municipal Cyberspace Administration"


class Governance:
    """Schedules the data-handling events of the model platform and the compliance office."""

    def __init__(self, rt: Runtime, profile: ProviderProfile) -> None:
        self._rt = rt
        self._profile = profile

    def schedule(self) -> None:
        for model in self._profile.models:
            self._model_history(model)
        self._period()

    def _at(self, service_id: str, when: datetime, event: AuditEvent) -> None:
        # Events are built when scheduled but emitted in time order with everything else.
        self._rt.at(when, lambda _when: self._rt.emit(service_id, event))

    def _model_history(self, model: ModelVersion) -> None:
        rt, rng = self._rt, self._rt.rng
        key = (model.name, model.version)
        datasets = [d for d in DATASETS[model.modality] if d.only_for is None or d.only_for == key]
        intake = rt.start - timedelta(days=rng.uniform(150, 240))
        for dataset in datasets:
            intake = intake + timedelta(days=rng.uniform(1, 12))
            self._at(
                GOVERNANCE_SERVICE_ID,
                intake,
                TrainingDataIntake(
                    event_id=rt.event_id(intake),
                    occurred_at=intake,
                    dataset_id=dataset.dataset_id,
                    source=dataset.source,
                    source_kind=dataset.kind,
                    legal_basis=dataset.legal_basis,
                    contains_personal_information=dataset.consent_basis is not None,
                    consent_basis=dataset.consent_basis,
                    size_bytes=dataset.size_bytes,
                    record_count=dataset.record_count,
                    model_name=model.name,
                    model_version=model.version,
                ),
            )
            # Annotated sets (everything but raw crawls) are sample-checked after intake.
            if dataset.kind is DataSourceKind.PUBLIC_WEB and rng.random() < 0.5:
                continue
            checked = intake + timedelta(days=rng.uniform(10, 30))
            accuracy = 0.932 if key == _LOW_ANNOTATION else rng.uniform(0.962, 0.992)
            self._at(
                GOVERNANCE_SERVICE_ID,
                checked,
                AnnotationQualityCheck(
                    event_id=rt.event_id(checked),
                    occurred_at=checked,
                    dataset_id=dataset.dataset_id,
                    rules_version=f"annotation-rules-{model.modality.value}-4.{rng.randint(0, 3)}",
                    sample_size=rng.randint(5, 20) * 100,
                    sampled_accuracy=round(accuracy, 4),
                    model_name=model.name,
                    model_version=model.version,
                ),
            )
        evaluated = rt.start - timedelta(days=rng.uniform(12, 45))
        self._evaluate(model, evaluated)
        if model.filing_number is not None and model.modality is Modality.TEXT:
            # Test banks are refreshed monthly (TC260-003): filed chat models are re-evaluated.
            self._evaluate(model, rt.between(rt.start, rt.as_of))

    def _evaluate(self, model: ModelVersion, when: datetime) -> None:
        rt, rng = self._rt, self._rt.rng
        if model.filing_number is None:
            qualified, refusal = 0.88, 0.931
        else:
            qualified, refusal = rng.uniform(0.925, 0.978), rng.uniform(0.955, 0.99)
        self._at(
            GOVERNANCE_SERVICE_ID,
            when,
            SafetyEvaluation(
                event_id=rt.event_id(when),
                occurred_at=when,
                model_name=model.name,
                model_version=model.version,
                generated_test_size=rng.randint(20, 50) * 100,
                qualified_rate=round(qualified, 4),
                should_refuse_test_size=rng.randint(10, 20) * 100,
                refusal_rate=round(refusal, 4),
                should_answer_test_size=rng.randint(10, 20) * 100,
                false_refusal_rate=round(rng.uniform(0.008, 0.045), 4),
            ),
        )

    def _period(self) -> None:
        """The compliance office's work inside the period: two purges and one disclosure."""
        rt, rng = self._rt, self._rt.rng
        span = rt.as_of - rt.start
        purges = (
            ("generation_request_logs", 365, "retention period of 365 days ended (policy RP-2)"),
            (
                "moderation_evidence_cache",
                180,
                "retention period of 180 days ended (policy RP-5; CSL art. 21 minimum met)",
            ),
        )
        for fraction, (scope, days, reason) in zip((0.07, 0.55), purges, strict=True):
            when = rt.start + span * fraction + timedelta(minutes=rng.randint(0, 120))
            self._at(
                COMPLIANCE_SERVICE_ID,
                when,
                RetentionPurge(
                    event_id=rt.event_id(when),
                    occurred_at=when,
                    scope=scope,
                    cutoff=when - timedelta(days=days),
                    records_purged=rng.randint(800_000, 1_600_000),
                    reason=reason,
                ),
            )
        when = rt.start + span * 0.64 + timedelta(minutes=rng.randint(0, 240))
        quarter_end = rt.start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        quarter_start = (quarter_end - timedelta(days=85)).replace(day=1)
        self._at(
            COMPLIANCE_SERVICE_ID,
            when,
            AuthorityDisclosure(
                event_id=rt.event_id(when),
                occurred_at=when,
                authority=AUTHORITY,
                reference=f"BJWX-INSP-{when.year}-{rng.randint(10, 99):03d}",
                scope=(
                    "moderation actions, complaints and user sanctions, "
                    f"{quarter_start:%Y-%m-%d} to {quarter_end - timedelta(days=1):%Y-%m-%d}"
                ),
                records_disclosed=rng.randint(4000, 9000),
                legal_basis="Interim Measures for the Management of Generative AI Services art. 19",
            ),
        )
