"""The benchmark's summary: the headline keys the issue names, and the targets they meet."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from aigc_audit.consumers.bench.run import summarise, target_met
from aigc_audit.consumers.cli.bench import figures_table


def result(bus: str = "kafka") -> dict[str, Any]:
    pipeline = {"events": 1000, "eps": 50_000.0, "bus_bytes_per_event": 217.0}
    pipeline["store_bytes_per_event"] = 190.0
    pipeline["producer_cpu_us"] = 10.5
    pipeline["materialiser_cpu_us"] = 14.25
    return {
        "plan": {"bus": bus},
        "client": {"eps": 120_000.0, "emit_p50_us": 2.0, "emit_p99_us": 9.0, "emit_max_us": 40},
        "stages": {"stages": []},
        "e2e_embedded": {
            "pipeline": {**pipeline, "eps": 30_000.0},
            "export": {
                "events": 1000,
                "export_s": 1.0,
                "bundle_bytes": 10**6,
                "verify_s": 0.1,
                "verify_eps": 10_000.0,
                "verified": True,
            },
        },
        "e2e_kafka": {"pipeline": pipeline} if bus == "kafka" else None,
        "latency": {"offered_eps": 10_000.0, "p50_s": 0.1, "p99_s": 2.5, "max_s": 3.0},
        "naive": {"eps": 5_000.0, "bus": bus},
        "queries": {"events": 10_000, "build_s": 1.0, "seconds": {"a": 0.2, "b": 1.4}},
    }


def test_summary_holds_every_headline_key() -> None:
    summary = summarise(result())
    assert summary == {
        "e2e_kafka_eps": 50_000.0,
        "e2e_embedded_eps": 30_000.0,
        "client_eps": 120_000.0,
        "emit_p99_us": 9.0,
        "latency_p99_s": 2.5,
        "query_max_s": 1.4,
        "verify_eps": 10_000.0,
        "naive_ratio": 10.0,  # ours on the chosen bus (Kafka) over the naive run on it
    }


def test_on_the_embedded_bus_the_ratio_compares_embedded_runs() -> None:
    summary = summarise(result("embedded"))
    assert summary["e2e_kafka_eps"] is None
    assert summary["naive_ratio"] == 6.0


def test_targets_read_in_their_direction() -> None:
    assert target_met("client_eps", 100_000) is True
    assert target_met("client_eps", 99_999) is False
    assert target_met("emit_p99_us", 19.9) is True
    assert target_met("emit_p99_us", 20) is False
    assert target_met("latency_p99_s", None) is None
    assert target_met("naive_ratio", 3.0) is None  # not a target


def test_the_table_shows_every_query_and_the_verification() -> None:
    data = result()
    data["summary"] = summarise(data)
    table = figures_table(data)
    cells = [str(c) for column in table.columns for c in column._cells]
    assert any("b over 10,000 events" in c for c in cells)
    assert "10.5 / 14.2" in cells  # where the CPU of an end-to-end event goes
    assert "verified" in cells


def test_a_stage_keeps_its_bus_in_the_printed_table() -> None:
    data = result()
    data["stages"]["stages"] = [
        {
            "name": "bus produce",
            "label": "bus produce [kafka]",
            "ours_eps": 1.0,
            "library_eps": 2.0,
            "library": "kafka.KafkaProducer",
            "ratio": 0.5,
        }
    ]
    data["summary"] = summarise(data)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(figures_table(data))
    assert "bus produce [kafka]" in console.export_text()
