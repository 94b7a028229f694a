"""The real Kafka broker for the test session (a pytest plugin, loaded by tests/conftest.py).

``kafka_broker`` starts one single-node KRaft broker for the whole session, the first time a test
asks for it, and stops it when the session ends. A broker that cannot be started FAILS the tests
that need it; it never skips them: a missing broker must not pass as a green run.

Set ``AIGC_AUDIT_KAFKA_BOOTSTRAP=host:port`` to run the tests against a broker of your own
instead; it must answer, or those tests fail the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.kafka import broker
from infra.kafka.broker import BrokerState

BOOTSTRAP_ENV = "AIGC_AUDIT_KAFKA_BOOTSTRAP"

# The broker the session used, for the closing summary line.
_session_broker: list[BrokerState] = []


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerState]:
    """The session's broker: ``.bootstrap`` is its ``127.0.0.1:port`` address."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        if not broker.answers(external, timeout=10.0):
            pytest.fail(f"{BOOTSTRAP_ENV}={external} does not answer Kafka requests", pytrace=False)
        yield BrokerState.external(external)
        return
    state_dir = tmp_path_factory.mktemp("kafka")
    # InfraError propagates: pytest reports it as an error of every test using this fixture.
    state = broker.start(state_dir, timeout=180.0)
    _session_broker.append(state)
    try:
        yield state
    finally:
        broker.stop(state_dir)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line on the broker: which Kafka, and how long it took to start."""
    for state in _session_broker:
        terminalreporter.write_line(
            f"kafka broker: Apache Kafka {state.kafka_version} (KRaft, single node) at "
            f"{state.bootstrap} started in {state.startup_seconds:.1f} s"
        )
