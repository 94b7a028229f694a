"""The demo: a simulated provider's month, emitted, materialised and inspected, on one machine.

It is the whole product in one command: services emit signed events through the client
library, the materialiser verifies and stores them, and the inspection query pack answers what
an inspector would ask.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings
from aigc_audit.consumers.demo.simulation import SimulationPlan, SimulationSummary, simulate
from aigc_audit.consumers.errors import PlatformError
from aigc_audit.consumers.ingest.materialiser import MaterialiseStats
from aigc_audit.consumers.keys.key_files import make_key_dir
from aigc_audit.consumers.query.pack import NamedQuery, bind_params, load_query_pack, run_query
from aigc_audit.consumers.store.base import QueryResult, Store
from aigc_audit.producers.client import AuditClient
from aigc_audit.producers.events import AuditEvent

DEMO_MARKER = ".demo"


class DemoError(PlatformError):
    """The demo cannot run here (for instance, the data directory holds real data)."""


@dataclass
class DemoResult:
    summary: SimulationSummary
    emitted: int
    materialised: int
    quarantined: int
    stats: MaterialiseStats
    queries: dict[str, QueryResult] = field(default_factory=dict)
    query_seconds: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    inspection: DemoInspection | None = None


@dataclass
class DemoInspection:
    """What the demo hands an inspector: a bundle, its report, the key to verify it with."""

    bundle: Path
    report: Path
    trust: Path
    exported_events: int
    bundle_bytes: int
    checks: list[str]
    verified: bool


KEEP = frozenset({"kafka"})
"""What the demo leaves in place: a broker started by `aigc-audit infra kafka up` lives there."""


def prepare_data_dir(data_dir: Path, key_dir: Path | None = None) -> None:
    """Start the demo from nothing, but never wipe a directory the demo did not create.

    ``key_dir`` (outside the data directory) is started afresh the same way: keys kept from
    the last demo would sign for registrations the wiped bus no longer holds.
    """
    for directory, keep, option in (
        (data_dir, KEEP, "--data-dir"),
        (key_dir, (), "AIGC_AUDIT_KEY_DIR"),
    ):
        if directory is not None:
            _wipe_if_demo(directory, keep, option)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text("created by `aigc-audit demo`; wiped by the next demo\n")
    if key_dir is not None:
        make_key_dir(key_dir)
        (key_dir / DEMO_MARKER).write_text("created by `aigc-audit demo`; wiped by the next demo\n")


def _wipe_if_demo(directory: Path, keep: Iterable[str], option: str) -> None:
    kept = set(keep)
    entries = [p for p in directory.iterdir() if p.name not in kept] if directory.exists() else []
    if not entries:
        return
    if not (directory / DEMO_MARKER).exists():
        raise DemoError(
            f"{directory} holds data that is not the demo's; run the demo with "
            f"{option} pointing elsewhere"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def reset_demo_topics(settings: Settings) -> None:
    """On Kafka the demo starts from empty topics too, or the last demo's batches (signed by
    keys of a root that no longer exists) would land in quarantine."""
    if settings.bus != "kafka" or settings.bootstrap is None:
        return
    from aigc_audit.producers.transports.kafka_topics import delete_consumer_group, delete_topics

    admin = settings.kafka_security("admin")  # on a secured cluster: the admin principal
    topics = [settings.events_topic, settings.keys_topic]
    delete_topics(settings.bootstrap, topics, security=admin)
    delete_consumer_group(settings.bootstrap, settings.consumer_group, security=admin)


def emit_traffic(
    deployment: Deployment,
    plan: SimulationPlan,
    on_event: Callable[[int], None] | None = None,
) -> SimulationSummary:
    """Run the simulated provider, one audit client (producer) per service."""
    clients: dict[str, AuditClient] = {}
    count = 0

    def emit(service_id: str, event: AuditEvent) -> uuid.UUID:
        nonlocal count
        client = clients.get(service_id)
        if client is None:
            client = clients[service_id] = deployment.client(service_id, f"{service_id}-1")
        count += 1
        if on_event is not None and count % 500 == 0:
            on_event(count)
        return client.emit(event)

    summary = simulate(plan, emit)
    for client in clients.values():
        client.close()
    if on_event is not None:
        on_event(count)
    return summary


def demo_params(store: Store, plan: SimulationPlan) -> dict[str, Any]:
    """Values for the query pack's parameters that make each query show something."""
    db = store.database

    def first(sql: str) -> Any:
        rows = store.query(sql).rows
        return rows[0][0] if rows else ""

    earliest = first(f"SELECT min(occurred_at) FROM {db}.events")
    return {
        # Governance records (training data, annotation) predate the simulated month.
        "from": earliest or plan.start,
        # Batches are stamped with the time they were made, now, which may be after the plan's
        # simulated month; a window ending now covers both.
        "to": max(plan.as_of, datetime.now(UTC)),
        "as_of": plan.as_of,
        "at": plan.as_of,
        "subject": first(
            f"SELECT subject FROM {db}.user_sanctions GROUP BY subject "
            "ORDER BY count() DESC, subject LIMIT 1"
        ),
        "request_id": first(
            f"SELECT target_ref FROM {db}.moderation_actions WHERE target = 'generation' "
            "AND event_type = 'moderation_action' ORDER BY detected_at LIMIT 1"
        ),
        "produce_id": first(
            f"SELECT produce_id FROM {db}.generations WHERE produce_id IS NOT NULL "
            "ORDER BY occurred_at LIMIT 1"
        ),
        "model_name": first(
            f"SELECT model_name FROM {db}.generations GROUP BY model_name "
            "ORDER BY count() DESC, model_name LIMIT 1"
        ),
    }


def run_demo(
    settings: Settings,
    plan: SimulationPlan,
    *,
    on_emit: Callable[[int], None] | None = None,
    on_materialise: Callable[[MaterialiseStats], None] | None = None,
    on_query: Callable[[NamedQuery], None] | None = None,
) -> DemoResult:
    prepare_data_dir(settings.data_dir, settings.keys_dir)
    reset_demo_topics(settings)
    seconds: dict[str, float] = {}
    with Deployment(settings) as deployment:
        t0 = time.perf_counter()
        summary = emit_traffic(deployment, plan, on_emit)
        seconds["emit"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        materialiser = deployment.materialiser()
        stats = materialiser.run_until_idle(on_materialise)
        seconds["materialise"] = time.perf_counter() - t0

        store = deployment.store()
        db = store.database
        materialised = int(store.query(f"SELECT count() FROM {db}.events").rows[0][0])
        quarantined = int(store.query(f"SELECT count() FROM {db}.quarantine").rows[0][0])

        t0 = time.perf_counter()
        context = demo_params(store, plan)
        results: dict[str, QueryResult] = {}
        query_seconds: dict[str, float] = {}
        for name, query in sorted(load_query_pack().items()):
            if on_query is not None:
                on_query(query)
            given = {p.name: context[p.name] for p in query.params if p.name in context}
            q0 = time.perf_counter()
            results[name] = run_query(store, query, bind_params(query, given))
            query_seconds[name] = time.perf_counter() - q0
        seconds["queries"] = time.perf_counter() - t0

        inspection = inspect(deployment, seconds)

    return DemoResult(
        summary=summary,
        emitted=summary.total,
        materialised=materialised,
        quarantined=quarantined,
        stats=stats,
        queries=results,
        query_seconds=query_seconds,
        seconds=seconds,
        inspection=inspection,
    )


INSPECTION_DIR = "inspection"


def inspect(deployment: Deployment, seconds: dict[str, float]) -> DemoInspection:
    """An inspection of the whole month: the report, an export bundle holding it, and the
    bundle verified the way an inspector would, with nothing but the root public key."""
    from aigc_audit.consumers.bundle.export import export_bundle
    from aigc_audit.consumers.bundle.verify import format_checks, verify_bundle
    from aigc_audit.consumers.query.selection import Selection
    from aigc_audit.consumers.report import build_report
    from aigc_audit.producers.signing import load_public_key

    settings = deployment.settings
    store = deployment.store()
    folder = settings.data_dir / INSPECTION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    selection = Selection()

    t0 = time.perf_counter()
    report = build_report(store, selection)
    report_path = folder / "report.html"
    report_path.write_text(report.html, encoding="utf-8")
    seconds["report"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bundle = folder / "bundle"
    summary = export_bundle(
        store,
        selection,
        bundle,
        export_key=deployment.export_key(),
        exported_by="aigc-audit demo",
        report_html=report.html,
    )
    seconds["export"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    verification = verify_bundle(bundle, load_public_key(settings.root_public_key_path))
    seconds["verify_bundle"] = time.perf_counter() - t0
    return DemoInspection(
        bundle=bundle,
        report=report_path,
        trust=settings.root_public_key_path,
        exported_events=summary.events,
        bundle_bytes=sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()),
        checks=format_checks(verification),
        verified=verification.ok,
    )
