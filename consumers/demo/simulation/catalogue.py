"""The simulated provider: its services, the model versions behind them, and who emits what.

The profile is a fixed fact of the demo, like a provider's own service register: the same names,
versions and filing numbers (备案号) in every run, so that demo queries and reports can be written
against it. Exactly one model version has no filing number: an internal beta that the open API
platform exposes to a few enterprise customers, which is the finding
``generations_without_filing`` exists to surface (Art. 17).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aigc_audit.producers.events import Channel, Modality

PROVIDER_NAME = "Xinghe Intelligence Technology (Beijing) Co., Ltd."
"""The provider's legal name (星河智能科技(北京)有限公司), the Art. 9 content producer."""

PROVIDER_CODE = "91110108MA04C2XK7Q"
"""The provider's unified social credit code: ``ContentProducer`` of every implicit label."""

DEMO_SECRET = b"aigc-audit demo pseudonymisation secret"
"""The fixed HMAC secret of the demo's subject ids; a real provider keeps its own out of code."""

GOVERNANCE_SERVICE_ID = "model-platform"
"""The ML platform team's producer: training data, annotation checks, safety evaluations."""

COMPLIANCE_SERVICE_ID = "compliance-office"
"""The compliance office's producer: retention purges and disclosures to an authority."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One deployed model version and the algorithm filing it runs under."""

    name: str
    version: str
    modality: Modality
    filing_number: str | None
    weight: float
    """Share of its service's traffic, relative to the service's other models."""

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True, slots=True)
class Service:
    """A public-facing service of the provider: one producer of generation events."""

    service_id: str
    title: str
    channels: tuple[tuple[Channel, float], ...]
    models: tuple[ModelVersion, ...]
    weight: float
    """Share of users whose home is this service."""
    minor_mode: bool
    """Whether the service offers a minor mode (Art. 10); only apps aimed at the public do."""
    restricted_functions: tuple[str, ...]
    """What a function restriction switches off on this service (Art. 14 para 2)."""


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """The provider as the simulation sees it."""

    name: str
    code: str
    services: tuple[Service, ...]
    agreement_id: str = "user-agreement"
    """The service agreement (用户协议) every user accepts before using any service (Art. 9)."""
    agreement_versions: tuple[str, str] = ("4.2", "4.3")
    """The agreement's version in force when the period starts, and the one published during it
    (on ``SimulationPlan.agreement_update_day``)."""

    @property
    def models(self) -> tuple[ModelVersion, ...]:
        """Every distinct model version, in catalogue order."""
        seen: dict[tuple[str, str], ModelVersion] = {}
        for service in self.services:
            for model in service.models:
                seen.setdefault((model.name, model.version), model)
        return tuple(seen.values())

    @property
    def unfiled_models(self) -> tuple[ModelVersion, ...]:
        return tuple(m for m in self.models if m.filing_number is None)

    @property
    def emitting_service_ids(self) -> tuple[str, ...]:
        """Every ``service_id`` the simulation emits under: one audit client each."""
        return (
            *(s.service_id for s in self.services),
            GOVERNANCE_SERVICE_ID,
            COMPLIANCE_SERVICE_ID,
        )

    def service(self, service_id: str) -> Service:
        for service in self.services:
            if service.service_id == service_id:
                return service
        raise KeyError(service_id)


_LM_32 = ModelVersion(
    "xinghe-lm", "3.2", Modality.TEXT, "Beijing-XingheLM-202405150012", weight=0.35
)
_LM_35 = ModelVersion(
    "xinghe-lm", "3.5", Modality.TEXT, "Beijing-XingheLM-202411280047", weight=0.55
)
_VOICE = ModelVersion(
    "xinghe-voice", "1.1", Modality.AUDIO, "Beijing-XingheVoice-202411060019", weight=0.10
)
_PAINT = ModelVersion(
    "xinghe-paint", "2.0", Modality.IMAGE, "Beijing-XinghePaint-202407080027", weight=0.85
)
_MOTION = ModelVersion(
    "xinghe-motion", "1.0", Modality.VIDEO, "Beijing-XingheMotion-202501100044", weight=0.15
)
_LM_PRO = ModelVersion(
    "xinghe-lm-pro", "4.0", Modality.TEXT, "Beijing-XingheLMPro-202409200031", weight=0.70
)
_LM_EXP = ModelVersion("xinghe-lm-exp", "0.9-beta", Modality.TEXT, None, weight=0.12)
_CODER = ModelVersion(
    "xinghe-coder", "2.1", Modality.CODE, "Beijing-XingheCoder-202408190035", weight=1.0
)

PROVIDER = ProviderProfile(
    name=PROVIDER_NAME,
    code=PROVIDER_CODE,
    services=(
        Service(
            service_id="xinghe-chat",
            title="Xinghe Chat (consumer chat app)",
            channels=((Channel.APP, 1.0),),
            models=(_LM_32, _LM_35, _VOICE),
            weight=0.52,
            minor_mode=True,
            restricted_functions=("voice_output", "public_sharing"),
        ),
        Service(
            service_id="xinghe-canvas",
            title="Xinghe Canvas (image and video generation app)",
            channels=((Channel.APP, 1.0),),
            models=(_PAINT, _MOTION),
            weight=0.22,
            minor_mode=True,
            restricted_functions=("video_generation", "public_sharing", "portrait_upload"),
        ),
        Service(
            service_id="xinghe-open-api",
            title="Xinghe Open Platform (API for enterprise customers)",
            channels=((Channel.API, 1.0),),
            # The same image model as the app, plus the unfiled beta for a few customers.
            models=(_LM_PRO, _LM_EXP, replace(_PAINT, weight=0.18)),
            weight=0.12,
            minor_mode=False,
            restricted_functions=("image_generation", "rate_limit_tier_2"),
        ),
        Service(
            service_id="xinghe-code",
            title="Xinghe Code (coding assistant, IDE plugin and API)",
            channels=((Channel.APP, 0.7), (Channel.API, 0.3)),
            models=(_CODER,),
            weight=0.14,
            minor_mode=False,
            restricted_functions=("agent_mode", "repository_indexing"),
        ),
    ),
)
