"""Configuration: defaults, then a TOML file, then environment variables (highest).

With no configuration at all the platform runs embedded under ``./.aigc-audit``. The file is
``$AIGC_AUDIT_CONFIG`` if set, else ``./aigc-audit.toml`` if present. Environment variables are
``AIGC_AUDIT_<FIELD>`` in upper case, e.g. ``AIGC_AUDIT_DATA_DIR``.
"""

from __future__ import annotations

import json
import os
import tomllib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from aigc_audit.consumers.errors import PlatformError
from aigc_audit.consumers.keys.key_files import default_key_dir
from aigc_audit.consumers.store.retention import RetentionPolicy, check_days, check_overrides
from aigc_audit.producers.client import TOPIC_PREFIX
from aigc_audit.producers.errors import SignatureError
from aigc_audit.producers.signing import read_private_file
from aigc_audit.producers.transports.kafka_security import (
    KafkaSecurity,
    SaslMechanism,
    SecurityProtocol,
)

if TYPE_CHECKING:
    from aigc_audit.consumers.store.migrations import MigrationContext

CONFIG_ENV = "AIGC_AUDIT_CONFIG"
DEFAULT_CONFIG_FILE = Path("aigc-audit.toml")

KafkaRole = Literal["producer", "key_publisher", "materialiser", "admin"]


class SettingsError(PlatformError):
    """The configuration cannot be read or does not validate; the message is one line."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path(".aigc-audit")
    key_dir: Path | None = None
    """Where the platform's private keys (root, checkpoint, export, producers') and root.pub
    live; unset: ``<data_dir>.keys`` beside the data directory. Never inside the data
    directory, which the store's engine can read (consumers.keys.key_files refuses to start)."""
    bus: Literal["embedded", "kafka"] = "embedded"
    bootstrap: str | None = None
    """Kafka bootstrap servers, ``host:port[,host:port]``; required when ``bus`` is kafka."""
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """How clients talk to Kafka: SASL_SSL (SCRAM over TLS) on a secured cluster, as
    ``aigc-audit infra kafka up`` starts; PLAINTEXT, no authentication, for the default demo."""
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_ssl_cafile: Path | None = None
    """PEM of the CA the brokers' certificates chain to (hostnames are always verified);
    unset: the system's trust store."""
    kafka_username: str | None = None
    """This process's Kafka principal, for each role kafka_credentials_file does not name."""
    kafka_password: SecretStr | None = None
    """Its password: prefer ``AIGC_AUDIT_KAFKA_PASSWORD`` or kafka_password_file to writing it
    in the config file. Never logged or shown."""
    kafka_password_file: Path | None = None
    """A file holding that password (surrounding whitespace ignored)."""
    kafka_credentials_file: Path | None = None
    """JSON ``{"<role>": {"username": ..., "password": ...}}`` for the roles this process
    takes, each with its own principal: ``producer`` (writes events), ``key_publisher`` (writes
    the keys topic), ``materialiser`` (reads events and keys, writes checkpoints), ``admin``
    (creates topics and ACLs). `infra kafka up` writes one with every role, for development."""
    topic_prefix: str = Field(default=TOPIC_PREFIX, pattern=r"^[A-Za-z0-9._-]{1,200}$")
    partitions: int | None = Field(default=None, ge=1, le=1024)
    """Partitions of the events topic; default 6 on Kafka, 1 on the embedded log."""
    replication_factor: int = Field(default=1, ge=1, le=16)
    compression: Literal["gzip", "lz4", "zstd", "snappy", "none"] = "lz4"
    """Of Kafka record batches. lz4 costs the producer ~0.1 µs an event, gzip (kafka-python
    compresses at level 9) ~10 µs; gzip makes the bus a third smaller."""
    delivery_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """How long a producer keeps retrying one batch on Kafka before spooling it."""
    reject_alert_streak: int = Field(default=1000, ge=0)
    """Every this many messages refused in a row on one bus partition raise a ``reject_flood``
    alert: a warning line, a count in the materialiser's stats and a ``chain_findings`` row
    (0: never)."""
    on_reject_flood: Literal["alert", "stop"] = "alert"
    """What the materialiser does at a ``reject_flood`` alert: go on quarantining (a flood of
    garbage must not halt ingestion), or stop, for operators who want to look first."""
    quarantine_streak_limit: int | None = Field(default=None, ge=0)
    """Deprecated: ``reject_alert_streak`` with ``on_reject_flood = "stop"`` (0: never stop)."""
    engine_decoding: bool = True
    """On the embedded store, the engine decodes generation events from the exact signed
    bytes (consumers.ingest.engine_path); off: Python decodes every event, ~3x slower."""
    fail_closed: bool = False
    """Producers refuse events while the bus is down instead of spooling them."""
    consumer_group: str = "aigc-audit-materialiser"
    log_origin: str = Field(default="aigc-audit.local", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    """The provider's name for its log: checkpoints name each partition's tree
    ``<log_origin>/<topic>/<partition>`` and are signed by the key of this name."""
    checkpoint_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    """The materialiser signs a checkpoint of a partition that grew at most this often, and
    whenever it has caught up with the bus."""
    batch_size: int = Field(default=500, ge=1, le=100_000)
    linger_ms: int = Field(default=200, ge=0)
    client_max_queue_events: int = Field(default=100_000, ge=1)
    """A producer client holds at most this many accepted events in memory that are not yet
    on the bus or in its spool; then ``emit`` waits (``client_emit_timeout_s``) and refuses."""
    client_max_queue_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """The same bound on their encoded size (estimated from what the client encoded so far)."""
    client_emit_timeout_s: float = Field(default=1.0, ge=0, le=600)
    """How long ``emit`` waits for room in a full queue before BackPressureError (0: refuse
    at once; fail-closed clients always refuse at once)."""
    client_spool_max_bytes: int | None = Field(default=None, ge=1)
    """Cap on a producer's spool (payload bytes); ``emit`` raises SpoolFullError once the spool
    refuses a batch. Unset: only the disk limits it."""
    database: str = Field(default="audit", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    clickhouse_url: str | None = Field(default=None, pattern=r"^https?://")
    """A ClickHouse server (or `aigc-audit serve`), ``http://user:password@host:8123/database``;
    unset: the embedded store in the data directory."""
    clickhouse_cluster: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    """The cluster (a ``remote_servers`` name) the ClickHouse server belongs to: the tables are
    then created ``ON CLUSTER``, replicated, and read and written through Distributed tables."""
    retention_days: int = 365
    """Days the audit tables keep a row, counted from its event time; at least 180. Applied as
    table TTLs by ``aigc-audit migrate``."""
    retention_overrides: dict[str, int] = Field(default_factory=dict)
    """Days per table where they differ from ``retention_days`` (also at least 180). In the
    environment: ``AIGC_AUDIT_RETENTION_OVERRIDES=generations=730,quarantine=365``."""
    serve_tls_cert: Path | None = None
    """PEM certificate (chain) for ``aigc-audit serve``: with ``serve_tls_key`` it speaks HTTPS."""
    serve_tls_key: Path | None = None
    serve_reader_password_hash: str | None = Field(default=None, pattern=r"^scrypt\$")
    """The ``reader`` user's password for ``serve``, as ``aigc-audit serve --hash-password``
    prints it; unset: a fresh random password each run, printed in the served URL."""
    serve_writer_password_hash: str | None = Field(default=None, pattern=r"^scrypt\$")
    """A ``writer`` user for ``serve`` (may insert and run DDL); unset: there is none."""
    reader_max_execution_time_s: float = Field(default=30.0, gt=0, le=3600)
    """Longest a reader's statement runs on ``serve``; it holds the store for that long at
    most, the materialiser and other readers waiting meanwhile."""
    reader_max_memory_bytes: int = Field(default=2 << 30, ge=1 << 20)
    reader_max_result_rows: int = Field(default=1_000_000, ge=1)
    reader_max_result_bytes: int = Field(default=256 << 20, ge=1 << 10)

    @field_validator("retention_days")
    @classmethod
    def _retention_floor(cls, days: int) -> int:
        return check_days("retention_days", days)

    @field_validator("retention_overrides", mode="before")
    @classmethod
    def _overrides_from_text(cls, value: object) -> object:
        # An environment variable is text: ``table=days`` pairs separated by commas.
        if not isinstance(value, str):
            return value
        pairs = [p.strip() for p in value.split(",") if p.strip()]
        if any(p.count("=") != 1 for p in pairs):
            raise ValueError("expected table=days pairs separated by commas")
        return {k.strip(): v.strip() for k, v in (p.split("=") for p in pairs)}

    @field_validator("retention_overrides")
    @classmethod
    def _overrides_floor(cls, overrides: dict[str, int]) -> dict[str, int]:
        return check_overrides(overrides)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_streak_limit(cls, data: Any) -> Any:
        # The old setting stopped the materialiser after N refusals in a row: the same as
        # alerting at N and stopping there. 0 meant never stop, i.e. alert only.
        if not isinstance(data, dict) or data.get("quarantine_streak_limit") is None:
            return data
        if "reject_alert_streak" in data or "on_reject_flood" in data:
            raise ValueError(
                "quarantine_streak_limit is deprecated and cannot be combined with "
                "reject_alert_streak or on_reject_flood: use those two"
            )
        warnings.warn(
            "quarantine_streak_limit is deprecated: use reject_alert_streak and on_reject_flood",
            DeprecationWarning,
            stacklevel=2,
        )
        limit = int(data["quarantine_streak_limit"])
        if limit > 0:
            return {**data, "reject_alert_streak": limit, "on_reject_flood": "stop"}
        return data

    @model_validator(mode="after")
    def _kafka_needs_bootstrap(self) -> Settings:
        if self.bus == "kafka" and not self.bootstrap:
            raise ValueError("the kafka bus needs bootstrap servers (--bootstrap HOST:PORT)")
        return self

    @model_validator(mode="after")
    def _cluster_needs_server(self) -> Settings:
        if self.clickhouse_cluster and not self.clickhouse_url:
            raise ValueError(
                "clickhouse_cluster needs clickhouse_url: the embedded store is a single node"
            )
        return self

    def _kafka_roles(self) -> dict[str, dict[str, str]]:
        path = self.kafka_credentials_file
        if path is None:
            return {}
        try:
            doc = json.loads(_read_secret(path, "kafka_credentials_file"))
        except ValueError as exc:
            raise SettingsError(f"kafka_credentials_file {path} is unreadable: {exc}") from exc
        if not isinstance(doc, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("username"), str) for v in doc.values()
        ):
            raise SettingsError(
                f"kafka_credentials_file {path}: expected {{role: {{username, password}}}}"
            )
        return doc

    def kafka_role_configured(self, role: KafkaRole) -> bool:
        """Whether this process has its own credentials for ``role`` (or needs none)."""
        if self.kafka_security_protocol in ("PLAINTEXT", "SSL"):
            return True
        return role in self._kafka_roles()

    def kafka_security(self, role: KafkaRole) -> KafkaSecurity:
        """How to connect to Kafka as ``role``: its entry in kafka_credentials_file, else
        kafka_username with kafka_password or kafka_password_file."""
        entry = self._kafka_roles().get(role)
        username: str | None
        if entry is not None:
            username, password = entry["username"], entry.get("password")
        else:
            username = self.kafka_username
            password = self.kafka_password.get_secret_value() if self.kafka_password else None
            if password is None and self.kafka_password_file is not None:
                password = _read_secret(self.kafka_password_file, "kafka_password_file").strip()
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=username,
            password=password,
            ssl_cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
        )

    @property
    def partition_count(self) -> int:
        if self.partitions is not None:
            return self.partitions
        return 6 if self.bus == "kafka" else 1

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}.events"

    @property
    def keys_topic(self) -> str:
        return f"{self.topic_prefix}.keys"

    @property
    def checkpoints_topic(self) -> str:
        return f"{self.topic_prefix}.checkpoints"

    @property
    def bus_path(self) -> Path:
        return self.data_dir / "bus.sqlite3"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store"

    @property
    def keys_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else default_key_dir(self.data_dir)

    @property
    def root_key_path(self) -> Path:
        return self.keys_dir / "root.key"

    @property
    def root_public_key_path(self) -> Path:
        return self.keys_dir / "root.pub"

    @property
    def producer_state_dir(self) -> Path:
        return self.data_dir / "producers"


def _read_secret(path: Path, setting: str) -> str:
    """A file of passwords, refused if group or others may read it: like a key file, it lets
    whoever reads it act as a principal."""
    try:
        return read_private_file(path, setting).decode("utf-8")
    except SignatureError as exc:  # KeyFileError (its mode) among them
        raise SettingsError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{setting} {path} is not UTF-8: {exc}") from None


def load_settings(
    config_file: Path | None = None, environ: dict[str, str] | None = None, **overrides: object
) -> Settings:
    """Settings from defaults, then the config file, the environment and overrides (highest)."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}  # raw (text, TOML) values: pydantic validates them below
    path = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        values.update(_read_toml(path))
    for name in Settings.model_fields:
        key = f"AIGC_AUDIT_{name.upper()}"
        if env.get(key):
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        source = f" (from {path})" if path else ""
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {where}{source}: {message}") from exc


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise SettingsError(f"config file {path} does not exist") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"config file {path} is unreadable: {exc}") from exc
    # Accept the settings at top level or under [aigc-audit].
    section = doc.get("aigc-audit", doc)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [aigc-audit] must be a table")
    return section


def migration_context(settings: Settings, database: str) -> MigrationContext:
    """The context ``aigc-audit migrate`` runs with: the settings' cluster and retention, in
    ``database`` (the store's own, which a ClickHouse URL may name)."""
    from aigc_audit.consumers.store.migrations import MigrationContext

    return MigrationContext(
        database,
        settings.clickhouse_cluster,
        RetentionPolicy.of(settings.retention_days, settings.retention_overrides),
    )
