"""The Kafka pre-flight login reads answers from whatever listens at the bootstrap address: a
hostile or mistaken peer must get a clear refusal, never an allocation of what it declares or a
hang. (The real broker's refusals are in test_kafka_auth.py.)"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from aigc_audit.producers.transports.kafka_security import (
    KafkaSecurity,
    KafkaSecurityError,
    preflight,
)


@pytest.fixture
def liar() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP peer that answers every request with a declared size of 2**31 - 1 bytes."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            received.append(connection.recv(4096))
            connection.sendall(struct.pack(">i", 2**31 - 1) + b"\0" * 16)
            time.sleep(2)  # keep the connection open: the client must not wait for the rest

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}", received
    finally:
        server.close()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_an_answer_declaring_gigabytes_is_refused_at_once(
    liar: tuple[str, list[bytes]], protocol: str
) -> None:
    bootstrap, received = liar
    security = KafkaSecurity(protocol=protocol, username="producer", password="pw")  # type: ignore[arg-type]
    began = time.monotonic()
    with pytest.raises(KafkaSecurityError, match="is this a Kafka broker"):
        preflight(bootstrap, security, timeout_s=5.0)
    assert time.monotonic() - began < 1.5
    assert received and b"pw" not in received[0]  # the password never leaves before the SCRAM
