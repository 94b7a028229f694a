"""The audit trail when the Kafka broker goes away: producers spool and drain in chain order, or,
fail-closed, refuse events; either way nothing is lost or written twice. A broker of its own, since
these tests stop it. Secured, as the session's broker: an outage of an authenticated bus must
spool just the same."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aigc_audit.infra.kafka import broker as kafka_broker_infra
from aigc_audit.infra.kafka.broker import BrokerState
from aigc_audit.producers import AuditTrailDownError
from tests.harness import Harness, generation
from tests.kafka_broker import security_settings

pytestmark = [pytest.mark.kafka, pytest.mark.chdb]


class Broker:
    """A broker that a test may stop and start again on the same address and data."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.state: BrokerState = kafka_broker_infra.start(state_dir)

    @property
    def bootstrap(self) -> str:
        return self.state.bootstrap

    def stop(self) -> None:
        kafka_broker_infra.stop(self.state_dir)

    def start_again(self) -> None:
        self.state = kafka_broker_infra.start(
            self.state_dir,
            port=self.state.port,
            controller_port=self.state.controller_port,
            log_dir=self.state.data_dir,
        )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    own = Broker(tmp_path_factory.mktemp("outage-broker"))
    yield own
    own.stop()


def harness(tmp_path: Path, broker: Broker, name: str, **extra: Any) -> Harness:
    return Harness(
        tmp_path / "data",
        bus="kafka",
        bootstrap=broker.bootstrap,
        topic_prefix=name,
        consumer_group=f"{name}-materialiser",
        partitions=2,
        delivery_timeout_s=3.0,
        **security_settings(broker.state),
        **extra,
    )


def test_outage_spools_then_drains_in_chain_order(tmp_path: Path, broker: Broker) -> None:
    h = harness(tmp_path, broker, "outage")
    try:
        client = h.deployment.client("chat", "chat-1")
        sent = 0
        for n in range(200):
            client.emit(generation(n))
            sent += 1
        client.flush(timeout=60)

        broker.stop()
        for n in range(200, 600):  # emitted while the broker is down
            client.emit(generation(n))
            sent += 1
        client.flush(timeout=60)  # durable: on the bus or in the spool
        assert client.spool_depth.messages > 0, "nothing was spooled during the outage"

        broker.start_again()
        for n in range(600, 700):  # emitted after it returns, behind the spool
            client.emit(generation(n))
            sent += 1
        client.drain(timeout=120)
        assert client.spool_depth.messages == 0
        client.close()

        h.materialise()
        assert h.count("generations") == sent
        assert h.count("events") == sent
        dupes = h.query("SELECT event_id FROM audit.events GROUP BY event_id HAVING count() > 1")
        assert dupes.rows == []
        # In chain order: sequences 0..n-1, and the bus holds them in that order.
        rows = h.query(
            "SELECT sequence, partition, offset FROM audit.batches "
            "WHERE producer_id = 'chat-1' ORDER BY offset"
        ).rows
        sequences = [int(r[0]) for r in rows]
        assert sequences == list(range(len(rows)))
        assert len({r[1] for r in rows}) == 1  # one producer, one partition
        assert h.count("chain_findings", "kind != 'replay'") == 0
        # A batch whose acknowledgement was lost may arrive twice; the copy is recognised.
        assert {r[0] for r in h.query("SELECT reason FROM audit.quarantine").rows} <= {"replay"}
    finally:
        h.close()


def test_fail_closed_refuses_events_while_the_broker_is_down(
    tmp_path: Path, broker: Broker
) -> None:
    h = harness(tmp_path, broker, "failclosed", fail_closed=True)
    try:
        client = h.deployment.client("chat", "chat-1")
        for n in range(50):
            client.emit(generation(n))
        client.flush(timeout=60)

        broker.stop()
        try:
            refused: AuditTrailDownError | None = None
            accepted_after_stop = 0
            deadline = time.monotonic() + 15
            while refused is None and time.monotonic() < deadline:
                try:
                    client.emit(generation(1000 + accepted_after_stop))
                    accepted_after_stop += 1
                    time.sleep(0.02)
                except AuditTrailDownError as exc:
                    refused = exc
            assert refused is not None, "emit kept accepting events with the broker down"
            # Events accepted in the moment before the outage was noticed are not written, and
            # the client says so rather than pretending.
            if accepted_after_stop:
                with pytest.raises(AuditTrailDownError) as lost:
                    client.flush(timeout=30)
                assert lost.value.events_not_written == accepted_after_stop
            with pytest.raises(AuditTrailDownError):
                client.emit(generation(5000))
        finally:
            broker.start_again()
        client.close()

        h.materialise()
        assert h.count("generations") == 50  # exactly those accepted while the trail was up
        assert h.count("quarantine") == 0
        assert h.count("chain_findings") == 0
    finally:
        h.close()
