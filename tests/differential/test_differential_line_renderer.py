"""Pair (b): the JSON Lines renderers generated per schema
(``consumers.bundle.format.line_compiler.compile_line_renderers``, the fast path of check 6)
against the exact renderer (``consumers.bundle.format.event_json.EventRenderer`` and
``event_json_line``, which the exporter writes and the exact check compares with).

The contract: a generated renderer answers either nothing (None, or it raises) or exactly the
exact renderer's line for the bytes, and only when the exact check would accept the bytes as
the event and producer it is given. Records are generated from every family's schema (any code
point, strings JSON escapes, NaN and infinities, extreme ints and longs, times beyond any
calendar, empty arrays, nulls in unions), encoded, then sometimes damaged; renderers are
compiled with the fields the sample holds constant as segments, so their caches are used too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.format.line_compiler import compile_line_renderers, constant_fields
from aigc_audit.producers.codec import HEADER_SIZE, default_catalogue
from aigc_audit.producers.errors import AuditError
from tests.differential.avro_values import FAMILIES, damaged, encode, records
from tests.differential.conftest import scaled

CATALOGUE = default_catalogue()
RENDERER = fmt.EventRenderer(CATALOGUE)
HITS = {"fast": 0, "accepted": 0}
"""How often a generated renderer answered (the test at the end holds it to answering)."""


def exact_line(family: str, data: bytes, event_id: bytes, producer_id: bytes) -> bytes | None:
    """The line the exact check accepts for these bytes; None when it would name a problem."""
    try:
        eid, pid = event_id.decode(), producer_id.decode()
        fullname, record = RENDERER.decode(data)
    except (AuditError, UnicodeDecodeError):
        return None
    head = record.get("head")
    if fullname != family or not isinstance(head, dict):
        return None
    if head.get("event_id") != eid or head.get("producer_id") != pid:
        return None
    try:
        return fmt.event_json_line(eid, record).encode()
    except (ValueError, TypeError, UnicodeEncodeError):
        return None


def fast_lines(renderers: tuple[Any, ...], data: bytes, eid: bytes, pid: bytes) -> list[Any]:
    """Each renderer's answer as the fast path takes it: None for no answer (raising, or a
    line that is not UTF-8, which the fast path never accepts)."""
    out = []
    for render in renderers:
        try:
            line = render(data, eid, pid)
        except Exception:
            line = None
        if line is not None:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                line = None
        out.append(line)
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[bytes], list[bytes]]:
    """A family, a few of its records (often sharing field values, as real traffic does),
    their encodings and the bytes fed to the renderers (some damaged)."""
    family = draw(st.sampled_from(FAMILIES))
    first = draw(records(CATALOGUE, family))
    more = draw(st.lists(records(CATALOGUE, family), max_size=3))
    recs = [first]
    for other in more:  # keep some of the first record's values: constant segments form
        keep = draw(st.sets(st.sampled_from(sorted(first)), max_size=len(first)))
        recs.append({k: (first[k] if k in keep else v) for k, v in other.items()})
    encoded = [encode(CATALOGUE, family, r) for r in recs]
    fed = [draw(damaged(d, HEADER_SIZE)) for d in encoded]
    return family, recs, encoded, fed


@settings(max_examples=scaled(150), deadline=None)
@given(cases(), st.sampled_from(["head", "other-event", "other-producer"]))
def test_generated_renderers_answer_only_the_exact_line(
    case: tuple[str, list[dict[str, Any]], list[bytes], list[bytes]], who: str
) -> None:
    family, recs, encoded, fed = case
    constant = constant_fields(CATALOGUE, family, encoded)
    renderers = compile_line_renderers(CATALOGUE, family, constant)
    plain = compile_line_renderers(CATALOGUE, family)
    assert renderers and plain, f"{family}: no generated renderer"
    for record, data in zip(recs, fed, strict=True):
        head = record["head"]
        eid, pid = head["event_id"].encode(), head["producer_id"].encode()
        if who == "other-event":
            eid = b"0" * len(eid)
        elif who == "other-producer":
            pid += b"x"
        exact = exact_line(family, data, eid, pid)
        # twice: the second time the segments are read from their caches
        for _ in range(2):
            lines = fast_lines(renderers + plain, data, eid, pid)
            for line in lines:
                if line is not None:
                    assert line == exact, (family, data.hex(), line, exact)
            if exact is not None:
                HITS["accepted"] += 1
                HITS["fast"] += any(line is not None for line in lines)


@settings(max_examples=scaled(60), deadline=None)
@given(st.sampled_from(FAMILIES), st.data())
def test_renderers_of_one_family_agree_across_many_events(family: str, data: st.DataObject) -> None:
    """A run of events under one set of renderers, as a chunk is checked: an event's line never
    depends on the event read before it (the segments' caches)."""
    recs = data.draw(st.lists(records(CATALOGUE, family), min_size=2, max_size=6))
    encoded = [encode(CATALOGUE, family, r) for r in recs]
    renderers = compile_line_renderers(
        CATALOGUE, family, constant_fields(CATALOGUE, family, encoded)
    )
    order = data.draw(st.permutations(encoded + encoded))
    for raw in order:
        record = recs[encoded.index(raw)]
        eid, pid = record["head"]["event_id"].encode(), record["head"]["producer_id"].encode()
        exact = exact_line(family, raw, eid, pid)
        for line in fast_lines(renderers, raw, eid, pid):
            if line is not None:
                assert line == exact


def test_the_generated_renderers_do_answer() -> None:
    """The property above is not vacuous: of the lines the exact renderer accepted, the
    generated renderers answered a good share (runs after it, in file order)."""
    if HITS["accepted"]:
        assert HITS["fast"] > HITS["accepted"] // 4, HITS
