"""End to end, emit to queryable: sustained throughput, latency at a fixed offered rate, wire and
disk sizes, and the export and offline verification of what was stored.

The producers run in a process of their own, as services would, and the materialiser in this
one: on two cores, that is the split a real deployment gets. Each measurement builds its own
deployment under ``workdir`` (and its own topics on Kafka), so runs never see each other's data.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings, load_settings
from aigc_audit.consumers.store.base import Store
from aigc_audit.producers.events import Channel, Generation, Modality, SafetyVerdict

SERVICES = ("chat", "canvas")
"""One producer process runs one audit client per service."""


@dataclass(frozen=True)
class PipelineFigures:
    bus: str
    events: int
    seconds: float
    eps: float
    bus_bytes_per_event: float
    store_bytes_per_event: float
    producer_cpu_us: float = 0.0
    """CPU time of the producer process per event, all its threads, over the run."""
    materialiser_cpu_us: float = 0.0
    """CPU time of the materialiser's process per event (chDB's threads included)."""


@dataclass(frozen=True)
class LatencyFigures:
    offered_eps: float
    events: int
    p50_s: float
    p99_s: float
    max_s: float


@dataclass(frozen=True)
class ExportFigures:
    events: int
    export_s: float
    bundle_bytes: int
    verify_s: float
    verify_eps: float
    verified: bool


def bench_settings(workdir: Path, bus: str, bootstrap: str | None, name: str) -> Settings:
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    return load_settings(
        environ={},
        data_dir=workdir / tag,
        bus=bus,
        bootstrap=bootstrap,
        topic_prefix=f"bench-{tag}",
        consumer_group=f"bench-{tag}",
        partitions=2 if bus == "kafka" else None,
        linger_ms=50,
    )


def generation(n: int, at: datetime | None = None) -> Generation:
    """A realistic generation event (the shape of the demo's text traffic)."""
    digest = n.to_bytes(32, "big")
    when: dict[str, Any] = {"occurred_at": at} if at is not None else {}
    return Generation(
        request_id=f"req-{n}",
        model_name="xinghe-chat",
        model_version="3.1",
        filing_number="Beijing-XingheChat-20240315",
        modality=Modality.TEXT,
        channel=Channel.APP,
        subject=f"s-{n % 50_000:05d}",
        input_sha256=digest,
        output_sha256=digest[::-1],
        input_tokens=40 + n % 400,
        output_tokens=120 + n % 900,
        explicit_label=True,
        safety_verdict=SafetyVerdict.PASSED,
        latency_ms=300 + n % 1000,
        **when,
    )


# -- the producer process ---------------------------------------------------------------------


class CountingWriter:
    """A bus writer that counts the bytes it hands on: the size of the messages on the wire
    (before the transport compresses them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bytes = 0

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.inner.publish(topic, key, value)
        self.bytes += len(value)

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.inner.publish_many(topic, items)
        self.bytes += sum(len(value) for _, value in items)

    def close(self) -> None:
        self.inner.close()


def _produce(
    settings: dict[str, Any],
    events: int,
    rate: float | None,
    ready: Any,
    start: Any,
    done: Any,
    counters: Any,
) -> None:
    """Emit ``events`` through one client per service, as fast as possible or at ``rate``
    events per second (then each event's ``occurred_at`` is the moment it is emitted)."""
    from aigc_audit.producers.client import AuditClient

    config = Settings(**settings)
    with Deployment(config) as deployment:
        writer = CountingWriter(deployment.writer)
        clients = [
            AuditClient(
                service_id=s,
                producer_id=f"{s}-1",
                key=deployment.producer_key(f"{s}-1"),
                bus=writer,
                topic=config.events_topic,
                state_dir=config.producer_state_dir,
                batch_size=config.batch_size,
                linger=config.linger_ms / 1000,
                # A burst as fast as possible: room for all of it, so the run measures the
                # pipeline, not the back-pressure bound (which would block the burst).
                max_queue_events=events,
                max_queue_bytes=1 << 40,
            )
            for s in SERVICES
        ]
        prepared = [generation(n) for n in range(events)] if rate is None else []
        ready.set()
        start.wait()
        cpu = time.process_time()
        began = time.perf_counter()
        for n in range(events):
            client = clients[n % len(clients)]
            if rate is None:
                client.emit(prepared[n])
                continue
            due = began + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            client.emit(generation(n, datetime.now(UTC)))
        for client in clients:
            client.close()
        counters[0] = writer.bytes
        counters[1] = time.process_time() - cpu
    done.set()


def _spawn_producer(
    settings: Settings, events: int, rate: float | None
) -> tuple[Any, Any, Any, Any]:
    """The producer process, its start and done events and its byte counter; the caller keeps
    all four (a dropped event's semaphore vanishes before the child can open it). Returns once
    the producer has built its events and opened its clients: none of that is the run's."""
    context = multiprocessing.get_context("spawn")
    ready, start, done = context.Event(), context.Event(), context.Event()
    counters = context.Array("d", 2)  # bytes handed to the bus, CPU seconds of the run
    process = context.Process(
        target=_produce,
        args=(settings.model_dump(), events, rate, ready, start, done, counters),
        daemon=True,
    )
    process.start()
    wait_until_ready(process, ready)
    return process, start, done, counters


def wait_until_ready(process: Any, ready: Any, timeout_s: float = 600.0) -> None:
    """Wait for a producer process to say it is ready; fail if it died or took too long."""
    deadline = time.monotonic() + timeout_s
    while not ready.wait(0.2):
        if not process.is_alive():
            raise RuntimeError(f"the producer process exited with {process.exitcode} early")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the producer process was not ready in {timeout_s:.0f} s")


def _materialise_until(
    deployment: Deployment, events: int, timeout_s: float, on_insert: Callable[[], None] | None
) -> float:
    materialiser = deployment.materialiser()
    deadline = time.monotonic() + timeout_s
    while materialiser.stats.events_materialised < events:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {materialiser.stats.events_materialised} of {events} events materialised "
                f"in {timeout_s:.0f} s"
            )
        materialiser.run_once(max_messages=1000, timeout_s=0.05)
        if on_insert is not None:
            on_insert()
    materialiser.checkpoint(force=True)
    return time.perf_counter()


def sustained(
    workdir: Path,
    bus: str,
    bootstrap: str | None,
    events: int,
    *,
    export: bool = False,
    timeout_s: float = 900.0,
) -> tuple[PipelineFigures, ExportFigures | None]:
    """Emit ``events`` as fast as one producer process can and materialise them here; the clock
    runs from the first emit to the moment the last event is queryable."""
    settings = bench_settings(workdir, bus, bootstrap, f"e2e-{bus}")
    with Deployment(settings) as deployment:
        deployment.ensure_topics()
        deployment.materialiser()  # registers the platform keys before the clock starts
        process, start, _done, counters = _spawn_producer(settings, events, None)
        began = time.perf_counter()
        cpu = time.process_time()
        start.set()
        ended = _materialise_until(deployment, events, timeout_s, None)
        materialiser_cpu = time.process_time() - cpu
        process.join(timeout=60)
        store = deployment.store()
        seconds = ended - began
        figures = PipelineFigures(
            bus=bus,
            events=events,
            seconds=seconds,
            eps=events / seconds,
            bus_bytes_per_event=counters[0] / events,
            store_bytes_per_event=_disk_bytes(store) / events,
            producer_cpu_us=counters[1] / events * 1e6,
            materialiser_cpu_us=materialiser_cpu / events * 1e6,
        )
        exported = _export_and_verify(deployment, workdir) if export else None
    return figures, exported


def latency(
    workdir: Path,
    bus: str,
    bootstrap: str | None,
    *,
    rate: float = 10_000.0,
    seconds: float = 10.0,
    timeout_s: float = 300.0,
) -> LatencyFigures:
    """Offer ``rate`` events per second for ``seconds``; each event's latency runs from its
    emit (its ``occurred_at``) to the end of the insert that made it queryable."""
    events = int(rate * seconds)
    settings = bench_settings(workdir, bus, bootstrap, f"latency-{bus}")
    samples: list[float] = []
    with Deployment(settings) as deployment:
        deployment.ensure_topics()
        store = deployment.store()
        _stamp_inserts(store, samples)
        deployment.materialiser()
        process, start, _done, _bytes = _spawn_producer(settings, events, rate)
        start.set()
        _materialise_until(deployment, events, timeout_s, None)
        process.join(timeout=60)
    samples.sort()
    return LatencyFigures(
        offered_eps=rate,
        events=len(samples),
        p50_s=statistics.median(samples),
        p99_s=samples[int(0.99 * (len(samples) - 1))],
        max_s=samples[-1],
    )


def _stamp_inserts(store: Store, samples: list[float]) -> None:
    """Wrap ``store.insert``, and the engine's insert of generations, so that every ``events``
    row inserted records its latency (this part runs in a process of its own)."""
    from aigc_audit.consumers.ingest import engine_path as generation_ingest

    real_insert = store.insert
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def insert(table: Any, rows: Sequence[Mapping[str, Any]], *, token: str) -> None:
        real_insert(table, rows, token=token)
        if table.name == "events":
            now = (datetime.now(UTC) - epoch) / timedelta(seconds=1)
            samples.extend(now - _seconds(r["occurred_at"], epoch) for r in rows)

    store.insert = insert  # type: ignore[method-assign]  # timed by patching the instance
    engine_insert = generation_ingest.GenerationIngest.insert

    def insert_by_engine(
        self: generation_ingest.GenerationIngest,  # named as the method it replaces
        poll: generation_ingest.PollGenerations,
        accepted: Iterable[int],
        token: str,
    ) -> int:
        accepted = list(accepted)
        inserted = engine_insert(self, poll, accepted, token)
        now = time.time()  # taken before the read-back below, which only the benchmark does
        times = generation_ingest.occurred_at(self.store, poll, accepted)
        samples.extend(now - at / 1e6 for at in times)
        return inserted

    generation_ingest.GenerationIngest.insert = insert_by_engine  # type: ignore[method-assign]  # timed by patching the class


def _seconds(at: datetime | int, epoch: datetime) -> float:
    # Rows carry times as integer microseconds (see consumers.store.rows); datetimes are taken too.
    if isinstance(at, int):
        return at / 1e6
    return (at - epoch) / timedelta(seconds=1)


def _disk_bytes(store: Store) -> float:
    rows = store.query(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {d:String} AND active",
        {"d": store.database},
    ).rows
    return float(rows[0][0] or 0)


def _export_and_verify(deployment: Deployment, workdir: Path) -> ExportFigures:
    from aigc_audit.consumers.bundle.export import export_bundle
    from aigc_audit.consumers.bundle.verify import verify_bundle
    from aigc_audit.consumers.query.selection import Selection
    from aigc_audit.producers.signing import load_public_key

    store = deployment.store()
    bundle = workdir / f"bundle-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    summary = export_bundle(
        store, Selection(), bundle, export_key=deployment.export_key(), exported_by="bench"
    )
    export_s = time.perf_counter() - began
    began = time.perf_counter()
    result = verify_bundle(bundle, load_public_key(deployment.settings.root_public_key_path))
    verify_s = time.perf_counter() - began
    shutil.rmtree(bundle, ignore_errors=True)
    return ExportFigures(
        events=summary.events,
        export_s=export_s,
        bundle_bytes=summary.bytes,
        verify_s=verify_s,
        verify_eps=summary.events / verify_s,
        verified=result.ok,
    )
