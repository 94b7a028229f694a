"""One part of the benchmark, run in a process of its own
(``python -m aigc_audit.consumers.bench.parts NAME JSON``): chDB allows one store per process,
and a part must not inherit another part's warm caches or background merges. Prints one JSON
line with the part's figures."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any


def stages(args: dict[str, Any]) -> dict[str, Any]:
    from aigc_audit.consumers.bench.stages import measure_stages, measure_wire_sizes

    figures = measure_stages(
        args["events"], bus=args["bus"], bootstrap=args["bootstrap"], workdir=Path(args["workdir"])
    )
    wire = measure_wire_sizes()
    return {
        "stages": [{**dataclasses.asdict(f), "ratio": f.ratio, "label": f.label} for f in figures],
        "wire": dataclasses.asdict(wire),
    }


def end_to_end(args: dict[str, Any]) -> dict[str, Any]:
    from aigc_audit.consumers.bench.pipeline import sustained

    figures, exported = sustained(
        Path(args["workdir"]),
        args["bus"],
        args["bootstrap"],
        args["events"],
        export=args.get("export", False),
    )
    return {
        "pipeline": dataclasses.asdict(figures),
        "export": dataclasses.asdict(exported) if exported else None,
    }


def latency(args: dict[str, Any]) -> dict[str, Any]:
    from aigc_audit.consumers.bench.pipeline import latency as measure

    figures = measure(
        Path(args["workdir"]),
        args["bus"],
        args["bootstrap"],
        rate=args["rate"],
        seconds=args["seconds"],
    )
    return dataclasses.asdict(figures)


def naive(args: dict[str, Any]) -> dict[str, Any]:
    from aigc_audit.consumers.bench.naive import naive_end_to_end

    eps = naive_end_to_end(Path(args["workdir"]), args["bus"], args["bootstrap"], args["events"])
    return {"eps": eps, "events": args["events"], "bus": args["bus"]}


def client(args: dict[str, Any]) -> dict[str, Any]:
    from aigc_audit.consumers.bench.client_speed import client_speed

    return dataclasses.asdict(client_speed(args["events"]))


def queries(args: dict[str, Any]) -> dict[str, Any]:
    from aigc_audit.consumers.bench.query_store import build_synthetic_store, time_query_pack
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    path = Path(args["workdir"]) / f"queries-{args['events']}"
    shutil.rmtree(path, ignore_errors=True)
    store = EmbeddedStore(path)
    try:
        store.migrate()
        began = time.perf_counter()
        build_synthetic_store(store, args["events"])
        built = time.perf_counter() - began
        times = time_query_pack(store)
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)
    return {"events": args["events"], "build_s": built, "seconds": times}


PARTS = {
    "stages": stages,
    "end_to_end": end_to_end,
    "latency": latency,
    "naive": naive,
    "client": client,
    "queries": queries,
}


def main() -> None:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    result = PARTS[name](args)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
