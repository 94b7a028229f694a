"""TLS certificates and SCRAM credentials for the local broker, made on this machine.

A secured broker's state directory holds, besides what broker.py keeps there::

    credentials.json     0600: each role's SCRAM username and password (see ROLES)
    tls/ca.pem           the CA certificate, PEM: clients' ``ssl_cafile``
    tls/ca.p12           the CA's key pair (PKCS12), which signed the broker's certificate
    tls/broker.p12       the broker's key pair and certificate chain, and the CA as a trusted
                         entry: keystore and truststore both (PKCS12)
    tls/store.password   0600: the password of both PKCS12 files
    tls/.complete        written last: without it the chain is made again

Certificates are made with the JDK's ``keytool``, no external CA and no openssl: a CA key pair
(basic constraints CA), and a broker key pair whose certificate the CA signs with SAN
``DNS:localhost,IP:127.0.0.1``, so clients keep hostname verification on. A small CA rather than
one self-signed certificate: the broker's certificate can be remade without clients changing the
file they trust, and the broker's own TLS client (to the controller listener) verifies the same
chain. Everything is made once per state directory and reused by every restart, since SCRAM
credentials live in the formatted metadata log and must match ``credentials.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aigc_audit.producers.errors import AuditError

CREDENTIALS_FILE: Final = "credentials.json"
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
ADMIN_ROLE: Final = "admin"
CA_DN: Final = "CN=aigc-audit local Kafka CA"
BROKER_DN: Final = "CN=aigc-audit-kafka-broker"
"""The broker certificate's subject: as a principal (``User:CN=...``) the broker's own super user
on the controller listener."""

# role -> SCRAM username. The roles are the ones a deployment's processes take (the settings'
# kafka_credentials_file is a map of the same shape, holding only the roles a process has):
#   admin          super user: topic creation and ACLs during set-up, and the broker's own
#                  inter-broker client; no service runs as it
#   producer       writes the events topic
#   key_publisher  writes the keys topic: the holder of the root key, which registers producer
#                  keys and the platform's own (checkpoint, export) keys
#   materialiser   reads the events and keys topics, in its consumer group, and writes the
#                  checkpoints topic
ROLES: Final = {
    ADMIN_ROLE: "admin",
    "producer": "producer",
    "key_publisher": "key-publisher",
    "materialiser": "materialiser",
}

# keytool is a JVM too: the same start-up flags as the broker's cut each call from ~0.5 s to
# ~0.35 s on a 2-core machine, and seven calls make a certificate chain.
_PASSWORD_ENV: Final = "AIGC_AUDIT_KEYTOOL_STOREPASS"
_KEYTOOL_JVM: Final = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto")


class TlsError(AuditError):
    """A certificate could not be made."""


@dataclass(frozen=True)
class TlsFiles:
    keystore: Path
    """PKCS12 with the broker's key and chain and the CA as a trusted entry."""
    password: str
    ca_pem: Path


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, never briefly wider."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


def credentials(state_dir: Path) -> dict[str, dict[str, str]]:
    """Each role's ``{"username", "password"}``, from ``credentials.json``, made on first use with
    random passwords (0600)."""
    path = state_dir / CREDENTIALS_FILE
    if path.is_file():
        doc: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
        return doc
    made = {
        role: {"username": name, "password": secrets.token_urlsafe(24)}
        for role, name in ROLES.items()
    }
    _write_secret(path, json.dumps(made, indent=2) + "\n")
    return made


def scram_arguments(creds: dict[str, dict[str, str]]) -> list[str]:
    """``kafka-storage format`` arguments that create every role's SCRAM credential with the
    metadata log, so the broker authenticates them from its first start (no Admin API call)."""
    args: list[str] = []
    for entry in creds.values():
        # token_urlsafe passwords hold no ',', ']' or '"', which this syntax cannot quote.
        name, password = entry["username"], entry["password"]
        args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
    return args


def keytool_executable(java: str) -> str:
    """The ``keytool`` beside the ``java`` the broker runs with (same JDK)."""
    beside = Path(java).resolve().parent / "keytool"
    if os.access(beside, os.X_OK):
        return str(beside)
    from aigc_audit.infra.kafka.tools import JAVA_HINT, require_tool

    return require_tool("keytool", JAVA_HINT)


def tls_plan(state_dir: Path) -> TlsFiles:
    """Where the broker's TLS files are (or will be), and their password, made now if new: the
    broker's configuration can be written (and its storage formatted) while :func:`make_tls`
    still runs."""
    tls = state_dir / "tls"
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    password_file = tls / "store.password"
    if not password_file.is_file():
        _write_secret(password_file, secrets.token_urlsafe(18))
    password = password_file.read_text(encoding="utf-8")
    return TlsFiles(tls / "broker.p12", password, tls / "ca.pem")


def make_tls(state_dir: Path, keytool: str) -> TlsFiles:
    """The broker's keystore and the CA's PEM, made with ``keytool`` unless already complete."""
    files = tls_plan(state_dir)
    tls, password = files.keystore.parent, files.password
    complete = tls / ".complete"
    if complete.is_file():
        return files
    for stale in tls.iterdir():  # a chain whose making was cut short: start it over
        if stale.name != "store.password":
            stale.unlink()
    ca, csr, crt = tls / "ca.p12", tls / "broker.csr", tls / "broker.crt"
    q = shlex.quote
    # The password goes to keytool through its environment, not its command line, which any
    # local user could read in /proc.
    secret = f"-storetype PKCS12 -storepass:env {_PASSWORD_ENV}"
    ca_store = f"-keystore {q(str(ca))} {secret}"
    broker_store = f"-keystore {q(str(files.keystore))} {secret}"
    ec = "-keyalg EC -groupname secp256r1"  # fast to make, and every TLS stack has it
    steps = [
        f"-genkeypair -alias ca {ec} -dname {q(CA_DN)} -ext bc:c -validity 3650 {ca_store}",
        f"-exportcert -rfc -alias ca -file {q(str(files.ca_pem))} {ca_store}",
        f"-genkeypair -alias broker {ec} -dname {q(BROKER_DN)} -validity 825 {broker_store}",
        f"-certreq -alias broker -file {q(str(csr))} {broker_store}",
        # clientAuth too: the broker presents this certificate to its own controller listener.
        f"-gencert -alias ca -infile {q(str(csr))} -outfile {q(str(crt))} -rfc -validity 825 "
        "-ext SAN=dns:localhost,ip:127.0.0.1 -ext KU=digitalSignature "
        f"-ext EKU=serverAuth,clientAuth {ca_store}",
        f"-importcert -noprompt -alias ca -file {q(str(files.ca_pem))} {broker_store}",
        f"-importcert -alias broker -file {q(str(crt))} {broker_store}",
    ]
    env = {**os.environ, _PASSWORD_ENV: password}
    for step in steps:
        args = shlex.split(step)
        try:
            done = subprocess.run(
                [keytool, *_KEYTOOL_JVM, *args],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TlsError(f"keytool {args[0]} failed: {exc}") from exc
        if done.returncode != 0:
            lines = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
            raise TlsError(f"keytool {args[0]} failed: {lines[-1]}")
    csr.unlink()
    complete.write_text("made by infra/kafka/security.py\n")  # last: the chain is whole
    return files
