"""How a process authenticates to Kafka, and a pre-flight check that says plainly when it cannot.

:class:`KafkaSecurity` is a plain dataclass (producers never import the platform's settings):
the platform builds one per role from its settings, a service may build its own. It turns into
kafka-python's keyword arguments with :meth:`KafkaSecurity.client_config`; TLS always verifies
the broker's certificate and its hostname.

kafka-python answers a wrong password, an untrusted certificate or a plaintext client on a TLS
port alike: it retries the bootstrap for 30 s and raises "Unable to bootstrap". :func:`preflight`
tells them apart in a few milliseconds with one connection of its own (TCP, then TLS, then the
SASL handshake and authentication), so a misconfiguration is one clear line at once, while a
broker that is down stays a :class:`~producers.errors.BusUnavailableError` (which producers
answer by spooling).
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from aigc_audit.producers.errors import BusError, BusUnavailableError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

_API_SASL_HANDSHAKE: Final = 17
_API_SASL_AUTHENTICATE: Final = 36
_API_VERSIONS: Final = 18
_API_METADATA: Final = 3
_MAX_RESPONSE: Final = 1 << 20

RECONNECT_BACKOFF_MAX_MS: Final = 1_000
"""The longest any Kafka client of ours waits between attempts to reach a broker."""
"""The largest answer the pre-flight reads; the ones it asks for are a few hundred bytes."""


class KafkaSecurityError(BusError):
    """The broker is reachable but refuses this client: bad credentials, an untrusted
    certificate, the wrong security protocol. Not an outage: retrying will not help."""


@dataclass(frozen=True)
class KafkaSecurity:
    """One principal's connection settings. ``password`` never appears in a repr."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    """PEM of the CA the broker's certificate must chain to; None: the system's trust store."""

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def principal(self) -> str:
        """Who this connects as, for messages."""
        return self.username if self.uses_sasl and self.username else "ANONYMOUS"

    def check(self) -> None:
        """Raise KafkaSecurityError for settings that cannot work, before any connection."""
        if self.uses_sasl and not (self.username and self.password):
            raise KafkaSecurityError(
                f"Kafka {self.protocol} needs a username and a password (none given for the "
                "role; set kafka_username and kafka_password_file, or kafka_credentials_file)"
            )
        if self.ssl_cafile and not Path(self.ssl_cafile).is_file():
            raise KafkaSecurityError(f"Kafka CA file {self.ssl_cafile} does not exist")

    def client_config(self) -> dict[str, Any]:
        """kafka-python keyword arguments (producer, consumer and admin client alike)."""
        config: dict[str, Any] = {
            "security_protocol": self.protocol,
            # kafka-python backs reconnects off up to 30 s: after a long outage a long-lived
            # writer then missed a broker that was back and expired its sends (3 s delivery).
            "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        }
        if self.uses_tls:
            config.update(ssl_cafile=self.ssl_cafile, ssl_check_hostname=True)
        if self.uses_sasl:
            config.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return config

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


PLAINTEXT: Final = KafkaSecurity()
"""No TLS, no authentication: the default, and the only choice of an unsecured cluster."""


def preflight(bootstrap: str, security: KafkaSecurity, timeout_s: float = 5.0) -> None:
    """Connect to the first reachable ``host:port`` of ``bootstrap`` as ``security`` says and
    authenticate, then hang up.

    Raises BusUnavailableError when no address accepts a TCP connection (the broker is down),
    KafkaSecurityError when one does but TLS or authentication fails; each a one-line message
    naming the principal and the cause, never the password.
    """
    security.check()
    errors: list[str] = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host or "127.0.0.1"
        try:
            raw = socket.create_connection((host, int(port)), timeout=timeout_s)
        except (OSError, ValueError) as exc:
            errors.append(f"{address.strip()}: {exc}")
            continue
        with raw:
            _authenticate(raw, host, address.strip(), security)
        return
    raise BusUnavailableError(f"no Kafka broker reachable ({'; '.join(errors)})")


def _authenticate(raw: socket.socket, host: str, address: str, security: KafkaSecurity) -> None:
    sock: socket.socket = raw
    if security.uses_tls:
        try:
            sock = security.ssl_context().wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            where = security.ssl_cafile or "the system's trust store"
            raise KafkaSecurityError(
                f"TLS to Kafka at {address}: its certificate does not verify against {where} "
                f"({exc.verify_message})"
            ) from exc
        except (ssl.SSLError, OSError) as exc:
            raise KafkaSecurityError(
                f"TLS handshake with Kafka at {address} failed ({exc}): is it a TLS listener? "
                f"(kafka_security_protocol is {security.protocol})"
            ) from exc
    exchange = _Exchange(sock, address, security)
    if security.uses_sasl:
        exchange.sasl()
    else:
        exchange.api_versions()


class _Exchange:
    """Just enough of the Kafka protocol (request header v1, non-flexible versions) for
    ApiVersions, SaslHandshake v1 and SaslAuthenticate v1."""

    def __init__(self, sock: socket.socket, address: str, security: KafkaSecurity) -> None:
        self.sock, self.address, self.security = sock, address, security
        self.correlation = 0

    def _refused(self, why: str) -> KafkaSecurityError:
        return KafkaSecurityError(
            f"Kafka at {self.address} refused {self.security.principal} "
            f"({self.security.protocol}): {why}"
        )

    def request(self, api_key: int, version: int, body: bytes) -> bytes:
        self.correlation += 1
        client = b"aigc-audit-preflight"
        header = struct.pack(">hhih", api_key, version, self.correlation, len(client)) + client
        message = header + body
        try:
            self.sock.sendall(struct.pack(">i", len(message)) + message)
            (size,) = struct.unpack(">i", self._read(4))
            if not 4 <= size <= _MAX_RESPONSE:
                # Whatever answers may not be a broker: never allocate what it declares.
                raise self._refused(f"an answer of {size} bytes: is this a Kafka broker?")
            response = self._read(size)
        except (OSError, ConnectionError) as exc:
            # A TLS or SASL listener hangs up on a client that skips its handshake.
            raise self._refused(
                f"the broker closed the connection ({exc}); does the listener speak "
                f"{self.security.protocol}?"
            ) from exc
        (got,) = struct.unpack(">i", response[:4])
        if got != self.correlation:
            raise self._refused("an answer out of order: is this a Kafka broker?")
        return response[4:]

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            data += chunk
        return data

    def api_versions(self) -> None:
        (error,) = struct.unpack(">h", self.request(_API_VERSIONS, 0, b"")[:2])
        if error:
            raise self._refused(f"ApiVersions error {error}")
        # A SASL listener answers ApiVersions before authentication too, and hangs up only on
        # the next request: ask for the metadata of no topic (Metadata v4: an empty topic array,
        # no auto-creation) to learn whether this client gets past that point.
        self.request(_API_METADATA, 4, struct.pack(">ib", 0, 0))

    def sasl(self) -> None:
        mechanism = self.security.sasl_mechanism
        body = self.request(_API_SASL_HANDSHAKE, 1, _string(mechanism))
        (error,) = struct.unpack(">h", body[:2])
        if error == 33:  # UNSUPPORTED_SASL_MECHANISM
            raise self._refused(f"the broker does not offer {mechanism}")
        if error:
            raise self._refused(f"SASL handshake error {error}")
        if mechanism == "PLAIN":
            user, password = self.security.username or "", self.security.password or ""
            self._authenticate(f"\0{user}\0{password}".encode())
            return
        from kafka.net.sasl.scram import ScramClient

        scram = ScramClient(self.security.username, self.security.password, mechanism)
        server_first = self._authenticate(scram.first_message())
        scram.process_server_first_message(server_first)
        server_final = self._authenticate(scram.final_message())
        try:
            scram.process_server_final_message(server_final)
        except ValueError as exc:  # the server did not prove it knows the credential
            raise self._refused(f"the broker's SCRAM proof is wrong ({exc})") from exc

    def _authenticate(self, auth: bytes) -> bytes:
        body = self.request(_API_SASL_AUTHENTICATE, 1, struct.pack(">i", len(auth)) + auth)
        error, length = struct.unpack(">hh", body[:4])
        message = body[4 : 4 + length].decode("utf-8", "replace") if length >= 0 else ""
        at = 4 + max(length, 0)
        if error:
            # 58: SASL_AUTHENTICATION_FAILED, e.g. "Authentication failed during authentication
            # due to invalid credentials with SASL mechanism SCRAM-SHA-512"
            raise self._refused(message or f"SASL authentication error {error}")
        (size,) = struct.unpack(">i", body[at : at + 4])
        return body[at + 4 : at + 4 + max(size, 0)]


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw
