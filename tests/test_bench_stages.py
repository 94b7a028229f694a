"""The stage benchmark (consumers/bench/stages.py) measures real work: every stage processes all
of its data, on our side and on the library's. No timing is asserted: figures belong to the
benchmark run, not to the tests."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aigc_audit.consumers.bench import stages
from aigc_audit.consumers.bench.stages import (
    BATCH_SIZE,
    STAGES,
    StageCheckError,
    StageFigure,
    WireSizes,
    build_events,
    bytes_per_event,
    measure_stages,
)
from aigc_audit.producers.batch import SignedBatch
from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.events import Generation, ModerationAction
from aigc_audit.producers.signing import GENESIS_DIGEST, SigningKey
from aigc_audit.producers.transports.base import BusMessage
from aigc_audit.producers.transports.embedded_log import EmbeddedLog

N = 2_000
BATCHES = math.ceil(N / BATCH_SIZE)


def _sane(figure: StageFigure) -> None:
    assert figure.name in STAGES
    assert figure.library, f"{figure.name} names no library"
    for value in (figure.ours_eps, figure.library_eps, figure.ratio):
        assert math.isfinite(value) and value > 0, figure


@dataclass
class Pipeline:
    """The stages run once, up to the bus read-back, on one small data set."""

    catalogue: SchemaCatalogue
    key: SigningKey
    root: SigningKey
    figures: dict[str, StageFigure]
    encoded: list[bytes]
    batches: list[SignedBatch]
    values: list[bytes]
    log: EmbeddedLog
    messages: list[BusMessage]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    catalogue = default_catalogue()
    key, root = SigningKey.generate(), SigningKey.generate()
    figures: dict[str, StageFigure] = {}
    figures["encode"], encoded = stages.encode_stage(build_events(N), catalogue)
    figures["seal"], batches, values = stages.seal_stage(encoded, key, catalogue)
    directory = tmp_path_factory.mktemp("bench-bus")
    figures["produce"], log = stages.embedded_produce_stage(values, N, directory)
    figures["consume"], messages = stages.embedded_consume_stage(log, len(values), N)
    yield Pipeline(catalogue, key, root, figures, encoded, batches, values, log, messages)
    log.close()


def test_the_mix_is_mostly_generations_with_some_moderation() -> None:
    events = build_events(400)
    kinds = {type(e) for e in events}
    assert kinds == {Generation, ModerationAction}
    moderation = sum(isinstance(e, ModerationAction) for e in events)
    assert 0 < moderation < len(events) // 10


def test_encode_encodes_every_event_into_what_decodes_back(pipeline: Pipeline) -> None:
    figure = pipeline.figures["encode"]
    _sane(figure)
    assert figure.name == "validate and encode" and figure.events == N
    assert len(pipeline.encoded) == N
    names = {pipeline.catalogue.decode(raw)[0] for raw in pipeline.encoded}
    assert names == {"aigc.audit.Generation", "aigc.audit.ModerationAction"}


def test_seal_makes_a_signed_chain_of_full_batches(pipeline: Pipeline) -> None:
    figure = pipeline.figures["seal"]
    _sane(figure)
    assert figure.name == "Merkle root and signature" and figure.events == N
    assert len(pipeline.batches) == len(pipeline.values) == BATCHES
    prev = GENESIS_DIGEST
    for sequence, (batch, value) in enumerate(zip(pipeline.batches, pipeline.values, strict=True)):
        assert SignedBatch.decode(value, pipeline.catalogue) == batch
        assert (batch.sequence, batch.prev_digest) == (sequence, prev)
        batch.verify(pipeline.key.public_key)
        prev = batch.digest
    assert [e for b in pipeline.batches for e in b.events] == pipeline.encoded


def test_produce_puts_every_batch_on_the_bus(pipeline: Pipeline) -> None:
    figure = pipeline.figures["produce"]
    _sane(figure)
    assert (figure.name, figure.bus, figure.events) == ("bus produce", "embedded", N)
    assert pipeline.log.message_count(stages.TOPIC) == BATCHES


def test_consume_reads_back_exactly_what_was_produced(pipeline: Pipeline) -> None:
    figure = pipeline.figures["consume"]
    _sane(figure)
    assert (figure.name, figure.bus, figure.events) == ("bus consume", "embedded", N)
    assert [m.value for m in pipeline.messages] == pipeline.values
    assert [m.offset for m in pipeline.messages] == list(range(BATCHES))


def test_consume_refuses_to_report_a_short_read(pipeline: Pipeline) -> None:
    with pytest.raises(StageCheckError, match="read 4 of 5"):
        stages.embedded_consume_stage(pipeline.log, BATCHES + 1, N)


def test_verify_accepts_every_batch_and_decodes_every_event(pipeline: Pipeline) -> None:
    registration = stages.registration_for(pipeline.key, pipeline.root)
    figure, verdicts = stages.verify_stage(
        pipeline.messages, registration, pipeline.root.public_key, pipeline.catalogue
    )
    _sane(figure)
    assert figure.name == "batch verification" and figure.events == N
    assert len(verdicts) == BATCHES
    assert all(v.accepted for v in verdicts)
    assert [e.raw for v in verdicts for e in v.events] == pipeline.encoded


def test_verify_refuses_to_report_refused_batches(pipeline: Pipeline) -> None:
    stranger = SigningKey.generate()  # registered, but not the key that signed the batches
    registration = stages.registration_for(stranger, pipeline.root)
    with pytest.raises(StageCheckError, match=r"4 batches refused, e\.g\. unknown_key"):
        stages.verify_stage(
            pipeline.messages, registration, pipeline.root.public_key, pipeline.catalogue
        )


def test_decode_decodes_every_event_as_fastavro_does(pipeline: Pipeline) -> None:
    figure, decoded = stages.decode_stage(pipeline.encoded, pipeline.catalogue)
    _sane(figure)
    assert figure.name == "decode" and figure.events == N
    assert len(decoded) == N
    assert all(record["head"]["producer_id"] == stages.PRODUCER_ID for _, record in decoded)


def test_wire_sizes_are_per_event(pipeline: Pipeline) -> None:
    sizes = bytes_per_event(pipeline.encoded, pipeline.values)
    assert isinstance(sizes, WireSizes)
    assert sizes.event_bytes == sum(map(len, pipeline.encoded)) / N
    # A batch carries its events plus a head, a root and a signature.
    assert sizes.event_bytes < sizes.bus_bytes_per_event < 2 * sizes.event_bytes
    with pytest.raises(ValueError):
        bytes_per_event([], [])


def test_kafka_needs_a_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        measure_stages(10, bus="kafka", bootstrap=None, workdir=tmp_path)
    with pytest.raises(ValueError, match="events"):
        measure_stages(0, bus="embedded", bootstrap=None, workdir=tmp_path)


@pytest.mark.chdb
@pytest.mark.slow
def test_every_stage_gets_a_figure_next_to_its_library(tmp_path: Path) -> None:
    said: list[str] = []
    figures = measure_stages(
        N, bus="embedded", bootstrap=None, workdir=tmp_path, progress=said.append
    )
    assert [f.name for f in figures] == list(STAGES)
    generations = N - N // stages.MODERATION_EVERY
    for figure in figures:
        _sane(figure)
        assert figure.events == (generations if "(generations)" in figure.name else N)
    store = figures[-3]
    # As the materialiser writes: the batches grouped into polls, one insert per table per poll.
    polls = -(-BATCHES // stages.POLL_MESSAGES)
    assert f"ours: {polls} polls of up to {stages.POLL_MESSAGES} batches" in store.note
    assert all(any(f.name in line for line in said) for f in figures)
    table = stages.format_figures(figures)
    assert all(name in table for name in STAGES)
    # The run cleans up after itself (the store, the bus files).
    assert list(tmp_path.iterdir()) == []
