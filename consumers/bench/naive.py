"""The obvious design, measured in the same run as ours: one bus message per event, each event
signed on its own, and the consumer verifying each signature and inserting once per poll.

It keeps the same guarantees an auditor would ask of a naive trail (every event signed, every
signature checked, every event stored), and none of ours that cost nothing extra (no Merkle
roots, no chain, no checkpoints), so the ratio says what batching and one signature per batch
buy.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings
from aigc_audit.consumers.bench.pipeline import (
    SERVICES,
    bench_settings,
    generation,
    wait_until_ready,
)
from aigc_audit.consumers.store.rows import generation_row
from aigc_audit.consumers.store.tables import GENERATIONS
from aigc_audit.producers.codec import default_catalogue
from aigc_audit.producers.signing import SigningKey, verify_signature

SIGNATURE = 64
CHUNK = 1000
"""Messages handed to the bus writer at once (still one message per event)."""


def _produce(settings: dict[str, Any], events: int, key_pem: bytes, ready: Any, start: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    config = Settings(**settings)
    private = serialization.load_pem_private_key(key_pem, password=None)
    key = SigningKey(private)  # type: ignore[arg-type]  # the bench's own key: Ed25519
    catalogue = default_catalogue()
    prepared = [
        generation(n).to_record(service_id=SERVICES[0], producer_id=f"{SERVICES[0]}-1")
        for n in range(events)
    ]
    with Deployment(config) as deployment:
        writer = deployment.writer
        ready.set()
        start.wait()
        pending: list[tuple[bytes | None, bytes]] = []
        for record in prepared:
            encoded = catalogue.encode("aigc.audit.Generation", record)
            pending.append((b"naive", key.sign(encoded) + encoded))
            if len(pending) >= CHUNK:
                writer.publish_many(config.events_topic, pending)
                pending = []
        if pending:
            writer.publish_many(config.events_topic, pending)


def naive_end_to_end(
    workdir: Path, bus: str, bootstrap: str | None, events: int, timeout_s: float = 900.0
) -> float:
    """Events per second, emit to queryable, of the naive design on ``bus``."""
    from cryptography.hazmat.primitives import serialization

    settings = bench_settings(workdir, bus, bootstrap, f"naive-{bus}")
    key = SigningKey.generate()
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    catalogue = default_catalogue()
    with Deployment(settings) as deployment:
        deployment.ensure_topics()
        store = deployment.store()
        reader, _ = deployment.bus_readers()
        context = multiprocessing.get_context("spawn")
        ready, start = context.Event(), context.Event()
        process = context.Process(
            target=_produce,
            args=(settings.model_dump(), events, pem, ready, start),
            daemon=True,
        )
        process.start()
        wait_until_ready(process, ready)  # its records built: that is not the run's
        began = time.perf_counter()
        start.set()
        stored = 0
        deadline = time.monotonic() + timeout_s
        while stored < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"naive: only {stored} of {events} events stored")
            messages = reader.poll(max_messages=CHUNK, timeout_s=0.05)
            rows = []
            for message in messages:
                signature, encoded = message.value[:SIGNATURE], message.value[SIGNATURE:]
                verify_signature(key.public_key, encoded, signature)
                _, record = catalogue.decode(encoded)
                rows.append({**generation_row(record), "hold_keys": []})
            if rows:
                store.insert(GENERATIONS, rows, token=f"naive-{stored}")
                reader.commit()
                stored += len(rows)
        seconds = time.perf_counter() - began
        process.join(timeout=60)
    return events / seconds
