"""Generations: who asked which model what, when, and what the filters made of it.

Request times follow a Beijing-time daily rhythm (quiet before dawn, busy in the evening) with
busier weekends. Each generation picks a user by activity, a service (mostly the user's home),
a model and a channel; records digests of a synthetic prompt and output, token counts or output
bytes, labels and latency; and may start a moderation case, a patrol finding or a complaint.
A user's first request is preceded by accepting the service agreement (and, for some, verifying
their identity); the first request after a new agreement version is preceded by accepting it.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from aigc_audit.consumers.demo.simulation.agreements import Agreements
from aigc_audit.consumers.demo.simulation.catalogue import ModelVersion, ProviderProfile, Service
from aigc_audit.consumers.demo.simulation.moderation import Moderation, Triage
from aigc_audit.consumers.demo.simulation.population import Population, User
from aigc_audit.consumers.demo.simulation.requests import Requests
from aigc_audit.consumers.demo.simulation.runtime import Runtime
from aigc_audit.producers.events import (
    Channel,
    Generation,
    IdentityVerification,
    ImplicitLabel,
    Modality,
    SafetyVerdict,
    VerificationMethod,
)

# Relative request volume by hour of the day, Beijing time (UTC+8).
_HOURLY = (
    0.9, 0.55, 0.3, 0.2, 0.15, 0.15, 0.25, 0.5, 0.9, 1.3, 1.5, 1.5,
    1.3, 1.3, 1.5, 1.5, 1.4, 1.3, 1.4, 1.7, 2.0, 2.1, 1.9, 1.4,
)  # fmt: skip
_BEIJING = timedelta(hours=8)

_PROMPTS = {
    Modality.TEXT: (
        "帮我写一封关于{}的邮件",
        "用三句话解释{}",
        "总结这篇关于{}的文章的要点",
        "给我一个{}的周末计划",
        "把这段关于{}的介绍翻译成英文",
    ),
    Modality.IMAGE: ("水彩风格的{}插画", "{}主题的海报，赛博朋克风", "一张{}的写实照片，黄昏光线"),
    Modality.VIDEO: ("十秒钟的{}短视频，航拍视角", "{}的延时摄影视频"),
    Modality.AUDIO: ("用温柔的女声朗读一段关于{}的文字", "为{}配一段旁白"),
    Modality.CODE: (
        "write a python function that parses {} records",
        "fix the failing unit test in the {} module",
        "add type hints to the {} service",
    ),
}
_TOPICS = (
    "春节", "量子计算", "高考志愿", "杭州西湖", "咖啡", "篮球", "房贷利率", "养猫", "新能源车",
    "故宫", "中秋节", "马拉松", "火锅", "人工智能", "敦煌壁画", "invoice", "payment", "user",
)  # fmt: skip
_REFUSAL = "抱歉，我无法协助完成这个请求。".encode()

# Per modality: (median input tokens, median output tokens, median output bytes, median latency
# in ms, spread). Text and code count tokens; media count bytes of the delivered file.
_SHAPE = {
    Modality.TEXT: (60, 380, None, 2200, 0.7),
    Modality.CODE: (1400, 220, None, 1400, 0.8),
    Modality.IMAGE: (40, None, 1_400_000, 7000, 0.35),
    Modality.AUDIO: (80, None, 900_000, 2500, 0.5),
    Modality.VIDEO: (50, None, 14_000_000, 75_000, 0.4),
}
_MEDIA = frozenset({Modality.IMAGE, Modality.AUDIO, Modality.VIDEO})
# The video pipeline transcodes after labelling and sometimes loses the metadata.
_IMPLICIT_MISS_FACTOR = {Modality.VIDEO: 3.0}

_VERIFICATION_METHODS: tuple[tuple[VerificationMethod, int], ...] = (
    (VerificationMethod.MOBILE_NUMBER, 70),
    (VerificationMethod.ID_DOCUMENT, 10),
    (VerificationMethod.FACE_MATCH, 10),
    (VerificationMethod.BANK_CARD, 6),
    (VerificationMethod.OTHER, 4),
)


@dataclass(slots=True, frozen=True)
class _Route:
    """One way into the provider: a service, its model choice and its channel choice."""

    service: Service
    models: tuple[ModelVersion, ...]
    model_weights: list[float]
    channels: tuple[Channel, ...]
    channel_weights: list[float]


class Traffic:
    """Schedules every generation of the period and records each as it happens."""

    def __init__(
        self,
        rt: Runtime,
        profile: ProviderProfile,
        population: Population,
        moderation: Moderation,
        requests: Requests,
        agreements: Agreements,
    ) -> None:
        self._rt = rt
        self._agreements = agreements
        self._profile = profile
        self._population = population
        self._moderation = moderation
        self._requests = requests
        self._routes = {
            s.service_id: _Route(
                service=s,
                models=s.models,
                model_weights=list(itertools.accumulate(m.weight for m in s.models)),
                channels=tuple(c for c, _ in s.channels),
                channel_weights=list(itertools.accumulate(w for _, w in s.channels)),
            )
            for s in profile.services
        }
        self._services = profile.services
        self._service_weights = list(itertools.accumulate(s.weight for s in profile.services))
        self.flagged = 0
        self.unfiled = 0
        self.subjects: set[str] = set()
        self._serial = itertools.count(1)
        self._early_complaint_by = rt.as_of - timedelta(days=rt.plan.complaint_due_days + 3)

    def schedule(self) -> None:
        """Put ``plan.generations`` requests on the clock, spread over the period."""
        rt, rng, plan = self._rt, self._rt.rng, self._rt.plan
        n = plan.generations
        # Weekends (Beijing time) are a little busier for consumer apps.
        days = [
            1.2 if (rt.start + _BEIJING + timedelta(days=d)).weekday() >= 5 else 1.0
            for d in range(plan.days)
        ]
        day_of = rng.choices(range(plan.days), weights=days, k=n)
        hour_of = rng.choices(range(24), weights=_HOURLY, k=n)
        offsets = sorted(
            d * 86400.0 + ((h - 8) % 24) * 3600.0 + rng.random() * 3600.0
            for d, h in zip(day_of, hour_of, strict=True)
        )
        for offset in offsets:
            rt.at(rt.start + timedelta(seconds=offset), self._generate)

    def _generate(self, when: datetime) -> None:
        rt, rng, plan = self._rt, self._rt.rng, self._rt.plan
        user = self._population.draw(rt, when)
        if user is None:
            return
        if rng.random() < plan.home_service_share:
            route = self._routes[user.home.service_id]
        else:
            service = rng.choices(self._services, cum_weights=self._service_weights)[0]
            route = self._routes[service.service_id]
        model = rng.choices(route.models, cum_weights=route.model_weights)[0]
        channel = rng.choices(route.channels, cum_weights=route.channel_weights)[0]
        # No generation without the agreement in force: at sign-up, and after a new version.
        self._agreements.before_request(route.service.service_id, user, channel, when)
        if not user.seen:
            user.seen = True
            if user.verifies:
                self._verify(route.service.service_id, user, when)

        triage = (
            self._moderation.triage(model.modality)
            if rng.random() < user.flag_probability
            else None
        )
        gen = self._generation(when, route.service, model, channel, user, triage)
        rt.emit(route.service.service_id, gen)
        self.subjects.add(user.subject)
        if model.filing_number is None:
            self.unfiled += 1
        if triage is not None:
            self.flagged += 1
            self._moderation.open_case(triage, route.service.service_id, user, gen)
        elif rng.random() < plan.patrol_rate:
            self._moderation.patrol(route.service.service_id, user, gen, model.modality)
        # Until one complaint can be overdue at as_of, the next request draws one.
        if rng.random() < plan.complaint_rate or (
            self._requests.wants_early_complaint and when < self._early_complaint_by
        ):
            self._requests.complaint_about(route.service.service_id, user, gen, self._population)

    def _generation(
        self,
        when: datetime,
        service: Service,
        model: ModelVersion,
        channel: Channel,
        user: User,
        triage: Triage | None,
    ) -> Generation:
        rt, rng = self._rt, self._rt.rng
        modality = model.modality
        n = next(self._serial)
        request_id = f"req-{when:%Y%m%d}-{rt.tag}-{n:07d}"
        template = rng.choice(_PROMPTS[modality])
        prompt = f"{template.format(rng.choice(_TOPICS))}\n[{request_id}]"
        in_med, out_med, bytes_med, latency_med, spread = _SHAPE[modality]
        verdict = triage.verdict if triage is not None else SafetyVerdict.PASSED
        refused = verdict is SafetyVerdict.REFUSED

        latency = latency_med * rng.lognormvariate(0.0, spread)
        input_tokens = max(1, round(in_med * rng.lognormvariate(0.0, 0.8)))
        output_tokens = output_bytes = None
        if refused:
            # The input filter answers with a fixed refusal: nothing was generated to label.
            output_digest = hashlib.sha256(_REFUSAL).digest() if modality not in _MEDIA else None
            output_tokens = 18 if modality not in _MEDIA else None
            latency = rng.uniform(80, 400)
        else:
            output_digest = hashlib.sha256(f"{request_id}:{rng.getrandbits(64)}".encode()).digest()
            if out_med is not None:
                output_tokens = max(1, round(out_med * rng.lognormvariate(0.0, 0.7)))
            if bytes_med is not None:
                output_bytes = round(bytes_med * rng.lognormvariate(0.0, 0.5))

        explicit, implicit, on_request = self._labels(modality, channel, refused, n, when)
        return Generation(
            event_id=rt.event_id(when),
            occurred_at=when,
            request_id=request_id,
            model_name=model.name,
            model_version=model.version,
            filing_number=model.filing_number,
            modality=modality,
            channel=channel,
            subject=user.subject,
            input_sha256=hashlib.sha256(prompt.encode()).digest(),
            output_sha256=output_digest,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            output_bytes=output_bytes,
            explicit_label=explicit,
            implicit_label=implicit,
            unlabelled_on_request=on_request,
            safety_verdict=verdict,
            minor_mode=user.minor and service.minor_mode,
            latency_ms=round(latency),
        )

    def _labels(
        self, modality: Modality, channel: Channel, refused: bool, n: int, when: datetime
    ) -> tuple[bool, ImplicitLabel | None, bool]:
        """(explicit label, implicit label, unlabelled on request) of one generation."""
        rng, plan = self._rt.rng, self._rt.plan
        if refused:
            return False, None, False
        if modality not in _MEDIA:
            # Text and code are labelled by the app's interface notice; API output goes bare.
            return channel is Channel.APP, None, False
        on_request = channel is Channel.API and rng.random() < plan.unlabelled_on_request_rate
        explicit = not on_request and rng.random() >= plan.explicit_label_miss_rate
        miss = plan.implicit_label_miss_rate * _IMPLICIT_MISS_FACTOR.get(modality, 1.0)
        if rng.random() < miss:
            return explicit, None, on_request
        produce_id = f"XH{when:%Y%m%d}{self._rt.tag.upper()}{n:08d}"
        seal = f"{self._profile.code}|{produce_id}"
        implicit = ImplicitLabel(
            label="1",
            content_producer=self._profile.code,
            produce_id=produce_id,
            # Integrity data: ties the label to the provider without revealing anything else.
            reserved_code1=hashlib.sha256(seal.encode()).hexdigest()[:32],
        )
        return explicit, implicit, on_request

    def _verify(self, service_id: str, user: User, when: datetime) -> None:
        """Identity verification at first use: shortly before the first request."""
        rt, rng = self._rt, self._rt.rng
        at = max(rt.last_emitted_at, when - timedelta(seconds=rng.uniform(20, 300)))
        methods, weights = zip(*_VERIFICATION_METHODS, strict=True)
        if user.minor:
            # Minor mode is switched on from the ID document's date of birth.
            method = VerificationMethod.ID_DOCUMENT
        else:
            (method,) = rng.choices(methods, weights=weights)
        if rng.random() < 0.03:
            # A failed first attempt (mistyped code, blurry photo), then a retry that succeeds.
            rt.emit(service_id, self._verification(user, at, method, verified=False))
            at = max(at, when - timedelta(seconds=5))
        rt.emit(service_id, self._verification(user, at, method, verified=True))

    def _verification(
        self, user: User, at: datetime, method: VerificationMethod, *, verified: bool
    ) -> IdentityVerification:
        return IdentityVerification(
            event_id=self._rt.event_id(at),
            occurred_at=at,
            subject=user.subject,
            method=method,
            verified=verified,
        )
