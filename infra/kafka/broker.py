"""A single-node Apache Kafka 4.x broker for development and tests: KRaft, broker and controller in
one JVM, on loopback ports, fetched from Maven Central with Maven. No Docker.

Jars are copied once into a cache outside the work tree::

    $AIGC_AUDIT_CACHE_DIR (default $XDG_CACHE_HOME/aigc-audit, i.e. ~/.cache/aigc-audit)
      kafka/<version>/lib/*.jar     the broker's runtime classpath
      kafka/<version>/.complete     written last: without it the download is redone

A broker lives in a *state directory* (the CLI's default is ``<data dir>/kafka``)::

    broker.json          BrokerState of the running broker (removed by stop)
    server.properties    the KRaft configuration, rewritten at every start (0600: it holds the
                         keystore password and the broker's own SCRAM password)
    credentials.json     secured brokers: each role's SCRAM credentials, 0600 (security.py)
    tls/                 secured brokers: the CA, the broker's keystore, ca.pem (security.py)
    log4j2.properties    the broker's logging: WARN and above to logs/server.log
    broker.out           the JVM's stdout and stderr (crashes before log4j starts)
    logs/server.log      the broker's log
    data/                log.dirs, unless start() is given another log_dir

The broker runs detached (its own session, reparented to init), so it outlives the process that
started it; any process can find it again through ``broker.json``. Start-up counts as done only
when the broker answers a Kafka ApiVersions request on its client port: in KRaft mode the broker
opens its client listener only after it has caught up with the metadata log and the controller
has unfenced it, so an answer means topics can be created and produced to.

A broker is *secured* unless started with ``secure=False``. Secured, its one client listener
speaks SASL_SSL (SCRAM-SHA-512 over TLS 1.2+), the StandardAuthorizer denies whatever no ACL
allows (``allow.everyone.if.no.acl.found=false``), and ``admin`` is the only super user besides
the broker itself. The KRaft controller listener stays on loopback but is TLS with client
certificates required (not plaintext): a plaintext controller listener makes every loopback
connection the principal ANONYMOUS, which the broker's own controller requests then need to be a
super user, and any local process could create ACLs through it. SCRAM cannot guard that
listener (the controller would have to read the credentials from the metadata log it serves), so
the broker proves itself with its certificate, whose subject is the second super user.
Inter-broker traffic (none on one node, but a second node would use it) goes over SASL_SSL as
``admin``. The plaintext broker (``secure=False``) is the default demo's and the benchmark's: no
authentication, no ACLs.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, replace
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, Final

from aigc_audit.infra.kafka import security
from aigc_audit.infra.kafka.tools import JAVA_HINT, MVN_HINT, InfraError, require_tool

HOST: Final = "127.0.0.1"
BROKER_MAIN_CLASS: Final = "kafka.Kafka"
# In 4.x the storage tool is still the Scala object in core (kafka_2.13), not in kafka-tools.
STORAGE_TOOL_CLASS: Final = "kafka.tools.StorageTool"
STATE_FILE: Final = "broker.json"
CACHE_ENV: Final = "AIGC_AUDIT_CACHE_DIR"
JVM_OPTS_ENV: Final = "AIGC_AUDIT_KAFKA_JVM_OPTS"
MIN_JAVA: Final = 17  # Kafka 4.x brokers need Java 17

# A small heap is plenty for a development broker; serial GC and C1-only JIT cut start-up on a
# 2-core machine (measured on an existing data dir: 2.2 s -> 1.6 s to the first answer when idle,
# 3.9 s -> 2.6 s when the cores are busy), at some cost in peak throughput.
# $AIGC_AUDIT_KAFKA_JVM_OPTS comes after these and the logging flags, so it overrides them (the JVM
# takes the last of two flags): e.g. "-XX:TieredStopAtLevel=4 -Xmx2g" to benchmark with the C2 JIT.
JVM_OPTS: Final = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BrokerState:
    """A broker started by :func:`start`, as persisted in ``<state_dir>/broker.json``.

    ``data_dir`` is the broker's ``log.dirs``; ``state_dir`` the directory it is managed from
    (pass it to :func:`status`, :func:`stop`, :func:`restart`). ``pid`` is 0, and both
    directories are empty paths, for a broker this module did not start (see :meth:`external`).
    ``startup_seconds`` is how long :func:`start` took to get a first answer from the broker,
    storage formatting included, a first download of the jars not.
    """

    pid: int
    port: int
    controller_port: int
    bootstrap: str
    data_dir: Path
    state_dir: Path
    started_at: float
    kafka_version: str
    startup_seconds: float = 0.0
    security_protocol: str = "PLAINTEXT"
    """What the client listener speaks: SASL_SSL for a secured broker, else PLAINTEXT."""
    ca_file: str = ""
    """Secured: the CA certificate (PEM) clients verify the broker with; else empty."""
    credentials_file: str = ""
    """Secured: the 0600 JSON file of each role's SCRAM username and password; else empty."""
    sasl_mechanism: str = ""

    @classmethod
    def external(cls, bootstrap: str) -> BrokerState:
        """A broker run by someone else, known only by its bootstrap address ``host:port,...``."""
        _, _, port = bootstrap.split(",")[0].strip().rpartition(":")
        return cls(0, int(port), 0, bootstrap, Path(), Path(), time.time(), "unknown")

    @property
    def secure(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    def credentials(self) -> dict[str, dict[str, str]]:
        """Each role's ``{"username", "password"}`` (secured brokers; empty otherwise)."""
        if not self.credentials_file:
            return {}
        doc: dict[str, dict[str, str]] = json.loads(Path(self.credentials_file).read_text())
        return doc

    def to_json(self) -> str:
        paths = {"data_dir": str(self.data_dir), "state_dir": str(self.state_dir)}
        return json.dumps({**asdict(self), **paths}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BrokerState:
        doc: dict[str, Any] = json.loads(text)
        doc["data_dir"], doc["state_dir"] = Path(doc["data_dir"]), Path(doc["state_dir"])
        return cls(**doc)


def _pom_kafka_version() -> str:
    # pom.xml is the one place the version is written; the cache directory is named after it.
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring((files("aigc_audit.infra.kafka") / "pom.xml").read_text(encoding="utf-8"))
    version = root.findtext("m:properties/m:kafka.version", namespaces=ns)
    if not version:
        raise RuntimeError("infra/kafka/pom.xml has no <kafka.version> property")
    return version.strip()


KAFKA_VERSION: Final = _pom_kafka_version()


# --- tools -----------------------------------------------------------------------------------


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if that exists, else ``java`` on PATH, checked to be Java 17+."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home, "bin", "java") if home else None
    java = (
        str(candidate)
        if candidate and os.access(candidate, os.X_OK)
        else require_tool("java", JAVA_HINT)
    )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfraError(f"{java} -version failed ({exc}): {JAVA_HINT}") from exc
    # `openjdk version "17.0.15"`, `java version "1.8.0_402"`, `openjdk version "21"`
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if found is None:
        raise InfraError(f"cannot tell the Java version of {java}: {JAVA_HINT}")
    major = int(found[2] or 0) if found[1] == "1" else int(found[1])
    if major < MIN_JAVA:
        raise InfraError(f"{java} is Java {major}; Kafka {KAFKA_VERSION} needs: {JAVA_HINT}")
    return java


# --- fetching --------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$AIGC_AUDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/aigc-audit`` (``~/.cache/aigc-audit``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aigc-audit"


def fetch(version: str = KAFKA_VERSION, *, progress: Progress | None = None) -> Path:
    """The directory of the broker's runtime jars for ``version``, fetched with Maven if needed.

    Instant once a previous fetch completed. A fetch that was cut short (no ``.complete`` marker)
    is redone from scratch. Concurrent callers wait for one another. Needs ``mvn`` only when it
    downloads; Maven keeps its own copy in its local repository (~/.m2) as usual.
    """
    base = cache_dir() / "kafka" / version
    lib, marker = base / "lib", base / ".complete"
    if marker.is_file():
        return lib
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".lock"):
        if marker.is_file():  # another process finished it while we waited
            return lib
        mvn = require_tool("mvn", MVN_HINT)
        if progress:
            progress(f"fetching Apache Kafka {version} from Maven Central into {lib} (once)")
        shutil.rmtree(lib, ignore_errors=True)
        with as_file(files("aigc_audit.infra.kafka") / "pom.xml") as pom:
            command = [
                mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
                "dependency:copy-dependencies", f"-DoutputDirectory={lib}",
                "-DincludeScope=runtime", f"-Dkafka.version={version}",
            ]  # fmt: skip
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
            except subprocess.TimeoutExpired as exc:
                raise InfraError(f"mvn did not fetch Kafka {version} within 30 minutes") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).splitlines()
            errors = [line for line in output if line.startswith("[ERROR]")] or output or ["?"]
            tail = "\n".join(output[-30:])
            raise InfraError(f"mvn could not fetch Kafka {version}: {errors[0][:400]}\n{tail}")
        if not (lib / f"kafka_2.13-{version}.jar").is_file():
            raise InfraError(f"mvn ran but {lib} has no kafka_2.13-{version}.jar")
        marker.write_text(f"{version}\n")
    return lib


# --- state -----------------------------------------------------------------------------------


def read_state(state_dir: Path) -> BrokerState | None:
    """The persisted state in ``state_dir``, or None if there is none; the broker may be dead."""
    path = state_dir / STATE_FILE
    try:
        return BrokerState.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InfraError(f"broker state {path} is unreadable ({exc}); delete it") from exc


def _write_state(state_dir: Path, state: BrokerState) -> None:
    tmp = state_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(state.to_json(), encoding="utf-8")
    tmp.replace(state_dir / STATE_FILE)  # atomic: a reader sees the old or the new file


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path``, so two processes never fetch or start together."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --- probing ---------------------------------------------------------------------------------


def answers(bootstrap: str, timeout: float = 2.0, cafile: str | None = None) -> bool:
    """Whether the first ``host:port`` of ``bootstrap`` answers a Kafka ApiVersions (v0) request.

    A raw protocol round trip rather than a client library: it costs a few milliseconds, obeys
    ``timeout`` exactly, and has none of a client's reconnect back-off (kafka-python's made a
    broker that was up in 1.7 s look ready only after 7.6 s). With ``cafile`` the request goes
    over TLS, the broker's certificate verified against that CA, hostname included: a SASL_SSL
    listener answers ApiVersions before authentication, so no credentials are needed.
    """
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    correlation_id, client_id = 0x5AFE, b"aigc-audit-probe"
    # Request header v1: api_key 18 (ApiVersions), api_version 0, correlation id, client id.
    request = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host or HOST, int(port)), timeout=timeout) as raw:
            sock = raw
            if cafile:
                context = ssl.create_default_context(cafile=cafile)
                sock = context.wrap_socket(raw, server_hostname=host or HOST)
            with sock:
                sock.sendall(struct.pack(">i", len(request)) + request)
                head = _recv_exactly(sock, 4 + 4 + 2)  # size, correlation id, error code
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return False
    unpacked: tuple[int, int, int] = struct.unpack(">iih", head)
    _, got_id, error_code = unpacked
    return got_id == correlation_id and error_code == 0


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data


def _is_broker_process(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` is alive and is the broker of ``state_dir`` (not a recycled pid)."""
    if pid <= 0:
        return False
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs (macOS): trust the pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        # A zombie (state Z) has an empty cmdline, so this also treats unreaped brokers as dead.
        args = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    config = str(state_dir.resolve() / "server.properties").encode()
    return BROKER_MAIN_CLASS.encode() in args and config in args


# --- start and stop --------------------------------------------------------------------------


def status(state_dir: Path) -> BrokerState | None:
    """The running broker of ``state_dir``: its process is alive AND its port answers; else None."""
    state = read_state(state_dir)
    if state is None or not _is_broker_process(state.pid, state_dir):
        return None
    return state if answers(state.bootstrap, cafile=state.ca_file or None) else None


def start(
    state_dir: Path,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
    version: str = KAFKA_VERSION,
    progress: Progress | None = None,
    secure: bool = True,
) -> BrokerState:
    """Start the broker of ``state_dir`` and return once it answers on ``127.0.0.1:<port>``.

    ``secure`` (the default): TLS and SASL/SCRAM with ACLs, as the module docstring says; the
    state's ``ca_file`` and ``credentials_file`` name what clients need. The first secured start
    of a state directory makes its certificates and credentials; later ones reuse them. A data
    directory formatted for one mode cannot be started in the other.

    If that broker already runs and answers, returns its state and starts nothing (its ports
    may then differ from the ones asked for). Ports default to free ones picked now. The data
    directory (``log_dir``, default ``state_dir/data``) is formatted on first use only, so
    starting again on the same directory keeps every topic and message.

    Raises InfraError if java is missing or older than 17, the jars cannot be fetched, a port
    is taken, or the broker dies or stays silent for ``timeout`` seconds (it is then stopped,
    and the message carries the tail of its log).
    """
    state_dir = state_dir.expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir / ".lock"):
        running = status(state_dir)
        if running is not None:
            return running
        stale = read_state(state_dir)
        if stale is not None:  # alive but silent, or dead: make sure it is gone
            _terminate(stale.pid, state_dir, timeout=30.0)
            (state_dir / STATE_FILE).unlink(missing_ok=True)

        java = java_executable()
        lib = fetch(version, progress=progress)
        began = time.monotonic()  # the start-up time reported excludes a first download
        port = _free_port() if port is None else _check_port(port)
        controller_port = _free_port({port}) if controller_port is None else controller_port
        if controller_port == port:
            raise InfraError(f"the client and controller ports must differ (both {port})")
        _check_port(controller_port)
        data_dir = (log_dir or state_dir / "data").expanduser().resolve()
        fresh = not (data_dir / "meta.properties").is_file()
        _check_mode(state_dir, secure, fresh)
        data_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "logs").mkdir(exist_ok=True)
        creds: dict[str, dict[str, str]] = {}
        tls: security.TlsFiles | None = None
        making_tls: concurrent.futures.Future[security.TlsFiles] | None = None
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        if secure:
            creds = security.credentials(state_dir)
            tls = security.tls_plan(state_dir)
            if progress and not (state_dir / "tls" / ".complete").is_file():
                progress(f"making the broker's TLS certificates with keytool in {state_dir}/tls")
            # Seven keytool JVMs take seconds; formatting the storage needs none of their files,
            # so both run at once.
            making_tls = pool.submit(
                security.make_tls, state_dir, security.keytool_executable(java)
            )
        config = state_dir / "server.properties"
        config.touch(mode=0o600)
        config.chmod(0o600)  # it holds the keystore password and admin's SCRAM password
        properties = _server_properties(port, controller_port, data_dir, tls, creds)
        config.write_text(properties, encoding="utf-8")
        log4j = state_dir / "log4j2.properties"
        log4j.write_bytes((files("aigc_audit.infra.kafka") / "log4j2.properties").read_bytes())
        jvm = [
            java,
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={state_dir / 'logs'}",
            *shlex.split(os.environ.get(JVM_OPTS_ENV, "")),  # last, so they override the above
            "-cp",
            f"{lib}/*",
        ]
        try:
            if fresh:
                if progress:
                    progress(f"formatting KRaft storage in {data_dir}")
                _format_storage(jvm, config, data_dir, security.scram_arguments(creds))
            if making_tls is not None:
                making_tls.result()
        except security.TlsError as exc:
            raise InfraError(str(exc)) from exc
        finally:
            pool.shutdown(wait=True)

        if progress:
            progress(f"starting Kafka {version} on {HOST}:{port}, controller on {controller_port}")
        pid = _spawn_detached([*jvm, BROKER_MAIN_CLASS, str(config)], state_dir / "broker.out")
        state = BrokerState(
            pid=pid,
            port=port,
            controller_port=controller_port,
            bootstrap=f"{HOST}:{port}",
            data_dir=data_dir,
            state_dir=state_dir,
            started_at=time.time(),
            kafka_version=version,
            security_protocol="SASL_SSL" if secure else "PLAINTEXT",
            ca_file=str(tls.ca_pem) if tls else "",
            credentials_file=str(state_dir / security.CREDENTIALS_FILE) if secure else "",
            sasl_mechanism=security.SCRAM_MECHANISM if secure else "",
        )
        # Written at once, so `stop` finds a broker whose start was cut short (Ctrl-C, a kill).
        _write_state(state_dir, state)
        try:
            _wait_until_answering(state, timeout)
        except BaseException:
            _terminate(pid, state_dir, timeout=10.0)
            (state_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        state = replace(state, startup_seconds=round(time.monotonic() - began, 3))
        _write_state(state_dir, state)
        return state


def _wait_until_answering(state: BrokerState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not answers(state.bootstrap, timeout=1.0, cafile=state.ca_file or None):
        if not _is_broker_process(state.pid, state.state_dir):
            tail = _log_tail(state.state_dir)
            raise InfraError(f"the Kafka broker exited during start-up: {tail}")
        if time.monotonic() > deadline:
            raise InfraError(
                f"the Kafka broker did not answer on {state.bootstrap} within {timeout:g} s "
                f"and was stopped: {_log_tail(state.state_dir)}"
            )
        time.sleep(0.1)


def stop(state_dir: Path, timeout: float = 30.0) -> BrokerState | None:
    """Stop the broker of ``state_dir``: SIGTERM (a clean shutdown), then SIGKILL after
    ``timeout`` seconds. Returns the state it stopped, or None if there was nothing to stop
    (idempotent). The data directory is kept."""
    state_dir = state_dir.expanduser().resolve()
    if not (state_dir / STATE_FILE).is_file():
        return None
    with _locked(state_dir / ".lock"):
        state = read_state(state_dir)
        if state is None:
            return None
        _terminate(state.pid, state_dir, timeout)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        return state


def restart(
    state_dir: Path, *, timeout: float = 120.0, progress: Progress | None = None
) -> BrokerState:
    """Stop the broker of ``state_dir`` and start it again on the same ports and data, so
    clients can reconnect to the same bootstrap address and find the same topics."""
    previous = stop(state_dir)
    if previous is None:
        raise InfraError(f"no Kafka broker to restart in {state_dir}")
    return start(
        state_dir,
        port=previous.port,
        controller_port=previous.controller_port,
        log_dir=previous.data_dir,
        timeout=timeout,
        version=previous.kafka_version,
        progress=progress,
        secure=previous.secure,
    )


# --- helpers ---------------------------------------------------------------------------------


def _check_mode(state_dir: Path, secure: bool, fresh: bool) -> None:
    """A formatted data directory keeps the mode it was formatted in: a secured one holds SCRAM
    credentials and must not come back without authentication, a plaintext one has none."""
    made_secure = (state_dir / security.CREDENTIALS_FILE).is_file()
    if fresh:
        if not secure:
            (state_dir / security.CREDENTIALS_FILE).unlink(missing_ok=True)
        return
    if secure and not made_secure:
        raise InfraError(
            f"the Kafka data in {state_dir} was made by a plaintext broker; start it with "
            "--plaintext, or use another --state-dir for a secured one"
        )
    if not secure and made_secure:
        raise InfraError(
            f"the Kafka data in {state_dir} belongs to a secured broker; it will not be started "
            "without authentication (use another --state-dir for a plaintext one)"
        )


def _security_properties(
    tls: security.TlsFiles, creds: dict[str, dict[str, str]]
) -> dict[str, str]:
    admin = creds[security.ADMIN_ROLE]
    mechanism = security.SCRAM_MECHANISM
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin["username"]}" password="{admin["password"]}";'
    )
    store = {"type": "PKCS12", "location": str(tls.keystore), "password": tls.password}
    return {
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": mechanism,
        "sasl.mechanism.inter.broker.protocol": mechanism,
        # The broker's own inter-broker client logs in as admin (a super user).
        f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config": jaas,
        **{f"ssl.keystore.{k}": v for k, v in store.items()},
        "ssl.key.password": tls.password,
        # One PKCS12 file is keystore and truststore: it holds the CA as a trusted entry.
        **{f"ssl.truststore.{k}": v for k, v in store.items()},
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "ssl.client.auth": "none",  # clients authenticate with SCRAM on the client listener
        # The controller listener: only a client holding a certificate of this CA gets in, and
        # only the broker holds one.
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin['username']};User:{security.BROKER_DN}",
    }


def _server_properties(
    port: int,
    controller_port: int,
    data_dir: Path,
    tls: security.TlsFiles | None = None,
    creds: dict[str, dict[str, str]] | None = None,
) -> str:
    client = "SASL_SSL" if tls else "PLAINTEXT"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A static voter set rather than 4.x's controller.quorum.bootstrap.servers: the voter's
        # endpoint then lives in this file, not in the formatted log, so a data directory can be
        # started again on other ports.
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"{client}://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"{client}://{HOST}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        # One broker: every internal topic must make do with one replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        # Tests join consumer groups constantly; the default 3 s delay would stall every join.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created on purpose (with their partition count), never by a typo.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
    }
    if tls is not None and creds:
        settings.update(_security_properties(tls, creds))
    lines = ["# Written by infra/kafka/broker.py at every start; edits are lost."]
    return "\n".join([*lines, *(f"{key}={value}" for key, value in settings.items())]) + "\n"


def _cluster_id() -> str:
    """A random Kafka cluster id (what ``kafka-storage random-uuid`` prints), without a JVM."""
    while True:
        raw = os.urandom(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        # Kafka's Uuid.randomUuid() rejects the two reserved ids and ids that start with "-".
        if raw not in (bytes(16), bytes(15) + b"\x01") and not text.startswith("-"):
            return text


def _format_storage(jvm: list[str], config: Path, data_dir: Path, extra: list[str]) -> None:
    # ``extra``: the --add-scram credentials of a secured broker, written into the metadata log.
    command = [*jvm, STORAGE_TOOL_CLASS, "format", "-t", _cluster_id(), "-c", str(config), *extra]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"formatting Kafka storage in {data_dir} took over 120 s") from exc
    if done.returncode != 0 or not (data_dir / "meta.properties").is_file():
        output = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
        raise InfraError(f"formatting Kafka storage in {data_dir} failed: {output[-1]}")


def _spawn_detached(command: list[str], output: Path) -> int:
    """Run ``command`` in the background, in its own session, and return its pid.

    A short-lived ``sh`` starts it and exits, so the JVM is reparented to init: it outlives
    this process, is not this process's child (no zombie, no ResourceWarning from an abandoned
    Popen), and ignores the terminal's Ctrl-C.
    """
    script = '"$@" </dev/null >"$0" 2>&1 & echo $!'
    try:
        launched = subprocess.run(
            ["/bin/sh", "-c", script, str(output), *command],
            capture_output=True,
            text=True,
            start_new_session=True,
            check=True,
            timeout=30,
        )
        return int(launched.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise InfraError(f"cannot launch the Kafka broker: {exc}") from exc


def _terminate(pid: int, state_dir: Path, timeout: float) -> None:
    """SIGTERM the broker (Kafka then shuts down cleanly), SIGKILL it after ``timeout`` s."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not _is_broker_process(pid, state_dir):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _is_broker_process(pid, state_dir):
            time.sleep(0.05)
    if _is_broker_process(pid, state_dir):
        raise InfraError(f"the Kafka broker (pid {pid}) survived SIGKILL")


def _free_port(avoid: Collection[int] = ()) -> int:
    """A port on 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port


def _check_port(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does on Unix: a port whose old connections linger in TIME_WAIT (e.g. right
        # after a restart) is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise InfraError(f"port {port} on {HOST} is not free ({exc.strerror})") from exc
    return port


def _log_tail(state_dir: Path, lines: int = 20) -> str:
    """One summary line (the last error in the broker's output), then the tails of both logs."""
    tails: list[str] = []
    summary, source = "no output", state_dir / "broker.out"
    for path in (state_dir / "broker.out", state_dir / "logs" / "server.log"):
        with contextlib.suppress(OSError):
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            tails += [f"--- {path}", *tail]
            errors = [line for line in tail if re.search(r"ERROR|Exception|Error:", line)]
            if errors or (tail and summary == "no output"):
                summary, source = (errors or tail)[-1].strip(), path
    return f"{summary[:300]} (see {source})\n" + "\n".join(tails)
