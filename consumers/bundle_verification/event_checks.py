"""Checks 6 and 7: every event's bytes proven in its batch, decoded under the bundled schemas
and matching the JSON Lines copy; the manifest's counts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from fastavro import reader as avro_reader
from fastavro.schema import to_parsing_canonical_form

from consumers.bundle_verification.inclusion import BatchState, included
from consumers.bundle_verification.result import Problems
from consumers.bundle_verification.source import reason_of
from consumers.bundle_verification.verifier_base import VerifierBase, same_json
from consumers.export import bundle_format as fmt
from producers.codec import SchemaCatalogue
from producers.errors import AuditError


class EventChecks(VerifierBase):
    # -- 6 ----------------------------------------------------------------------------------

    def _check_events(self, problem: Problems) -> str:
        """6. events: every event is in its signed batch and decodes as the JSON copy says"""
        self.found["events"] = 0
        self.found["events_by_family"] = {}
        catalogue: SchemaCatalogue | None = None
        if not any(n.startswith(f"{fmt.SCHEMAS_DIR}/") for n in self.source.names()):
            problem(f"the bundle has no {fmt.SCHEMAS_DIR}/: events cannot be decoded")
        else:
            try:
                catalogue = SchemaCatalogue(self.source.schemas_root())
            except AuditError as exc:
                problem(f"the bundled schemas do not load: {exc}")
        stems = {
            PurePosixPath(n).stem
            for n in self.source.names()
            if n.startswith(f"{fmt.EVENTS_DIR}/") and n.endswith((".avro", ".jsonl"))
        }
        listed = self.manifest.get("files") if self.manifest else None
        for entry in listed if isinstance(listed, list) else ():
            name = entry.get("path") if isinstance(entry, Mapping) else None
            if isinstance(name, str) and name.startswith(f"{fmt.EVENTS_DIR}/"):
                stems.add(PurePosixPath(name).stem)
        for stem in sorted(stems):
            family = fmt.FAMILY_BY_STEM.get(stem)
            if family is None:
                problem(f"{fmt.EVENTS_DIR}/{stem}.* is not an event family file")
                continue
            self.found["events_by_family"][stem] = self._check_family(
                stem, family, catalogue, problem
            )
        self.found["events"] = sum(self.found["events_by_family"].values())
        families = ", ".join(f"{n} {s}" for s, n in self.found["events_by_family"].items())
        return (
            f"{self.found['events']} events ({families or 'none'}): each proven in its signed "
            "batch, decoded with the bundled schemas, matching the JSON Lines copy"
        )

    def _jsonl_lines(self, name: str, problem: Problems) -> Iterator[str] | None:
        if not self.source.has(name):
            problem(f"{name} is missing")
            return None

        def lines() -> Iterator[str]:
            try:
                with self.source.open(name) as fh:
                    for raw in fh:
                        yield raw.decode("utf-8").rstrip("\r\n")
            except Exception as exc:  # damaged member, bad UTF-8
                problem(f"{name} cannot be read ({reason_of(exc)})")

        return lines()

    def _check_family(
        self, stem: str, family: str, catalogue: SchemaCatalogue | None, problem: Problems
    ) -> int:
        avro_name, jsonl_name = fmt.avro_path(stem), fmt.jsonl_path(stem)
        if not self.source.has(avro_name):
            problem(f"{avro_name} is missing")
            return 0
        lines = self._jsonl_lines(jsonl_name, problem)
        n = 0
        try:
            fh = self.source.open(avro_name)
        except Exception as exc:  # a damaged zip member
            problem(f"{avro_name} cannot be read ({reason_of(exc)})")
            return 0
        with fh:
            try:
                records = avro_reader(fh)
                writer_schema = to_parsing_canonical_form(records.writer_schema)
            except Exception as exc:
                problem(f"{avro_name} is not an Avro container file ({reason_of(exc)})")
                return 0
            if writer_schema != EXPORTED_CANONICAL:
                problem(f"{avro_name} does not hold {fmt.EXPORTED_EVENT} records")
                return 0
            try:
                n = self._check_records(avro_name, family, records, lines, catalogue, problem)
            except Damaged as exc:
                problem(f"{avro_name} is damaged after record {exc.count} ({exc.reason})")
                n = exc.count
        if lines is not None:
            extra = sum(1 for _ in lines)
            if extra:
                problem(f"{jsonl_name} has {extra} more lines than {avro_name} has events")
        return n

    def _check_records(
        self,
        avro_name: str,
        family: str,
        records: Iterator[dict[str, Any]],
        lines: Iterator[str] | None,
        catalogue: SchemaCatalogue | None,
        problem: Problems,
    ) -> int:
        # The hot loop of a large bundle: names bound locally, messages built only on failure.
        batches_get = self.batches.get
        renderer = fmt.EventRenderer(catalogue) if catalogue is not None else None
        decode = renderer.decode if renderer is not None else None
        render = fmt.event_json_line
        sha256 = hashlib.sha256
        jsonl_name = avro_name[: -len(".avro")] + ".jsonl"

        def bad(event_id: str, message: str) -> None:
            problem(f"event {event_id[:8]}… in {avro_name}{message}")

        n = 0
        last: BatchState | None = None
        lines_done = lines is None
        iterator = iter(records)
        while True:
            try:
                rec = next(iterator)
            except StopIteration:
                break
            except Exception as exc:  # a damaged block: what follows cannot be read
                raise Damaged(n, reason_of(exc)) from None
            n += 1
            event_id = rec["event_id"]
            data = rec["event_bytes"]
            producer_id = rec["producer_id"]
            if rec["family"] != family:
                bad(event_id, f" says it is a {rec['family']}")
            sequence = rec["batch_sequence"]
            batch = batches_get((producer_id, sequence))
            index = rec["leaf_index"]
            if batch is None:
                bad(event_id, f": its batch {producer_id}#{sequence} is not in {fmt.BATCHES_FILE}")
            elif not 0 <= index < batch.event_count:
                bad(event_id, f": leaf {index} is outside batch {batch.name}")
            elif batch.seen[index]:
                bad(event_id, f": leaf {index} of batch {batch.name} is exported twice")
            else:
                if batch is not last:
                    # Events come batch by batch: the memo of the batch left is not needed
                    # again (if it is, the proofs are simply checked in full).
                    if last is not None:
                        last.memo.clear()
                    last = batch
                batch.seen[index] = 1
                leaf = sha256(b"\x00" + data).digest()
                proof = rec["inclusion_proof"]
                if not included(
                    leaf, index, batch.event_count, proof, batch.merkle_root, batch.memo
                ):
                    bad(event_id, f": inclusion proof does not lead to batch {batch.name}'s root")
            rendered = None
            if decode is not None:
                try:
                    fullname, decoded = decode(data)
                except AuditError as exc:
                    bad(event_id, f" does not decode with the bundled schemas: {exc}")
                else:
                    head = decoded.get("head")
                    if fullname != family:
                        bad(event_id, f" decodes as a {fullname}")
                    elif not isinstance(head, dict) or head.get("event_id") != event_id:
                        other = head.get("event_id") if isinstance(head, dict) else None
                        bad(event_id, f": its bytes are event {other}")
                    elif head.get("producer_id") != producer_id:
                        bad(event_id, f": its bytes name producer {head.get('producer_id')}")
                    try:
                        rendered = render(event_id, decoded)
                    except (ValueError, TypeError) as exc:
                        bad(event_id, f" cannot be written as JSON: {exc}")
            if lines_done:
                continue
            line = next(lines, None)  # type: ignore[arg-type]
            if line is None:
                problem(f"{jsonl_name} ends before event {n} ({event_id[:8]}…)")
                lines_done = True
            elif rendered is not None:
                if line != rendered and not same_json(line, rendered):
                    problem(f"line {n} of {jsonl_name} does not match event {event_id[:8]}…")
            elif not line_names(line, event_id):
                problem(f"line {n} of {jsonl_name} is not event {event_id[:8]}…")
        return n

    # -- 7 ----------------------------------------------------------------------------------

    def _check_counts(self, problem: Problems) -> str:
        """7. counts: the manifest's counts are what the bundle holds"""
        if self.manifest is None:
            problem(f"no readable {fmt.MANIFEST}")
            return ""
        counts = self.manifest.get("counts")
        if not isinstance(counts, Mapping):
            problem(f"{fmt.MANIFEST} has no counts")
            return ""
        found = self.found
        for name in ("events", "batches", "checkpoints", "keys"):
            if counts.get(name) != found.get(name):
                problem(
                    f"the manifest counts {counts.get(name)} {name}, "
                    f"the bundle holds {found.get(name)}"
                )
        claimed = {k: v for k, v in (counts.get("events_by_family") or {}).items() if v}
        held = {k: v for k, v in found.get("events_by_family", {}).items() if v}
        if claimed != held:
            problem(f"the manifest counts events by family {claimed}, the bundle holds {held}")
        return (
            f"{found.get('events')} events, {found.get('batches')} batches, "
            f"{found.get('checkpoints')} checkpoints, {found.get('keys')} keys, "
            "as the manifest says"
        )


class Damaged(Exception):
    def __init__(self, count: int, reason: str) -> None:
        super().__init__(reason)
        self.count = count
        self.reason = reason


def line_names(line: str, event_id: str) -> bool:
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("event_id") == event_id


EXPORTED_CANONICAL = to_parsing_canonical_form(fmt.PARSED_EXPORTED_EVENT)
