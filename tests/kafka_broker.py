"""The real Kafka broker for the test session (a pytest plugin, loaded by tests/conftest.py).

``kafka_broker`` starts one single-node KRaft broker for the whole session, the first time a test
asks for it, and stops it when the session ends. It is the secured broker ``aigc-audit infra
kafka up`` starts: SASL_SSL with SCRAM-SHA-512, ACLs, one principal per role (see
infra/kafka/security.py), so every Kafka test runs with authentication and authorisation on.
:func:`kafka_settings` gives a test settings that connect each role as its own principal, and
:func:`client_config` the kafka-python arguments of one role, for tests that use kafka-python
directly.

A broker that cannot be started FAILS the tests that need it; it never skips them: a missing
broker must not pass as a green run.

Set ``AIGC_AUDIT_KAFKA_BOOTSTRAP=host:port`` to run the tests against a plaintext broker of your
own instead; it must answer, or those tests fail the same way (the tests of authentication then
fail: that broker has none).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aigc_audit.infra.kafka import broker
from aigc_audit.infra.kafka.broker import BrokerState

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


def security_settings(state: BrokerState) -> dict[str, Any]:
    """Settings that connect to ``state``'s broker, each role as its own principal (from the
    broker's credentials file, which holds every role), the admin role doing the set-up."""
    if not state.secure:
        return {}
    return {
        "kafka_security_protocol": state.security_protocol,
        "kafka_sasl_mechanism": state.sasl_mechanism,
        "kafka_ssl_cafile": state.ca_file,
        "kafka_credentials_file": state.credentials_file,
    }


def kafka_settings(state: BrokerState, prefix: str | None = None, **extra: Any) -> dict[str, Any]:
    """Harness settings for a test of its own: topics under a fresh prefix and its own group
    (which the admin role's set-up then grants to the materialiser principal)."""
    prefix = prefix or f"t-{uuid.uuid4().hex[:10]}"
    return {
        "bus": "kafka",
        "bootstrap": state.bootstrap,
        "topic_prefix": prefix,
        "consumer_group": f"{prefix}-materialiser",
        **security_settings(state),
        **extra,
    }


def security_env(state: BrokerState, roles: tuple[str, ...] | None = None) -> dict[str, str]:
    """``AIGC_AUDIT_KAFKA_*`` variables for a subprocess; with ``roles``, a credentials file of
    those roles only is written beside the broker's (as a real deployment hands each service
    only its own principal)."""
    if not state.secure:
        return {}
    import json
    from pathlib import Path

    credentials = state.credentials_file
    if roles is not None:
        chosen = {role: state.credentials()[role] for role in roles}
        path = Path(state.state_dir, f"credentials-{'-'.join(roles)}.json")
        path.touch(mode=0o600)
        path.write_text(json.dumps(chosen), encoding="utf-8")
        credentials = str(path)
    return {
        "AIGC_AUDIT_KAFKA_SECURITY_PROTOCOL": state.security_protocol,
        "AIGC_AUDIT_KAFKA_SASL_MECHANISM": state.sasl_mechanism,
        "AIGC_AUDIT_KAFKA_SSL_CAFILE": state.ca_file,
        "AIGC_AUDIT_KAFKA_CREDENTIALS_FILE": credentials,
    }


def client_config(state: BrokerState, role: str = "admin") -> dict[str, Any]:
    """kafka-python keyword arguments that connect to ``state``'s broker as ``role``."""
    if not state.secure:
        return {"bootstrap_servers": state.bootstrap}
    entry = state.credentials()[role]
    return {
        "bootstrap_servers": state.bootstrap,
        "security_protocol": state.security_protocol,
        "sasl_mechanism": state.sasl_mechanism,
        "sasl_plain_username": entry["username"],
        "sasl_plain_password": entry["password"],
        "ssl_cafile": state.ca_file,
        "ssl_check_hostname": True,
    }


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line on the broker: which Kafka, and how long it took to start."""
    for state in _session_broker:
        terminalreporter.write_line(
            f"kafka broker: Apache Kafka {state.kafka_version} (KRaft, single node, "
            f"{state.security_protocol}) at {state.bootstrap} started in "
            f"{state.startup_seconds:.1f} s"
        )
