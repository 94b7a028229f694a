"""``aigc-audit bench``: every figure of the benchmark in one run, as one table and as JSON.

Each part runs in a fresh process (:mod:`consumers.bench.parts`). On Kafka the benchmark starts
its own broker (from Maven Central, as ``aigc-audit infra kafka up`` does) unless given one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_audit.consumers.errors import PlatformError

TARGETS = {
    "e2e_kafka_eps": (100_000, ">="),
    "client_eps": (100_000, ">="),
    "emit_p99_us": (20, "<"),
    "latency_p99_s": (2.0, "<"),
    "query_max_s": (1.0, "<"),
    "verify_eps": (200_000, ">="),
}
"""Issue 6's targets on the 2-core machine."""


class BenchError(PlatformError):
    """A part of the benchmark failed; the message names it."""


@dataclass(frozen=True)
class BenchPlan:
    events: int = 500_000
    """Events of the end-to-end runs on Kafka (and of the naive baseline's bus)."""
    export_events: int = 1_000_000
    """Events of the end-to-end run on the embedded bus, whose store is then exported and the
    bundle verified offline."""
    stage_events: int = 100_000
    naive_events: int = 50_000
    client_events: int = 200_000
    query_events: int = 10_000_000
    latency_rate: float = 10_000.0
    latency_seconds: float = 10.0
    bus: str = "kafka"
    bootstrap: str | None = None


def run_part(name: str, args: dict[str, Any], timeout_s: float = 1800.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "aigc_audit.consumers.bench.parts", name, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"bench part {name} failed: {tail}")
    result: dict[str, Any] = json.loads(lines[-1])  # a part prints one JSON object last
    return result


def run_bench(
    plan: BenchPlan, workdir: Path | None = None, say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every part, in order; returns the full figures (``summary`` holds the headline keys)."""
    say = say or (lambda _text: None)
    root = Path(tempfile.mkdtemp(prefix="aigc-bench-", dir=workdir))
    broker_dir: Path | None = None
    bootstrap = plan.bootstrap
    try:
        if plan.bus == "kafka" and bootstrap is None:
            from aigc_audit.infra.kafka import broker

            broker_dir = root / "kafka"
            say("starting a Kafka broker (KRaft, plaintext) for the benchmark")
            # Plaintext: the bench measures the pipeline, and its stages speak to the broker
            # with bare kafka-python clients; TLS+SCRAM is a secured deployment's cost.
            bootstrap = broker.start(broker_dir, secure=False).bootstrap
        kafka = plan.bus == "kafka"
        common = {"workdir": str(root), "bus": plan.bus, "bootstrap": bootstrap}
        result: dict[str, Any] = {"plan": plan.__dict__ | {"bootstrap": bootstrap}}
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("client", "client library alone", {"events": plan.client_events}),
            ("stages", "each stage alone", {**common, "events": plan.stage_events}),
            (
                "e2e_embedded",
                f"end to end, embedded bus, {plan.export_events:,} events (then export and verify)",
                {**common, "bus": "embedded", "events": plan.export_events, "export": True},
            ),
        ]
        if kafka:
            steps.append(("e2e_kafka", "end to end, Kafka", {**common, "events": plan.events}))
        steps += [
            (
                "latency",
                f"latency at {plan.latency_rate:,.0f} events/s offered",
                {**common, "rate": plan.latency_rate, "seconds": plan.latency_seconds},
            ),
            ("naive", "the naive baseline", {**common, "events": plan.naive_events}),
            ("queries", f"query pack over {plan.query_events:,} events", {**common}),
        ]
        part_of = {"e2e_embedded": "end_to_end", "e2e_kafka": "end_to_end"}
        for key, title, args in steps:
            if key == "queries":
                args = {**args, "events": plan.query_events}
            say(f"{title}…")
            began = time.perf_counter()
            result[key] = run_part(part_of.get(key, key), args)
            say(f"{title}: done in {time.perf_counter() - began:.0f} s")
        result["summary"] = summarise(result)
        return result
    finally:
        if broker_dir is not None:
            from aigc_audit.infra.kafka import broker

            broker.stop(broker_dir)
        shutil.rmtree(root, ignore_errors=True)  # stores and bundles: gigabytes at 1M events


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, under the keys the issue names."""
    ours_naive_bus = (
        result.get("e2e_kafka") if result["plan"]["bus"] == "kafka" else result["e2e_embedded"]
    )
    ours = ours_naive_bus["pipeline"]["eps"] if ours_naive_bus else None
    export = result["e2e_embedded"].get("export") or {}
    queries = result["queries"]["seconds"]
    return {
        "e2e_kafka_eps": (result.get("e2e_kafka") or {}).get("pipeline", {}).get("eps"),
        "e2e_embedded_eps": result["e2e_embedded"]["pipeline"]["eps"],
        "client_eps": result["client"]["eps"],
        "emit_p99_us": result["client"]["emit_p99_us"],
        "latency_p99_s": result["latency"]["p99_s"],
        "query_max_s": max(queries.values()),
        "verify_eps": export.get("verify_eps"),
        "naive_ratio": ours / result["naive"]["eps"] if ours else None,
    }


def target_met(key: str, value: float | None) -> bool | None:
    if key not in TARGETS or value is None:
        return None
    goal, sense = TARGETS[key]
    return value >= goal if sense == ">=" else value < goal
