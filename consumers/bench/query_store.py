"""The inspection query pack over a store of millions of events: each query's time (issue 6).

:func:`build_synthetic_store` fills a migrated store with a realistic mix of events in the
engine itself: every row is a deterministic function of its number (``cityHash64`` of the seed,
a salt and the number), produced by ``INSERT INTO audit.<table> SELECT ... FROM numbers(...)`` in
chunks, so ten million events take a minute or two instead of hours of Python row building.
The mix follows the simulation (``consumers.demo.simulation``): the provider's services, model
versions and filing numbers, about 85 % generations, 5 % moderation actions and complaints,
0.7 % user sanctions and 9 % data handling (personal-information requests, identity
verifications, agreement acceptances, legal holds and the model platform's training data,
annotation checks and safety evaluations), over about 200,000 subjects and the 90 days that end
at ``end``. Moderation cases name the generation they are about (its subject, model and request
id), sanction steps cite moderation actions as evidence, and ``events``, ``batches``,
``checkpoints``, ``quarantine`` and ``chain_findings`` are filled to match.

:func:`time_query_pack` runs every query of the pack with parameters that exist in the data
(:func:`sample_params`) and returns the seconds each took, rows fetched.

Run it::

    python -m aigc_audit.consumers.bench.query_store --store /tmp/query-store --events 10000000
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from aigc_audit.consumers.demo.simulation.catalogue import (
    COMPLIANCE_SERVICE_ID,
    GOVERNANCE_SERVICE_ID,
    PROVIDER,
    ProviderProfile,
)
from aigc_audit.consumers.demo.simulation.governance import DATASETS
from aigc_audit.consumers.query.pack import NamedQuery, load_query_pack, run_query
from aigc_audit.consumers.store.base import Store, StoreError
from aigc_audit.consumers.store.tables import DATA_HANDLING
from aigc_audit.producers.events import DataSourceKind, Modality

Progress = Callable[[str], None]
ParamsFor = Callable[[NamedQuery], Mapping[str, object]]

DAYS = 90
"""The span of the synthetic data, ending at the build's ``end``."""
CHUNK = 1_000_000
"""Rows per INSERT statement: bounds the engine's memory whatever the store's size."""
BATCH_EVENTS = 500
"""Events per signed batch."""
PARTITIONS = 6
"""Partitions of the events topic the batches and checkpoints are spread over."""
TOPIC = "aigc-audit.events"
LOG_ORIGIN = "aigc-audit.local"
MIN_EVENTS = 5_000
"""Fewer events cannot hold every kind of data-handling record."""

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US

SHARES = {"generation": 0.85, "moderation_action": 0.05, "user_sanction": 0.007}
"""Each family's share of the events; data handling takes the rest (about 9 %)."""
COMPLAINT_SHARE = 0.2
"""Of the moderation rows, the share that are complaints (Art. 15)."""
DATA_HANDLING_SHARES = {"agreement_acceptance": 0.5, "identity_verification": 0.2}
"""Of the data-handling rows beyond the fixed governance rows and the legal holds; personal-
information requests take the rest."""

FAMILY_OF = {
    "generations": "aigc.audit.Generation",
    "moderation_actions": "aigc.audit.ModerationAction",
    "user_sanctions": "aigc.audit.UserSanction",
    "data_handling": "aigc.audit.DataHandling",
}
"""The event family each typed table holds."""

AUTHORITY = "Beijing Municipal Cyberspace Administration"

# Risk mixes per modality (TC260-003 codes), as in the simulation's moderation.
_TEXT_RISKS = {
    "A.1.6": 14, "A.1.7": 16, "A.1.2": 2, "A.1.4": 1, "A.1.5": 1, "A.1.8": 2, "A.1.1": 0.5,
    "A.1.3": 0.5, "A.2.1": 3, "A.2.4": 3, "A.2.5": 5, "A.2.6": 1.5, "A.2.7": 2, "A.2.8": 1.5,
    "A.3.1": 4, "A.3.2": 1, "A.4.1": 4, "A.4.3": 6, "A.4.5": 4, "A.4.6": 5, "A.5.1": 2,
}  # fmt: skip
_VISUAL_RISKS = {
    "A.1.6": 35, "A.1.7": 5, "A.1.2": 2, "A.1.4": 1, "A.4.2": 14, "A.4.3": 4, "A.4.4": 2,
    "A.3.1": 7, "A.2.5": 3, "A.2.1": 1,
}  # fmt: skip
_AUDIO_RISKS = {"A.1.6": 10, "A.1.7": 10, "A.4.7": 10, "A.4.3": 5, "A.3.1": 8}
_CODE_RISKS = {"A.3.1": 15, "A.3.3": 8, "A.4.6": 12, "A.1.8": 4, "A.4.5": 5}

# Complaints: (risk found on handling, action, weight), about one's own generation or a third
# party's published content.
_OWN_GROUNDS = (("A.5.1", "label", 30), (None, "no_action", 30), ("A.4.6", "delete", 10),
                ("A.2.5", "label", 8), ("A.1.7", "delete", 6))  # fmt: skip
_THIRD_PARTY_GROUNDS = (("A.4.2", "delete", 25), ("A.4.3", "delete", 25),
                        ("A.3.1", "delete", 20), ("A.1.7", "delete", 10),
                        (None, "no_action", 20))  # fmt: skip

_PI_KINDS = {"access": 30, "copy": 15, "correct": 15, "supplement": 5, "delete": 35}
_PI_OUTCOMES = {
    "access": "summary of personal information shown in the app",
    "copy": "data export delivered through a one-time download link",
    "correct": "profile fields corrected",
    "supplement": "profile information supplemented",
    "delete": "account data deleted; subject data key destroyed",
}
_VERIFICATION_METHODS = {
    "mobile_number": 70,
    "id_document": 10,
    "face_match": 10,
    "bank_card": 6,
    "other": 4,
}
_COMPLAINT_CHANNELS = {"in_app": 55, "hotline": 10, "email": 15, "web_form": 20}
_QUARANTINE_REASONS = ("bad_signature", "unknown_key", "malformed_event", "chain_gap", "replay")

# Per modality: (median input tokens, median output tokens, median output bytes, median latency
# in ms, spread), as in the simulation's traffic.
_SHAPE = {
    "text": (60, 380, 0, 2200, 0.7),
    "code": (1400, 220, 0, 1400, 0.8),
    "image": (40, 0, 1_400_000, 7000, 0.35),
    "audio": (80, 0, 900_000, 2500, 0.5),
    "video": (50, 0, 14_000_000, 75_000, 0.4),
}
_MEDIA = ("image", "audio", "video")


@dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`build_synthetic_store` wrote."""

    events: int
    subjects: int
    start: datetime
    """The start of the data's span (governance records reach months before it)."""
    end: datetime
    families: dict[str, int]
    """Events per family (``aigc.audit.Generation``, ...); they sum to ``events``."""
    event_types: dict[str, int]
    """Events per event type (generation, moderation_action, complaint, ...)."""
    rows: dict[str, int]
    """Rows written per table (typed tables, events, batches, legal_holds, quarantine,
    chain_findings, checkpoints)."""
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds per build step."""


@dataclass(frozen=True)
class _Plan:
    """How many rows of each kind one build writes; every count is exact."""

    events: int
    subjects: int
    generations: int
    cases: int
    """Moderation-action rows (not complaints)."""
    complaints: int
    """Complaint rows."""
    sanctions: int
    governance: int
    holds: int
    requests: int
    verifications: int
    acceptances: int

    @property
    def moderation(self) -> int:
        return self.cases + self.complaints

    @property
    def data_handling(self) -> int:
        return self.governance + self.holds + self.requests + self.verifications + self.acceptances

    @classmethod
    def of(cls, events: int, governance: int) -> _Plan:
        if events < MIN_EVENTS:
            raise ValueError(f"a synthetic store needs at least {MIN_EVENTS} events, got {events}")
        generations = round(events * SHARES["generation"])
        moderation = round(events * SHARES["moderation_action"])
        complaints = round(moderation * COMPLAINT_SHARE)
        sanctions = round(events * SHARES["user_sanction"])
        data = events - generations - moderation - sanctions
        holds = max(4, round(data * 0.002))
        rest = data - governance - holds
        acceptances = round(rest * DATA_HANDLING_SHARES["agreement_acceptance"])
        verifications = round(rest * DATA_HANDLING_SHARES["identity_verification"])
        return cls(
            events=events,
            subjects=max(500, min(200_000, events // 50)),
            generations=generations,
            cases=moderation - complaints,
            complaints=complaints,
            sanctions=sanctions,
            governance=governance,
            holds=holds,
            requests=rest - acceptances - verifications,
            verifications=verifications,
            acceptances=acceptances,
        )


# ----------------------------------------------------------------------------------------------
# SQL building blocks


_Key = TypeVar("_Key", bound=str | None)
"""The keys of a weighted choice: SQL string literals, None for NULL."""


def _lit(value: str | None) -> str:
    if value is None:
        return "NULL"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _arr(values: Sequence[str | None]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def _num_arr(values: Sequence[float]) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def _ts(us: str) -> str:
    """A DateTime64(6, 'UTC') from microseconds since the epoch."""
    return f"fromUnixTimestamp64Micro(toInt64({us}), 'UTC')"


@dataclass(frozen=True)
class _Route:
    service_id: str
    service_index: int
    model_name: str
    model_version: str
    model_index: int
    filing_number: str | None
    modality: str
    channels: tuple[str, str]
    first_channel_share: float
    minor_mode: bool
    weight: float


def _routes(profile: ProviderProfile) -> list[_Route]:
    """Every (service, model version) pair with its share of the generations."""
    models = [(m.name, m.version) for m in profile.models]
    total = sum(s.weight for s in profile.services)
    routes = []
    for index, service in enumerate(profile.services):
        model_total = sum(m.weight for m in service.models)
        channels = [c.value for c, _ in service.channels]
        weights = [w for _, w in service.channels]
        first_share = weights[0] / sum(weights)
        pair = (channels[0], channels[-1])
        for model in service.models:
            routes.append(
                _Route(
                    service_id=service.service_id,
                    service_index=index + 1,
                    model_name=model.name,
                    model_version=model.version,
                    model_index=models.index((model.name, model.version)) + 1,
                    filing_number=model.filing_number,
                    modality=model.modality.value,
                    channels=pair,
                    first_channel_share=first_share,
                    minor_mode=service.minor_mode,
                    weight=service.weight / total * model.weight / model_total,
                )
            )
    return routes


class _Sql:
    """The SELECTs that generate each table's rows from numbers, for one seed and span."""

    def __init__(self, seed: int, plan: _Plan, start_us: int, end_us: int) -> None:
        self.seed = seed
        self.plan = plan
        self.start_us = start_us
        self.end_us = end_us
        self.span_us = end_us - start_us
        self.last_us = end_us - SECOND_US
        """The latest time a row may carry: nothing is recorded after ``end``."""
        self.tag = hashlib.sha256(str(seed).encode()).hexdigest()[:6].upper()
        self.routes = _routes(PROVIDER)
        self.services = [s.service_id for s in PROVIDER.services]
        self.service_weights = [s.weight for s in PROVIDER.services]

    # -- primitives ----------------------------------------------------------------------------

    def h(self, salt: str, key: str) -> str:
        """A 64-bit hash of ``key`` under this seed and ``salt``."""
        return f"cityHash64({self.seed}, '{salt}', {key})"

    def u(self, salt: str, key: str) -> str:
        """A uniform number in [0, 1) of ``key`` under this seed and ``salt``."""
        return f"({self.h(salt, key)} % 1000003 / 1000003.0)"

    def pick(self, u: str, weighted: Mapping[_Key, float]) -> str:
        """One of the keys of ``weighted`` (SQL literals), chosen by ``u`` with their weights."""
        total = sum(weighted.values())
        items = list(weighted.items())
        parts = []
        acc = 0.0
        for value, weight in items[:-1]:
            acc += weight / total
            parts.append(f"{u} < {acc!r}, {_lit(value)}")
        last = _lit(items[-1][0])
        return f"multiIf({', '.join(parts)}, {last})" if parts else last

    def pick_index(self, u: str, weights: Sequence[float]) -> str:
        """An index 1..len(weights), chosen by ``u`` with those weights (a UInt8)."""
        total = sum(weights)
        parts = []
        acc = 0.0
        for index, weight in enumerate(weights[:-1]):
            acc += weight / total
            parts.append(f"{u} < {acc!r}, {index + 1}")
        return f"toUInt8(multiIf({', '.join(parts)}, {len(weights)}))" if parts else "toUInt8(1)"

    def clamp(self, us: str) -> str:
        """Microseconds no later than the end of the span."""
        return f"least(toInt64({us}), {self.last_us})"

    def uuid(self, us: str, salt: str, key: str) -> str:
        """A UUIDv7 of the time ``us``, its random bits a hash of ``key``."""
        t = f"leftPad(hex(toUInt64(intDiv({us}, 1000))), 12, '0')"
        r = f"leftPad(hex({self.h(salt, key)}), 16, '0')"
        r2 = f"leftPad(hex({self.h(salt + '2', key)}), 16, '0')"
        return (
            f"toUUID(concat(substring({t}, 1, 8), '-', substring({t}, 9, 4), '-7', "
            f"substring({r}, 1, 3), '-8', substring({r}, 4, 3), '-', substring({r}, 7, 10), "
            f"substring({r2}, 1, 2)))"
        )

    def subject(self, k: str) -> str:
        """The pseudonymous subject id (32 hex characters) of subject number ``k``."""
        return (
            f"lower(concat(leftPad(hex({self.h('subject', k)}), 16, '0'), "
            f"leftPad(hex({self.h('subject2', k)}), 16, '0')))"
        )

    def skewed_subject(self, salt: str, key: str) -> str:
        """A subject number drawn by activity: a few subjects are far more active than most."""
        return f"toUInt64(floor({self.plan.subjects} * pow({self.u(salt, key)}, 1.6)))"

    def serial(self, prefix: str, key: str, width: int = 8) -> str:
        return f"concat('{prefix}-{self.tag}-', leftPad(toString({key}), {width}, '0'))"

    def service(self, salt: str, key: str) -> str:
        return self.pick(
            self.u(salt, key), dict(zip(self.services, self.service_weights, strict=True))
        )

    def states(self, n: str, rows_per_ten: int, prefix: str) -> str:
        """Columns that group consecutive numbers ``n`` into entities of 1..2 or 2..3 rows
        (``rows_per_ten`` / 10 rows on average): ``<prefix>`` the entity, ``<prefix>_state`` the
        row's place in it, ``<prefix>_rows`` how many rows the entity has."""
        p, r = prefix, rows_per_ten
        return (
            f"intDiv({n} * 10, {r}) AS {p}, intDiv({p} * {r} + 9, 10) AS {p}_first, "
            f"toInt64({n}) - toInt64({p}_first) AS {p}_state, "
            f"toInt64(intDiv(({p} + 1) * {r} + 9, 10)) - toInt64({p}_first) AS {p}_rows"
        )

    # -- generations ---------------------------------------------------------------------------

    def generation_layer(self, src: str) -> str:
        """``src`` (a SELECT with a column ``g``, the generation number) and the generation's
        attributes as ``g_*`` columns: a pure function of ``g``, so that moderation cases and
        complaints can name the generation they are about."""
        routes, plan = self.routes, self.plan
        step = self.span_us / max(1, plan.generations)
        route_pick = self.pick_index(self.u("route", "g"), [r.weight for r in routes])
        modalities = list(_SHAPE)
        shape = {i: [_SHAPE[m][i] for m in modalities] for i in range(5)}
        mod_index = f"indexOf({_arr(modalities)}, g_modality)"
        flag = 0.025
        return f"""
SELECT
    *,
    {self.start_us} + toInt64((g + {self.u("gj", "g")}) * {step!r}) AS g_us,
    {route_pick} AS g_route,
    {_arr([r.service_id for r in routes])}[g_route] AS g_service,
    {[r.service_index for r in routes]}[g_route] AS g_service_index,
    {_arr([r.model_name for r in routes])}[g_route] AS g_model,
    {_arr([r.model_version for r in routes])}[g_route] AS g_version,
    {[r.model_index for r in routes]}[g_route] AS g_model_index,
    {_arr([r.filing_number for r in routes])}[g_route] AS g_filing,
    {_arr([r.modality for r in routes])}[g_route] AS g_modality,
    if({self.u("gc", "g")} < {_num_arr([r.first_channel_share for r in routes])}[g_route],
       {_arr([r.channels[0] for r in routes])}[g_route],
       {_arr([r.channels[1] for r in routes])}[g_route]) AS g_channel,
    {[int(r.minor_mode) for r in routes]}[g_route] = 1
        AND {self.h("minor", "g_k")} % 100 < 4 AS g_minor,
    {self.skewed_subject("gs", "g")} AS g_k,
    {self.subject("g_k")} AS g_subject,
    {self.u("gf", "g")} AS g_flag_u,
    multiIf(g_flag_u < {flag * 0.385!r}, 'refused', g_flag_u < {flag * 0.7!r}, 'blocked',
            g_flag_u < {flag!r}, 'flagged', 'passed') AS g_verdict,
    g_verdict = 'refused' AS g_refused,
    g_modality IN {_MEDIA} AS g_media,
    formatDateTime({_ts("g_us")}, '%Y%m%d') AS g_day,
    concat('req-', g_day, '-', '{self.tag.lower()}', '-', leftPad(toString(g), 9, '0'))
        AS g_request_id,
    g_media AND NOT g_refused AND g_channel = 'api' AND {self.u("gr", "g")} < 0.03
        AS g_on_request,
    NOT g_refused AND if(g_media, NOT g_on_request AND {self.u("ge", "g")} >= 0.005,
                         g_channel = 'app') AS g_explicit,
    NOT g_refused AND g_media
        AND {self.u("gi", "g")} >= if(g_modality = 'video', 0.06, 0.02) AS g_implicit,
    concat('XH', g_day, '{self.tag}', leftPad(toString(g), 9, '0')) AS g_produce_id,
    {mod_index} AS g_mod_index,
    toUInt64(greatest(1, round({_num_arr(shape[0])}[g_mod_index]
        * exp(1.6 * ({self.u("gti", "g")} - 0.5))))) AS g_input_tokens,
    toUInt64(greatest(1, round({_num_arr(shape[1])}[g_mod_index]
        * exp(1.4 * ({self.u("gto", "g")} - 0.5))))) AS g_output_tokens,
    toUInt64(round({_num_arr(shape[2])}[g_mod_index]
        * exp(1.0 * ({self.u("gtb", "g")} - 0.5)))) AS g_output_bytes,
    toUInt32(if(g_refused, 80 + 320 * {self.u("gl", "g")},
        {_num_arr(shape[3])}[g_mod_index]
        * exp(2 * {_num_arr(shape[4])}[g_mod_index] * ({self.u("gl", "g")} - 0.5))))
        AS g_latency
FROM ({src})"""

    def generations(self, offset: int, count: int) -> str:
        code = PROVIDER.code
        body = self.generation_layer(f"SELECT number AS g FROM numbers({offset}, {count})")
        return f"""
SELECT
    {self.uuid("g_us", "gen", "g")} AS event_id,
    {_ts("g_us")} AS occurred_at,
    g_service AS service_id,
    concat(g_service, '-1') AS producer_id,
    g_request_id AS request_id,
    g_model AS model_name,
    g_version AS model_version,
    g_filing AS filing_number,
    g_modality AS modality,
    g_channel AS channel,
    g_subject AS subject,
    SHA256(concat(g_request_id, ':in')) AS input_sha256,
    if(g_refused AND g_media, NULL,
       SHA256(if(g_refused, 'refusal', concat(g_request_id, ':out')))) AS output_sha256,
    g_input_tokens AS input_tokens,
    if(g_media, NULL, if(g_refused, 18, g_output_tokens)) AS output_tokens,
    if(g_media AND NOT g_refused, g_output_bytes, NULL) AS output_bytes,
    g_explicit AS explicit_label,
    g_implicit AS implicit_label,
    if(g_implicit, '1', NULL) AS label_value,
    if(g_implicit, '{code}', NULL) AS content_producer,
    if(g_implicit, g_produce_id, NULL) AS produce_id,
    if(g_implicit, lower(substring(hex(SHA256(concat('{code}|', g_produce_id))), 1, 32)), NULL)
        AS reserved_code1,
    g_on_request AS unlabelled_on_request,
    g_verdict AS safety_verdict,
    g_minor AS minor_mode,
    g_latency AS latency_ms,
    [concat('subject:', g_subject)] AS hold_keys
FROM ({body})"""

    # -- moderation cases ----------------------------------------------------------------------

    def risk(self, u: str, modality: str) -> str:
        return (
            f"multiIf({modality} = 'text', {self.pick(u, _TEXT_RISKS)}, "
            f"{modality} IN ('image', 'video'), {self.pick(u, _VISUAL_RISKS)}, "
            f"{modality} = 'audio', {self.pick(u, _AUDIO_RISKS)}, {self.pick(u, _CODE_RISKS)})"
        )

    def case_layer(self, src: str) -> str:
        """``src`` (a SELECT with a column ``m``, the moderation-case row number) and the row's
        columns as ``mo_*``. Case ``c`` has one or two rows: its first state (acted on by a
        filter, or escalated to a reviewer) and, for some, a later one (a reviewer's decision, a
        report to the authority, a confirmation); about 40 % of acted illegal-content (A.1)
        cases join their model version's rectification ticket."""
        plan = self.plan
        inner = (
            f"SELECT *, {self.states('m', 17, 'c')}, "
            f"{self.h('cg', 'c')} % {max(1, plan.generations)} AS g FROM ({src})"
        )
        kinds = {"patrol": 8, "refuse": 35, "block": 28, "stop": 10, "review": 19}
        decisions = {"delete": 50, "label": 25, "stop_transmission": 10, "no_action": 15}
        fortnight = 14 * DAY_US
        later = self.clamp(
            f"if(c_reported, c_report_us, if(c_kind = 'review', c_acted_us, "
            f"c_acted_us + {HOUR_US} + {self.u('cct', 'c')} * {DAY_US}))"
        )
        return f"""
SELECT
    *,
    {self.pick(self.u("ck", "c"), kinds)} AS c_kind,
    {self.risk(self.u("cr", "c"), "g_modality")} AS c_risk0,
    {self.pick(self.u("cd", "c"), decisions)} AS c_decision,
    least({self.last_us}, g_us + toInt64(multiIf(
        c_kind = 'patrol', {HOUR_US / 2} + pow({self.u("cdt", "c")}, 2) * {5 * DAY_US},
        c_kind = 'refuse', 20000 + 280000 * {self.u("cdt", "c")},
        c_kind = 'stop', g_latency * 1000 * (0.2 + 0.7 * {self.u("cdt", "c")}),
        g_latency * 1000 + 100000 + 1900000 * {self.u("cdt", "c")}))) AS c_detected_us,
    c_detected_us + toInt64(multiIf(
        c_kind = 'patrol', 60e6 + pow({self.u("cat", "c")}, 2) * {4 * HOUR_US},
        c_kind = 'refuse', 10000 + 490000 * {self.u("cat", "c")},
        c_kind = 'block', 50000 + 950000 * {self.u("cat", "c")},
        c_kind = 'stop', 0.5e6 + 19.5e6 * {self.u("cat", "c")},
        600e6 + pow({self.u("cat", "c")}, 2) * {4 * DAY_US})) AS c_acted_us,
    c_kind = 'review' AND c_decision = 'no_action' AS c_cleared,
    multiIf(c_kind = 'patrol', 'delete', c_kind IN ('refuse', 'block'), 'block_generation',
            c_kind = 'stop', 'stop_transmission', 'escalate') AS c_action0,
    if(c_kind = 'review', c_decision, c_action0) AS c_action1,
    NOT c_cleared AND startsWith(c_risk0, 'A.1.') AS c_illegal,
    c_acted_us + toInt64({15 * 60 * SECOND_US} + pow({self.u("crt", "c")}, 2) * {4 * DAY_US})
        AS c_report_us,
    c_rows = 2 AND c_illegal AND {self.u("crep", "c")} < 0.85
        AND c_report_us <= {self.last_us} AS c_reported,
    if(c_state = 0, if(c_kind = 'review', c_detected_us, c_acted_us), {later}) AS c_us0,
    {self.clamp("c_us0")} AS mo_us,
    c_illegal AND {self.u("crect", "c")} < 0.4 AS c_ticketed,
    intDiv(greatest(c_detected_us - {self.start_us}, 0), {fortnight}) AS c_slot,
    concat('RECT-{self.tag}-', toString(g_model_index), '-', toString(c_slot)) AS c_ticket,
    {self.start_us} + c_slot * {fortnight} - {25 * DAY_US} AS c_opened_us,
    c_opened_us + {30 * DAY_US} + toInt64({self.u("tclose", "c_ticket")} * {40 * DAY_US})
        AS c_closed_us,
    {self.u("tcl", "c_ticket")} < 0.6 AND c_closed_us <= mo_us AS c_closed,
    {self.serial("MOD", "c")} AS mo_case_id,
    {self.uuid("mo_us", "mod", "m")} AS mo_event_id,
    g_subject AS mo_subject,
    g_service AS mo_service,
    g_service_index AS mo_service_index,
    if(c_state = 1 AND c_cleared, NULL, c_risk0) AS mo_risk,
    if(c_state = 0, c_action0, c_action1) AS mo_action,
    c_state = 1 OR c_kind != 'review' AS mo_acted
FROM ({self.generation_layer(inner)})"""

    def cases(self, offset: int, count: int) -> str:
        body = self.case_layer(f"SELECT number AS m FROM numbers({offset}, {count})")
        ticket = "c_ticketed AND (c_state = 1 OR c_kind != 'review')"
        return f"""
SELECT
    mo_event_id AS event_id,
    {_ts("mo_us")} AS occurred_at,
    mo_service AS service_id,
    concat(mo_service, '-1') AS producer_id,
    'moderation_action' AS event_type,
    mo_case_id AS case_id,
    if(c_kind = 'refuse', 'user_input', 'generation') AS target,
    g_request_id AS target_ref,
    mo_subject AS subject,
    g_model AS model_name,
    g_version AS model_version,
    multiIf(c_kind = 'patrol', 'manual_review', c_kind = 'refuse', 'input_filter',
            'output_filter') AS detection_source,
    mo_risk AS risk_category,
    mo_action AS action,
    {_ts("c_detected_us")} AS detected_at,
    if(mo_acted, {_ts(self.clamp("c_acted_us"))}, NULL) AS acted_at,
    multiIf(c_kind = 'patrol',
            concat('patrol-', leftPad(toString(1 + {self.h("rv", "c")} % 12), 2, '0')),
            c_kind = 'refuse', 'input-filter-v7',
            c_kind = 'review' AND c_state = 1,
            concat('reviewer-', leftPad(toString(1 + {self.h("rv", "c")} % 40), 3, '0')),
            'output-filter-v5') AS reviewer,
    if({ticket}, c_ticket, NULL) AS rectification_ticket,
    if({ticket}, {_ts("c_opened_us")}, NULL) AS rectification_opened_at,
    if({ticket}, {_ts(f"c_opened_us + {90 * DAY_US}")}, NULL) AS rectification_due_at,
    if({ticket} AND c_closed, {_ts("c_closed_us")}, NULL) AS rectification_closed_at,
    c_state = 1 AND c_reported AS reported,
    if(reported, '{AUTHORITY}', NULL) AS authority,
    if(reported, {self.serial("BJWX", "c")}, NULL) AS report_reference,
    if(reported, {_ts("c_report_us")}, NULL) AS reported_at,
    if(c_kind = 'patrol' OR {self.u("seal", "c")} < 0.03,
       concat('sealed:', hex(SHA256(concat(mo_case_id, ':evidence')))), NULL) AS sealed_evidence,
    [concat('subject:', mo_subject), concat('case:', mo_case_id)] AS hold_keys
FROM ({body})"""

    # -- complaints ----------------------------------------------------------------------------

    def complaints(self, offset: int, count: int) -> str:
        """Complaint ``k`` has two or three rows: received, handled, feedback given (or handled
        and answered on the spot). About 5 % stay open, 8 % are answered after their due date."""
        inner = (
            f"SELECT number AS q, {self.states('q', 23, 'k')}, "
            f"{self.h('kg', 'k')} % {max(1, self.plan.generations)} AS g "
            f"FROM numbers({offset}, {count})"
        )
        body = self.generation_layer(inner)
        due = 15 * DAY_US

        def grounds(options: tuple[tuple[str | None, str, int], ...], index: Literal[0, 1]) -> str:
            chosen = self.pick_index(self.u("kgr", "k"), [w for _, _, w in options])
            return f"{_arr([o[index] for o in options])}[{chosen}]"

        return f"""
SELECT
    {self.uuid("k_us", "cmp", "q")} AS event_id,
    {_ts("k_us")} AS occurred_at,
    g_service AS service_id,
    concat(g_service, '-1') AS producer_id,
    'complaint' AS event_type,
    {self.serial("CMP", "k")} AS case_id,
    if(k_own, 'generation', 'published_content') AS target,
    if(k_own, g_request_id, concat('share-', lower(hex({self.h("share", "k")})))) AS target_ref,
    if(k_own, g_subject, {self.subject(self.skewed_subject("ko", "k"))}) AS subject,
    g_model AS model_name,
    g_version AS model_version,
    'user_report' AS detection_source,
    if(k_handled, if(k_own, {grounds(_OWN_GROUNDS, 0)}, {grounds(_THIRD_PARTY_GROUNDS, 0)}),
       NULL) AS risk_category,
    if(k_handled, if(k_own, {grounds(_OWN_GROUNDS, 1)}, {grounds(_THIRD_PARTY_GROUNDS, 1)}),
       'no_action') AS action,
    {_ts("k_received_us")} AS detected_at,
    if(k_handled, {_ts("k_handled_us")}, NULL) AS acted_at,
    if(k_handled, concat('complaints-', leftPad(toString(1 + {self.h("kr", "k")} % 15), 2, '0')),
       NULL) AS reviewer,
    false AS reported,
    case_id AS complaint_id,
    {self.pick(self.u("kch", "k"), _COMPLAINT_CHANNELS)} AS complaint_channel,
    {_ts("k_received_us")} AS complaint_received_at,
    {_ts(f"k_received_us + {due}")} AS complaint_due_by,
    acted_at AS complaint_handled_at,
    if(k_feedback, {_ts("k_feedback_us")}, NULL) AS complaint_feedback_at,
    if({self.u("kseal", "k")} < 0.3,
       concat('sealed:', hex(SHA256(concat(case_id, ':evidence')))), NULL) AS sealed_evidence,
    [concat('subject:', subject), concat('case:', case_id)] AS hold_keys
FROM (
    SELECT
        *,
        {self.u("kown", "k")} < 0.7 AS k_own,
        least(g_us + toInt64(120e6 + pow({self.u("kt", "k")}, 4) * {10 * DAY_US}),
              {self.last_us - HOUR_US}) AS k_received_us,
        {self.pick(self.u("kf", "k"), {"open": 5, "late": 8, "on_time": 87})} AS k_fate,
        k_received_us + toInt64(multiIf(
            k_fate = 'on_time', (0.05 + 0.55 * {self.u("kh", "k")}) * {due},
            k_fate = 'late', {due} - {self.u("kh", "k")} * {3 * DAY_US},
            {DAY_US} + {self.u("kh", "k")} * {5 * DAY_US})) AS k_handled_time,
        multiIf(
            k_fate = 'on_time', k_handled_time + toInt64({self.u("kb", "k")}
                * least({2 * DAY_US}, greatest(0, k_received_us + {due} - k_handled_time))),
            k_fate = 'late', k_received_us + {due} + toInt64({DAY_US / 2}
                + {self.u("kb", "k")} * {9.5 * DAY_US}),
            0) AS k_feedback_time,
        k_fate != 'open' AND (k_state = 2 OR (k_state = 1 AND k_rows = 2)) AS k_answers,
        multiIf(k_state = 0, k_received_us,
                k_answers, k_feedback_time,
                k_state = 1, k_handled_time,
                k_handled_time + {DAY_US}) AS k_time,
        {self.clamp("k_time")} AS k_us,
        k_state >= 1 AND k_handled_time <= k_us AS k_handled,
        k_handled_time AS k_handled_us,
        k_answers AND k_feedback_time <= k_us AS k_feedback,
        k_feedback_time AS k_feedback_us
    FROM ({body})
)"""

    # -- user sanctions ------------------------------------------------------------------------

    def sanctions(self, offset: int, count: int) -> str:
        """Sanction ``j`` is one step of the ladder against the subject of the moderation action
        it cites as evidence; a restriction or suspension may be lifted early (reinstatement,
        the same sanction id)."""
        src = (
            f"SELECT number AS s, {self.states('s', 13, 'j')}, "
            f"{self.h('sm', 'j')} % {max(1, self.plan.cases)} AS m FROM numbers({offset}, {count})"
        )
        body = self.case_layer(src)
        steps = {"warning": 55, "function_restriction": 20, "suspension": 15, "termination": 10}
        lifted = {"function_restriction": 55, "suspension": 45}
        until = (
            f"multiIf(j_action = 'warning', {30 * DAY_US}, "
            f"j_action = 'function_restriction', {14 * DAY_US}, {7 * DAY_US})"
        )
        functions = "[" + ", ".join(_arr(s.restricted_functions) for s in PROVIDER.services) + "]"
        lift = self.clamp(
            f"j_from_us + {20 * HOUR_US} + {self.u('jr', 'j')} "
            f"* greatest(0, {until} - {32 * HOUR_US})"
        )
        return f"""
SELECT
    {self.uuid("j_us", "san", "s")} AS event_id,
    {_ts("j_us")} AS occurred_at,
    mo_service AS service_id,
    concat(mo_service, '-1') AS producer_id,
    {self.serial("SAN", "j")} AS sanction_id,
    mo_subject AS subject,
    if(j_state = 1, 'reinstatement', j_action) AS action,
    ifNull(mo_risk, 'A.5.1') AS reason_category,
    if(j_state = 0 AND j_action = 'function_restriction', {functions}[mo_service_index], [])
        AS restricted_functions,
    if(j_state = 1, [],
       arrayConcat([toString(mo_event_id)],
                   if({self.u("jmiss", "j")} < 0.05,
                      [toString({self.uuid("j_from_us", "missing", "j")})], [])))
        AS evidence,
    {_ts("j_us")} AS effective_from,
    if(j_state = 0 AND j_action != 'termination', {_ts(f"j_from_us + {until}")}, NULL)
        AS effective_until,
    true AS records_preserved,
    j_state = 0 AND j_action = 'termination' AND startsWith(reason_category, 'A.1.')
        AS reported,
    if(reported, '{AUTHORITY}', NULL) AS authority,
    if(reported, {self.serial("BJWX-S", "j")}, NULL) AS report_reference,
    if(reported, {_ts("j_us")}, NULL) AS reported_at,
    [concat('subject:', mo_subject)] AS hold_keys
FROM (
    SELECT
        *,
        if(j_rows = 2, {self.pick(self.u("jl", "j"), lifted)},
           {self.pick(self.u("ja", "j"), steps)}) AS j_action,
        least(mo_us + toInt64(120e6 + pow({self.u("jd", "j")}, 2) * {12 * HOUR_US}),
              {self.last_us - SECOND_US}) AS j_from_us,
        if(j_state = 0, j_from_us, greatest(j_from_us + {SECOND_US}, {lift})) AS j_us
    FROM ({body})
)"""

    # -- data handling -------------------------------------------------------------------------

    def requests(self, offset: int, count: int) -> str:
        """Personal-information request ``r`` has two or three rows: received, in progress,
        completed or refused. About 5 % stay open and 12 % are closed after their due date."""
        due = 21 * DAY_US
        outcomes = "[" + ", ".join(_lit(v) for v in _PI_OUTCOMES.values()) + "]"
        kinds = _arr(list(_PI_OUTCOMES))
        return f"""
SELECT
    {self.uuid("r_us", "pir", "p")} AS event_id,
    {_ts("r_us")} AS occurred_at,
    {self.service("rs", "r")} AS service_id,
    concat(service_id, '-1') AS producer_id,
    'personal_information_request' AS event_type,
    {self.subject(self.skewed_subject("rk", "r"))} AS subject,
    {self.serial("PIR", "r")} AS request_id,
    r_kind AS request_kind,
    {_ts("r_received_us")} AS received_at,
    {_ts(f"r_received_us + {due}")} AS due_at,
    multiIf(r_state = 0, 'received', r_closes, if(r_refused, 'refused', 'completed'),
            'in_progress') AS status,
    if(r_closes, {_ts("r_closed_us")}, NULL) AS completed_at,
    if(r_closes,
       if(r_refused, {_lit("requester's identity could not be confirmed")},
          {outcomes}[indexOf({kinds}, r_kind)]), NULL) AS outcome,
    [concat('subject:', subject)] AS hold_keys
FROM (
    SELECT
        *,
        {self.pick(self.u("rkind", "r"), _PI_KINDS)} AS r_kind,
        {self.start_us} + toInt64({self.u("rt", "r")} * {self.span_us}) AS r_received_us,
        {self.pick(self.u("rf", "r"), {"open": 5, "late": 12, "on_time": 83})} AS r_fate,
        {self.u("rref", "r")} < 0.08 AS r_refused,
        r_received_us + {HOUR_US} + toInt64({self.u("rst", "r")} * {2 * DAY_US}) AS r_started_us,
        if(r_fate = 'late',
           r_received_us + {due} + toInt64({DAY_US / 2} + {self.u("rc", "r")} * {7.5 * DAY_US}),
           r_started_us + {2 * HOUR_US} + toInt64({self.u("rc", "r")}
               * greatest(0, r_received_us + {due} - r_started_us - {8 * HOUR_US})))
           AS r_closed_us,
        r_fate != 'open' AND (r_state = 2 OR (r_state = 1 AND r_rows = 2))
            AND r_closed_us <= {self.last_us} AS r_closes,
        multiIf(r_state = 0, r_received_us, r_closes, r_closed_us,
                {self.clamp(f"r_started_us + (r_state - 1) * {2 * DAY_US}")}) AS r_us
    FROM (SELECT number AS p, {self.states("p", 27, "r")} FROM numbers({offset}, {count}))
)"""

    def verifications(self, offset: int, count: int) -> str:
        """One identity verification per subject (up to the subject count), 3 % failed."""
        return f"""
SELECT
    {self.uuid("i_us", "idv", "i")} AS event_id,
    {_ts("i_us")} AS occurred_at,
    {self.service("is", "i")} AS service_id,
    concat(service_id, '-1') AS producer_id,
    'identity_verification' AS event_type,
    {self.subject(f"i % {self.plan.subjects}")} AS subject,
    {self.pick(self.u("im", "i"), _VERIFICATION_METHODS)} AS method,
    {self.u("iv", "i")} >= 0.03 AS verified,
    [concat('subject:', subject)] AS hold_keys
FROM (
    SELECT number AS i, {self.start_us} + toInt64({self.u("it", "i")} * {self.span_us}) AS i_us
    FROM numbers({offset}, {count})
)"""

    def acceptances(self, offset: int, count: int) -> str:
        """Every subject accepts the service agreement in round 0 (version 4.1); later rounds
        accept the versions published during the span (4.2, 4.3, ...), each in its own part of
        the span."""
        subjects = self.plan.subjects
        rounds = max(1, math.ceil(self.plan.acceptances / subjects))
        window = self.span_us // rounds
        at = self.clamp(
            f"{self.start_us} + intDiv(a, {subjects}) * {window} "
            f"+ toInt64({self.u('at', 'a')} * {window})"
        )
        return f"""
SELECT
    {self.uuid("a_us", "agr", "a")} AS event_id,
    {_ts("a_us")} AS occurred_at,
    {self.service("as", "a")} AS service_id,
    concat(service_id, '-1') AS producer_id,
    'agreement_acceptance' AS event_type,
    {self.subject(f"a % {subjects}")} AS subject,
    '{PROVIDER.agreement_id}' AS agreement_id,
    concat('4.', toString(1 + intDiv(a, {subjects}))) AS agreement_version,
    {_ts("a_us")} AS accepted_at,
    if({self.u("ach", "a")} < 0.15, 'web', 'app') AS channel,
    [concat('subject:', subject)] AS hold_keys
FROM (
    SELECT
        number AS a,
        {at} AS a_us
    FROM numbers({offset}, {count})
)"""

    def holds(self, offset: int, count: int) -> str:
        """Legal hold ``t`` is placed on a subject (75 %) or a moderation case, and some are
        released later."""
        cases = max(1, self.plan.cases * 10 // 17)
        return f"""
SELECT
    {self.uuid("t_us", "hold", "h")} AS event_id,
    {_ts("t_us")} AS occurred_at,
    '{COMPLIANCE_SERVICE_ID}' AS service_id,
    '{COMPLIANCE_SERVICE_ID}-1' AS producer_id,
    'legal_hold' AS event_type,
    if(t_subject, t_target, NULL) AS subject,
    {self.serial("HOLD", "t")} AS hold_id,
    if(t_subject, 'subject', 'case') AS hold_scope,
    t_target AS hold_target,
    if(t_state = 0, 'place', 'release') AS hold_action,
    if(t_subject, 'pending litigation on the account', 'authority investigation of the case')
        AS hold_reason,
    if({self.u("tby", "t")} < 0.5, 'legal-department', '{AUTHORITY}') AS requested_by,
    [concat(hold_scope, ':', t_target)] AS hold_keys
FROM (
    SELECT
        *,
        {self.u("ts", "t")} < 0.75 AS t_subject,
        if(t_subject, {self.subject(self.skewed_subject("tk", "t"))},
           {self.serial("MOD", f"{self.h('tc', 't')} % {cases}")}) AS t_target,
        {self.start_us} + toInt64({self.u("tt", "t")} * {self.span_us * 0.8}) AS t_placed_us,
        if(t_state = 0, t_placed_us,
           {self.clamp(f"t_placed_us + {DAY_US} + {self.u('tr', 't')} * {30 * DAY_US}")})
           AS t_us
    FROM (SELECT number AS h, {self.states("h", 13, "t")} FROM numbers({offset}, {count}))
)"""


# ----------------------------------------------------------------------------------------------
# the few rows built in Python: governance records, quarantine, findings


def _governance_rows(seed: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The model platform's and compliance office's records: training data intakes, annotation
    checks and safety evaluations of every model version (months before the span, re-evaluated
    monthly for filed text models), two retention purges and one disclosure. A few dozen rows."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def add(service: str, when: datetime, event_type: str, **detail: Any) -> None:
        rows.append(
            {
                "event_id": uuid.UUID(int=(int(when.timestamp() * 1000) << 80)
                                      | (0x7 << 76) | (0x2 << 62) | rng.getrandbits(62)),
                "occurred_at": when,
                "service_id": service,
                "producer_id": f"{service}-1",
                "event_type": event_type,
                "subject": None,
                "hold_keys": [],
                **detail,
            }
        )  # fmt: skip

    span = end - start
    for model in PROVIDER.models:
        key = (model.name, model.version)
        names = {"model_name": model.name, "model_version": model.version}
        datasets = [d for d in DATASETS[model.modality] if d.only_for in (None, key)]
        intake = start - timedelta(days=rng.uniform(150, 240))
        for dataset in datasets:
            intake += timedelta(days=rng.uniform(1, 12))
            add(
                GOVERNANCE_SERVICE_ID,
                intake,
                "training_data_intake",
                dataset_id=dataset.dataset_id,
                source=dataset.source,
                source_kind=dataset.kind.value,
                legal_basis=dataset.legal_basis,
                contains_personal_information=dataset.consent_basis is not None,
                consent_basis=dataset.consent_basis,
                size_bytes=dataset.size_bytes,
                record_count=dataset.record_count,
                **names,
            )
            if dataset.kind is DataSourceKind.PUBLIC_WEB and rng.random() < 0.5:
                continue
            checked = intake + timedelta(days=rng.uniform(10, 30))
            accuracy = 0.932 if key == ("xinghe-motion", "1.0") else rng.uniform(0.962, 0.992)
            add(
                GOVERNANCE_SERVICE_ID,
                checked,
                "annotation_quality_check",
                dataset_id=dataset.dataset_id,
                rules_version=f"annotation-rules-{model.modality.value}-4.{rng.randint(0, 3)}",
                sample_size=rng.randint(5, 20) * 100,
                sampled_accuracy=round(accuracy, 4),
                **names,
            )
        evaluations = [start - timedelta(days=rng.uniform(12, 45))]
        if model.filing_number is not None and model.modality is Modality.TEXT:
            evaluations += [start + span * (i + rng.random()) / 3 for i in range(3)]
        for when in evaluations:
            filed = model.filing_number is not None
            add(
                GOVERNANCE_SERVICE_ID,
                when,
                "safety_evaluation",
                generated_test_size=rng.randint(20, 50) * 100,
                qualified_rate=round(rng.uniform(0.925, 0.978) if filed else 0.88, 4),
                should_refuse_test_size=rng.randint(10, 20) * 100,
                refusal_rate=round(rng.uniform(0.955, 0.99) if filed else 0.931, 4),
                should_answer_test_size=rng.randint(10, 20) * 100,
                false_refusal_rate=round(rng.uniform(0.008, 0.045), 4),
                **names,
            )
    for fraction, scope, days in ((0.07, "generation_request_logs", 365),
                                  (0.55, "moderation_evidence_cache", 180)):  # fmt: skip
        when = start + span * fraction
        add(
            COMPLIANCE_SERVICE_ID,
            when,
            "retention_purge",
            scope=scope,
            cutoff=when - timedelta(days=days),
            records_purged=rng.randint(800_000, 1_600_000),
            reason=f"retention period of {days} days ended",
        )
    when = start + span * 0.64
    add(
        COMPLIANCE_SERVICE_ID,
        when,
        "authority_disclosure",
        authority=AUTHORITY,
        reference=f"BJWX-INSP-{when.year}-{rng.randint(10, 99):03d}",
        scope="moderation actions, complaints and user sanctions of the last quarter",
        records_disclosed=rng.randint(4000, 9000),
        legal_basis="Interim Measures for the Management of Generative AI Services art. 19",
    )
    return rows


# ----------------------------------------------------------------------------------------------
# the build


def build_synthetic_store(
    store: Store,
    events: int = 10_000_000,
    *,
    seed: int = 1,
    progress: Progress | None = None,
    end: datetime | None = None,
    optimize: bool = True,
) -> SyntheticSummary:
    """Fill ``store`` (migrated, and expected empty) with ``events`` synthetic events.

    Every row is generated by the engine (``INSERT ... SELECT ... FROM numbers()``, at most
    :data:`CHUNK` rows a statement) as a deterministic function of ``seed`` and its number, so
    the same seed and ``end`` give the same store. The events span the :data:`DAYS` days before
    ``end`` (default: now, to the second); governance records reach months before. ``events``
    is the number of rows of the four typed tables together (at least :data:`MIN_EVENTS`); the
    ``events`` table gets one row for each, ``batches`` one per :data:`BATCH_EVENTS` events of a
    producer, and ``legal_holds``, ``quarantine``, ``chain_findings`` and ``checkpoints`` a few
    rows more. ``optimize`` merges each table's parts at the end (``OPTIMIZE ... FINAL``; about
    half the build time at 10 million), as in a store that has run for a while. ``progress`` is
    called with one line per step. Raises ValueError for too few events.
    """
    began = time.perf_counter()
    say = progress or (lambda _line: None)
    db = store.database
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    start = end - timedelta(days=DAYS)
    end_us = int(end.timestamp()) * SECOND_US
    start_us = end_us - DAYS * DAY_US
    governance = _governance_rows(seed, start, end)
    plan = _Plan.of(events, len(governance))
    sql = _Sql(seed, plan, start_us, end_us)
    steps: dict[str, float] = {}
    settings = "SETTINGS insert_deduplicate = 0, max_insert_threads = 2"

    def chunked(table: str, kind: str, total: int, select: Callable[[int, int], str]) -> None:
        t0 = time.perf_counter()
        for offset in range(0, total, CHUNK):
            count = min(CHUNK, total - offset)
            body = select(offset, count)
            store.command(
                f"INSERT INTO {db}.{table} ({', '.join(_columns(body))}) {body} {settings}"
            )
            say(f"{kind}: {offset + count:,} of {total:,} rows")
        steps[kind] = steps.get(kind, 0.0) + time.perf_counter() - t0

    chunked("generations", "generation", plan.generations, sql.generations)
    chunked("moderation_actions", "moderation_action", plan.cases, sql.cases)
    chunked("moderation_actions", "complaint", plan.complaints, sql.complaints)
    chunked("user_sanctions", "user_sanction", plan.sanctions, sql.sanctions)
    chunked("data_handling", "personal_information_request", plan.requests, sql.requests)
    chunked("data_handling", "identity_verification", plan.verifications, sql.verifications)
    chunked("data_handling", "agreement_acceptance", plan.acceptances, sql.acceptances)
    chunked("data_handling", "legal_hold", plan.holds, sql.holds)
    t0 = time.perf_counter()
    store.insert(DATA_HANDLING, governance, token=f"bench-governance-{seed}")
    steps["governance"] = time.perf_counter() - t0
    say(f"governance: {len(governance)} rows")

    t0 = time.perf_counter()
    store.command(
        f"INSERT INTO {db}.legal_holds (hold_key, hold_id, active, occurred_at, event_id) "
        f"SELECT concat(assumeNotNull(hold_scope), ':', assumeNotNull(hold_target)), "
        f"assumeNotNull(hold_id), hold_action = 'place', occurred_at, event_id "
        f"FROM {db}.data_handling WHERE event_type = 'legal_hold'"
    )
    steps["legal_holds"] = time.perf_counter() - t0

    per_producer = _per_producer(store)
    batches = {p: max(1, math.ceil(n / BATCH_EVENTS)) for p, n in per_producer.items()}
    producers = sorted(per_producer)
    t0 = time.perf_counter()
    _fill_events(store, sql, batches)
    steps["events"] = time.perf_counter() - t0
    say(f"events: {sum(per_producer.values()):,} rows")
    t0 = time.perf_counter()
    _fill_batches(store, sql, producers, per_producer)
    _fill_trail(store, sql, producers)
    steps["trail"] = time.perf_counter() - t0
    say(f"batches: {sum(batches.values()):,} rows; quarantine, findings and checkpoints")

    if optimize:
        t0 = time.perf_counter()
        for table in (*FAMILY_OF, "events", "batches", "legal_holds"):
            store.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
            say(f"optimized {table}")
        steps["optimize"] = time.perf_counter() - t0

    counts = _counts(store)
    families = {FAMILY_OF[t]: counts[t] for t in FAMILY_OF}
    event_types = {
        str(row[0]): int(row[1])
        for row in store.query(
            f"SELECT event_type, count() FROM {db}.events GROUP BY event_type ORDER BY event_type"
        ).rows
    }
    return SyntheticSummary(
        events=sum(families.values()),
        subjects=plan.subjects,
        start=start,
        end=end,
        families=families,
        event_types=event_types,
        rows=counts,
        seconds=time.perf_counter() - began,
        steps=steps,
    )


def _columns(select: str) -> list[str]:
    """The output column names of one of the generated SELECTs (its top-level aliases)."""
    head = select[: select.index("\nFROM (")]
    names = []
    depth = 0
    token = ""
    quoted = escaped = False
    for char in head:
        token += char
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and char == ",":
            names.append(token[:-1])
            token = ""
    names.append(token)
    return [part.split()[-1] for part in names]


def _per_producer(store: Store) -> dict[str, int]:
    db = store.database
    union = " UNION ALL ".join(
        f"SELECT toString(producer_id) AS producer, count() AS n FROM {db}.{t} GROUP BY producer"
        for t in FAMILY_OF
    )
    rows = store.query(f"SELECT producer, sum(n) FROM ({union}) GROUP BY producer").rows
    return {str(p): int(n) for p, n in rows}


def _fill_events(store: Store, sql: _Sql, batches: Mapping[str, int]) -> None:
    """One ``events`` row per typed row, in the batch of its producer whose time it falls in."""
    db = store.database
    names = list(batches)
    counts = [batches[n] for n in names]
    for table, family in FAMILY_OF.items():
        event_type = {
            "generations": "'generation'",
            "user_sanctions": "'user_sanction'",
        }.get(table, "toString(event_type)")
        nb = (
            f"transform(toString(producer_id), {_arr(names)}, "
            f"CAST({counts} AS Array(Int64)), toInt64(1))"
        )
        store.command(
            f"""
INSERT INTO {db}.events (event_id, event_type, family, occurred_at, service_id, producer_id,
    schema_version, schema_fingerprint, batch_sequence, leaf_index, leaf_hash, event_bytes,
    hold_keys)
SELECT
    event_id,
    {event_type},
    '{family}',
    occurred_at,
    service_id,
    producer_id,
    1,
    toFixedString(substring(SHA256('{family}'), 1, 8), 8),
    toUInt64(1 + least({nb} - 1, greatest(0,
        intDiv((toUnixTimestamp64Micro(occurred_at) - {sql.start_us}) * {nb}, {sql.span_us})))),
    toUInt32(cityHash64(event_id) % {BATCH_EVENTS}),
    SHA256(concat('leaf:', toString(event_id))),
    concat('\\xC3\\x01', toString(event_id)),
    hold_keys
FROM {db}.{table}
SETTINGS insert_deduplicate = 0, max_insert_threads = 2"""
        )


def _fill_batches(
    store: Store, sql: _Sql, producers: Sequence[str], per_producer: Mapping[str, int]
) -> None:
    """Each producer's hash chain of batches, evenly spread over the span."""
    db = store.database
    for index, producer in enumerate(producers):
        events = per_producer[producer]
        count = max(1, math.ceil(events / BATCH_EVENTS))
        step = sql.span_us // count
        last = events - (count - 1) * BATCH_EVENTS
        p = _lit(producer)
        store.command(
            f"""
INSERT INTO {db}.batches (producer_id, sequence, key_id, prev_digest, digest, created_at,
    event_count, merkle_root, signature, topic, partition, offset, hold_keys)
SELECT
    {p},
    number + 1 AS seq,
    concat({p}, '-key-1'),
    if(seq = 1, toFixedString(repeat('\\0', 32), 32), SHA256(concat({p}, ':', toString(seq - 1)))),
    SHA256(concat({p}, ':', toString(seq))),
    {_ts(f"{sql.start_us} + number * {step} + toInt64({sql.u('bt', 'number')} * {step})")},
    if(seq = {count}, {last}, {BATCH_EVENTS}),
    SHA256(concat({p}, ':root:', toString(seq))),
    toFixedString(concat(SHA256(concat({p}, ':sig1:', toString(seq))),
                         SHA256(concat({p}, ':sig2:', toString(seq)))), 64),
    '{TOPIC}',
    {index % PARTITIONS},
    number * {len(producers)} + {index},
    []
FROM numbers({count})
SETTINGS insert_deduplicate = 0"""
        )


def _fill_trail(store: Store, sql: _Sql, producers: Sequence[str]) -> None:
    """A few bursts of quarantined messages, some chain findings, and a checkpoint per
    partition and hour."""
    db = store.database
    quarantined = 24 + sql.plan.events // 100_000
    findings = 6 + sql.plan.events // 1_000_000
    producer = f"{_arr(producers)}[1 + {sql.h('qp', 'intDiv(number, 6)')} % {len(producers)}]"
    reasons = _arr(_QUARANTINE_REASONS)
    burst = sql.u("qb", "intDiv(number, 6)")
    received = _ts(
        f"{sql.start_us} + toInt64({burst} * {sql.span_us - DAY_US})"
        f" + toInt64({sql.u('qo', 'number')} * 240e6)"
    )
    store.command(
        f"""
INSERT INTO {db}.quarantine (topic, partition, offset, received_at, reason, detail, producer_id,
    key_id, sequence, digest, advances_chain, message)
SELECT
    '{TOPIC}',
    number % {PARTITIONS},
    10000000000 + number,
    {received},
    {reasons}[1 + {sql.h("qr", "number")} % {len(_QUARANTINE_REASONS)}] AS reason,
    concat('synthetic ', reason),
    if({sql.u("qn", "number")} < 0.1, NULL, {producer}) AS producer,
    if(isNull(producer), NULL, concat(assumeNotNull(producer), '-key-1')),
    if(isNull(producer), NULL, toUInt64(1 + {sql.h("qs", "number")} % 1000)),
    if(isNull(producer), NULL, SHA256(concat('q:', toString(number)))),
    false,
    concat('\\x00not-a-batch:', toString(number))
FROM numbers({quarantined})
SETTINGS insert_deduplicate = 0"""
    )
    store.command(
        f"""
INSERT INTO {db}.chain_findings (producer_id, kind, expected_sequence, got_sequence, detail,
    topic, partition, offset, received_at)
SELECT
    {_arr(producers)}[1 + {sql.h("fp", "number")} % {len(producers)}],
    if(number % 3 = 2, 'chain_fork', 'chain_gap') AS kind,
    toUInt64(100 + {sql.h("fe", "number")} % 1000) AS expected,
    if(kind = 'chain_gap', expected + 1 + number % 4, expected - 1),
    concat('synthetic ', kind),
    '{TOPIC}',
    number % {PARTITIONS},
    20000000000 + number,
    {_ts(f"{sql.start_us} + toInt64({sql.u('ft', 'number')} * {sql.span_us})")}
FROM numbers({findings})
SETTINGS insert_deduplicate = 0"""
    )
    hours = DAYS * 24
    store.command(
        f"""
INSERT INTO {db}.checkpoints (topic, partition, tree_size, root_hash, next_offset, origin,
    key_id, signed_at, note)
SELECT
    '{TOPIC}',
    number % {PARTITIONS} AS part,
    1 + intDiv(number, {PARTITIONS}) * 7 AS size,
    SHA256(concat('root:', toString(part), ':', toString(size))),
    size * {len(producers)},
    concat('{LOG_ORIGIN}/{TOPIC}/', toString(part)) AS origin,
    'aigc-audit.checkpoint-key-1',
    {_ts(f"{sql.start_us} + intDiv(number, {PARTITIONS}) * {HOUR_US}")},
    concat(origin, '\\n', toString(size), '\\n', base64Encode(toString(number)), '\\n')
FROM numbers({hours * PARTITIONS})
SETTINGS insert_deduplicate = 0"""
    )


def _counts(store: Store) -> dict[str, int]:
    db = store.database
    tables = (
        *FAMILY_OF,
        "events",
        "batches",
        "legal_holds",
        "quarantine",
        "chain_findings",
        "checkpoints",
    )
    union = " UNION ALL ".join(f"SELECT '{t}', count() FROM {db}.{t}" for t in tables)
    return {str(t): int(n) for t, n in store.query(union).rows}


# ----------------------------------------------------------------------------------------------
# timing the pack


@dataclass(frozen=True)
class PackParams:
    """Parameters for every query of the pack that exist in the store's data: a subject with
    sanction steps (and sealed evidence, where one has it), one of its generations' request ids,
    a content label's produce id, a model with training data, and ``start``, from which the
    ``from`` of every window runs (the windows end at ``to``'s default, now; ``as_of`` and
    ``at`` stay now). Call it with a query for that query's parameters."""

    subject: str
    request_id: str
    produce_id: str
    model_name: str
    start: datetime

    def __call__(self, query: NamedQuery) -> dict[str, object]:
        given: dict[str, object] = {}
        for param in query.params:
            if param.name == "from":
                given["from"] = self.start
            elif param.default is None and param.name in (
                "subject",
                "request_id",
                "produce_id",
                "model_name",
            ):
                given[param.name] = getattr(self, param.name)
        return given


def sample_params(store: Store) -> PackParams:
    """A :class:`PackParams` of values read from ``store`` (empty strings where it has none)."""
    db = store.database

    def first(sql: str, params: Mapping[str, object] | None = None) -> Any:
        rows = store.query(sql, params).rows
        return rows[0][0] if rows and rows[0][0] is not None else ""

    subject = first(
        f"SELECT subject FROM {db}.user_sanctions WHERE subject IN (SELECT assumeNotNull(subject) "
        f"FROM {db}.moderation_actions WHERE isNotNull(sealed_evidence)) "
        "ORDER BY sanction_id LIMIT 1"
    ) or first(f"SELECT subject FROM {db}.generations ORDER BY event_id LIMIT 1")
    request_id = first(
        f"SELECT request_id FROM {db}.generations WHERE subject = {{s:String}} "
        "ORDER BY occurred_at LIMIT 1",
        {"s": subject},
    )
    produce_id = first(
        f"SELECT produce_id FROM {db}.generations WHERE isNotNull(produce_id) "
        "ORDER BY event_id LIMIT 1"
    )
    model_name = first(
        f"SELECT model_name FROM {db}.data_handling WHERE event_type = 'training_data_intake' "
        "GROUP BY model_name ORDER BY count() DESC, model_name LIMIT 1"
    )
    union = " UNION ALL ".join(f"SELECT min(occurred_at) AS t FROM {db}.{t}" for t in FAMILY_OF)
    oldest = first(f"SELECT min(t) FROM ({union})")
    start = datetime.fromisoformat(oldest) if oldest else datetime(1970, 1, 1)
    return PackParams(subject, request_id, produce_id, model_name, start.replace(tzinfo=UTC))


def time_query_pack(
    store: Store,
    params_for: ParamsFor | None = None,
    repeats: int = 1,
    *,
    names: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Seconds each query of the pack takes on ``store`` (the best of ``repeats`` runs, every
    row fetched and parsed), by query name. ``params_for(query)`` gives a query's parameters
    (default: :func:`sample_params` of the store); ``names`` limits the run to those queries;
    ``progress`` gets one line per query with its time and row count. The engine's query
    condition cache is off while timing (see :func:`_condition_cache`)."""
    params_for = params_for or sample_params(store)
    wanted = None if names is None else set(names)
    times: dict[str, float] = {}
    cached = _condition_cache(store, None)
    _condition_cache(store, False)
    try:
        for name, query in load_query_pack().items():
            if wanted is not None and name not in wanted:
                continue
            params = params_for(query)
            best = math.inf
            rows = 0
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                rows = len(run_query(store, query, params).rows)
                best = min(best, time.perf_counter() - t0)
            times[name] = best
            if progress is not None:
                progress(f"{name}: {best:.3f} s, {rows:,} rows")
    finally:
        if cached is not None:
            _condition_cache(store, cached)
    return times


def _condition_cache(store: Store, on: bool | None) -> bool | None:
    """Switch the engine's query condition cache on or off for the session (``on`` None: only
    read it); returns whether it was on, or None where the engine has no such cache.

    The cache remembers which granules matched a filter: a repeated run of a query would skip
    the scan that a query with another subject or request id has to do, so timings are taken
    without it.
    """
    try:
        rows = store.query("SELECT getSetting('use_query_condition_cache')").rows
        if on is not None:
            store.command(f"SET use_query_condition_cache = {int(on)}")
    except StoreError:
        return None
    return bool(rows[0][0])


# ----------------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="store directory (chDB)")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-build", action="store_true", help="time an existing store")
    parser.add_argument("--no-optimize", action="store_true", help="leave the parts unmerged")
    parser.add_argument("--query", action="append", help="time only this query (repeatable)")
    args = parser.parse_args(argv)

    from aigc_audit.consumers.store.embedded import EmbeddedStore

    def note(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    store = EmbeddedStore(args.store)
    try:
        store.migrate()
        if not args.no_build:
            summary = build_synthetic_store(
                store, args.events, seed=args.seed, optimize=not args.no_optimize, progress=note
            )
            print(f"built {summary.events:,} events in {summary.seconds:.1f} s")
            for step, seconds in summary.steps.items():
                print(f"  {step:<30} {seconds:7.1f} s")
            for table, rows in summary.rows.items():
                print(f"  {table:<30} {rows:>12,} rows")
        params = sample_params(store)
        print(f"params: {params}")
        times = time_query_pack(store, params, args.repeats, names=args.query, progress=note)
        for name, seconds in sorted(times.items(), key=lambda item: -item[1]):
            flag = "  over 1 s" if seconds > 1.0 else ""
            print(f"{name:<38} {seconds:8.3f} s{flag}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
