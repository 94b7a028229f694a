"""Configuration: defaults, then a TOML file, then environment variables (highest).

With no configuration at all the platform runs embedded under ``./.aigc-audit``. The file is
``$AIGC_AUDIT_CONFIG`` if set, else ``./aigc-audit.toml`` if present. Environment variables are
``AIGC_AUDIT_<FIELD>`` in upper case, e.g. ``AIGC_AUDIT_DATA_DIR``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from consumers.errors import PlatformError
from consumers.store.retention import check_days, check_overrides
from producers.client import TOPIC_PREFIX

CONFIG_ENV = "AIGC_AUDIT_CONFIG"
DEFAULT_CONFIG_FILE = Path("aigc-audit.toml")


class SettingsError(PlatformError):
    """The configuration cannot be read or does not validate; the message is one line."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path(".aigc-audit")
    bus: Literal["embedded", "kafka"] = "embedded"
    bootstrap: str | None = None
    """Kafka bootstrap servers, ``host:port[,host:port]``; required when ``bus`` is kafka."""
    topic_prefix: str = Field(default=TOPIC_PREFIX, pattern=r"^[A-Za-z0-9._-]{1,200}$")
    partitions: int | None = Field(default=None, ge=1, le=1024)
    """Partitions of the events topic; default 6 on Kafka, 1 on the embedded log."""
    replication_factor: int = Field(default=1, ge=1, le=16)
    compression: Literal["gzip", "lz4", "zstd", "snappy", "none"] = "lz4"
    """Of Kafka record batches. lz4 costs the producer ~0.1 µs an event, gzip (kafka-python
    compresses at level 9) ~10 µs; gzip makes the bus a third smaller."""
    delivery_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """How long a producer keeps retrying one batch on Kafka before spooling it."""
    quarantine_streak_limit: int = Field(default=1000, ge=0)
    """The materialiser stops after this many quarantined messages in a row (0: never)."""
    engine_decoding: bool = True
    """On the embedded store, the engine decodes generation events from the exact signed
    bytes (consumers.generation_ingest); off: Python decodes every event, ~3x slower."""
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
        return self.data_dir / "keys"

    @property
    def root_key_path(self) -> Path:
        return self.keys_dir / "root.key"

    @property
    def root_public_key_path(self) -> Path:
        return self.keys_dir / "root.pub"

    @property
    def producer_state_dir(self) -> Path:
        return self.data_dir / "producers"


def load_settings(
    config_file: Path | None = None, environ: dict[str, str] | None = None, **overrides: object
) -> Settings:
    """Settings from defaults, then the config file, the environment and overrides (highest)."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
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
