"""Opens the parts of one deployment from its settings: bus, store, keys, clients, materialiser.

The bus is the embedded SQLite log or Kafka; the store is the embedded chDB store. The CLI and
the demo only talk to this module, so other stores plug in here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from aigc_audit.consumers.app.data_dir import DataDirLock
from aigc_audit.consumers.app.settings import KafkaRole, Settings
from aigc_audit.consumers.checkpoints.checkpointer import Checkpointer, CheckpointSigner
from aigc_audit.consumers.ingest.materialiser import Materialiser
from aigc_audit.consumers.keys.key_files import check_keys, engine_read_roots
from aigc_audit.consumers.keys.registry import (
    CHECKPOINT_KEY_OWNER,
    EXPORT_KEY_OWNER,
    ensure_root_key,
    register_producer,
    root_public_key,
)
from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store.embedded import EmbeddedStore
from aigc_audit.consumers.store.served import served_store
from aigc_audit.producers.client import AuditClient
from aigc_audit.producers.closing import Closing
from aigc_audit.producers.signing import SigningKey
from aigc_audit.producers.transports.base import BusReader, BusWriter
from aigc_audit.producers.transports.embedded_log import EmbeddedLog
from aigc_audit.producers.transports.kafka_security import KafkaSecurity


class _OnFirstUse:
    """A BusWriter that asks for the real one when it first publishes (its owner closes it)."""

    def __init__(self, make: Callable[[], BusWriter]) -> None:
        self._make = make

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._make().publish(topic, key, value)

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self._make().publish_many(topic, items)

    def close(self) -> None:
        """The writer belongs to the Deployment, which closes it."""


class Deployment(Closing):
    """Everything one CLI command needs, opened lazily and closed together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock: DataDirLock | None = None
        self._log: EmbeddedLog | None = None
        self._writer: BusWriter | None = None
        # Kafka writers by the principal they write as: the producer's (events), the key
        # publisher's (keys topic) and the materialiser's (checkpoints) may all differ.
        self._kafka_writers: dict[KafkaSecurity, BusWriter] = {}
        self._readers: list[BusReader] = []
        self._store: Store | None = None
        self._clients: list[AuditClient] = []
        self._topics_ready = False
        self._keys_checked = False

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def log(self) -> EmbeddedLog:
        """The embedded log (embedded bus only)."""
        if self._log is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._log = EmbeddedLog(
                self.settings.bus_path, partitions=self.settings.partition_count
            )
        return self._log

    def ensure_topics(self) -> None:
        """On Kafka, create the events and keys topics if they are missing, and on a secured
        cluster grant each role its ACLs. That takes the admin role: a process without admin
        credentials (every service of a real deployment) leaves both to the set-up."""
        s = self.settings
        if s.bus != "kafka" or self._topics_ready:
            return
        if not s.kafka_role_configured("admin"):
            self._topics_ready = True
            return
        from aigc_audit.producers.transports.kafka_topics import (
            Principals,
            TopicPlan,
            ensure_topics,
            grant_acls,
        )

        assert s.bootstrap is not None
        plan = TopicPlan(
            s.events_topic,
            s.keys_topic,
            s.partition_count,
            s.replication_factor,
            s.checkpoints_topic,
        )
        admin = s.kafka_security("admin")
        ensure_topics(s.bootstrap, plan, security=admin)
        if admin.uses_sasl:
            named = {r: s.kafka_security(r).username for r in ("producer", "key_publisher")}
            principals = Principals(
                producer=named["producer"] or "producer",
                key_publisher=named["key_publisher"] or "key-publisher",
                materialiser=s.kafka_security("materialiser").username or "materialiser",
            )
            grant_acls(s.bootstrap, plan, s.consumer_group, principals, admin)
        self._topics_ready = True

    @property
    def writer(self) -> BusWriter:
        """The bus writer of the events topic (on Kafka: as the producer role)."""
        if self._writer is None:
            self._writer = self.writer_as("producer")
        return self._writer

    def writer_as(self, role: KafkaRole) -> BusWriter:
        """A bus writer as ``role``: on Kafka, that role's principal (one writer per distinct
        principal); on the embedded log, the one writer."""
        s = self.settings
        if s.bus != "kafka":
            if self._writer is None:
                self._writer = self.log.writer()
            return self._writer
        from aigc_audit.producers.transports.kafka_writer import KafkaLogWriter, KafkaWriterConfig

        assert s.bootstrap is not None
        security = s.kafka_security(role)
        if security not in self._kafka_writers:
            self.ensure_topics()
            compression = None if s.compression == "none" else s.compression
            writer = KafkaLogWriter(
                KafkaWriterConfig(s.bootstrap, compression, s.delivery_timeout_s, security=security)
            )
            # Bad credentials or TLS are one clear error now; a broker that is down is not an
            # error (publishing spools).
            writer.check_credentials()
            self._kafka_writers[security] = writer
        return self._kafka_writers[security]

    def bus_readers(self) -> tuple[BusReader, BusReader]:
        """The materialiser's readers: the events topic in its group, and the key registry."""
        s = self.settings
        if s.bus == "kafka":
            from aigc_audit.producers.transports.kafka_reader import (
                KafkaGroupReader,
                KafkaRegistryReader,
            )

            assert s.bootstrap is not None
            self.ensure_topics()
            security = s.kafka_security("materialiser")
            events: BusReader = KafkaGroupReader(
                s.bootstrap, s.consumer_group, [s.events_topic], security=security
            )
            keys: BusReader = KafkaRegistryReader(s.bootstrap, s.keys_topic, security=security)
        else:
            events = self.log.reader(s.consumer_group, [s.events_topic])
            keys = self.log.reader(f"{s.consumer_group}.keys", [s.keys_topic])
        self._readers += [events, keys]
        return events, keys

    def store(self, migrate: bool = True) -> Store:
        """The store, opened once: the ClickHouse server the settings name, or the embedded
        store in the data directory (after taking the directory's lock).

        ``migrate``: when this call opens the store, bring its schema up to date on the
        settings' cluster (``aigc-audit migrate`` passes False to run the migrations itself).
        Retention TTLs are not applied here: a TTL deletes rows, so changing one is left to the
        explicit ``aigc-audit migrate``.
        """
        if self._store is None:
            url = self.settings.clickhouse_url
            if url:
                from aigc_audit.consumers.store.clickhouse import ClickHouseStore

                self._store = ClickHouseStore.from_url(url)
            else:
                if self._lock is None:
                    self._lock = DataDirLock(self.data_dir).acquire()
                self._store = EmbeddedStore(self.settings.store_path, self.settings.database)
                # Asked of the engine itself: the directories it reads are where no key may be.
                self._check_keys(engine_read_roots(self._store))
            if migrate:
                from aigc_audit.consumers.store.migrations import MigrationContext
                from aigc_audit.consumers.store.migrations import migrate as run_migrations

                context = MigrationContext(self._store.database, self.settings.clickhouse_cluster)
                run_migrations(self._store, context)
        return self._store

    def read_store(self) -> Store:
        """The store for reading: the configured server, else a running ``aigc-audit serve`` of
        this data directory (through clickhouse-connect), else the embedded store itself."""
        if self._store is None and not self.settings.clickhouse_url:
            served = served_store(self.data_dir)
            if served is not None:
                from aigc_audit.consumers.store.clickhouse import ClickHouseStore

                self._store = ClickHouseStore.from_url(served.url)
                return self._store
        return self.store()

    def _check_keys(self, engine_roots: list[Path] | None = None) -> None:
        """Refuse to go on (KeyExposureError) if a private key is in the engine's reach or
        open to others; once with the engine's own roots, once before any key is used."""
        if self._keys_checked and engine_roots is None:
            return
        s = self.settings
        check_keys(
            s.keys_dir, data_dir=s.data_dir, engine_roots=[s.store_path, *(engine_roots or [])]
        )
        self._keys_checked = True

    def root_key(self) -> SigningKey:
        self._check_keys()
        s = self.settings
        return ensure_root_key(s.root_key_path, s.root_public_key_path)

    def producer_key(self, producer_id: str) -> SigningKey:
        # Registrations are signed by the root key and written as the key publisher, the one
        # principal allowed on the keys topic; its writer is made only if a key is registered
        # now, so a process whose keys exist (a materialiser) needs no key publisher login.
        return register_producer(
            root=self.root_key(),
            bus=_OnFirstUse(lambda: self.writer_as("key_publisher")),
            topic=self.settings.keys_topic,
            keys_dir=self.settings.keys_dir,
            producer_id=producer_id,
        )

    def checkpoint_signer(self) -> CheckpointSigner:
        """The key that signs this deployment's checkpoints, registered under the root (as the
        platform's ``aigc-audit.checkpoint``) on first use; its note name is ``log_origin``."""
        key = self.producer_key(CHECKPOINT_KEY_OWNER)
        return CheckpointSigner(key, self.settings.log_origin)

    def export_key(self) -> SigningKey:
        """The key that signs export manifests, registered under the root (as the platform's
        ``aigc-audit.export``) on first use."""
        return self.producer_key(EXPORT_KEY_OWNER)

    def client(self, service_id: str, producer_id: str) -> AuditClient:
        """An audit client for ``producer_id``, its key registered on first use."""
        s = self.settings
        client = AuditClient(
            service_id=service_id,
            producer_id=producer_id,
            key=self.producer_key(producer_id),
            bus=self.writer,
            topic=s.events_topic,
            state_dir=s.producer_state_dir,
            batch_size=s.batch_size,
            linger=s.linger_ms / 1000,
            fail_closed=s.fail_closed,
            max_queue_events=s.client_max_queue_events,
            max_queue_bytes=s.client_max_queue_bytes,
            emit_timeout_s=s.client_emit_timeout_s,
            spool_max_bytes=s.client_spool_max_bytes,
        )
        self._clients.append(client)
        return client

    def materialiser(
        self, before_commit: Callable[[], None] | None = None, store: Store | None = None
    ) -> Materialiser:
        """The materialiser of this deployment's consumer group, writing to ``store`` (default:
        :meth:`store`); ``before_commit`` is a test hook run after a poll's inserts and before
        its bus commit."""
        s = self.settings
        if not s.root_public_key_path.exists():
            self.root_key()  # the embedded default makes its trust anchor on first use
        store = store or self.store()
        # The platform's own keys are registered before the first poll, so that the store holds
        # their registrations by the time an export needs them.
        self.export_key()
        checkpointer = Checkpointer(
            store,
            self.checkpoint_signer(),
            log_origin=s.log_origin,
            interval_s=s.checkpoint_interval_s,
            bus=self.writer_as("materialiser"),  # it signs and publishes checkpoints
            topic=s.checkpoints_topic,
        )
        events, keys = self.bus_readers()
        return Materialiser(
            store=store,
            events=events,
            keys=keys,
            root_public_key=root_public_key(s.root_public_key_path),
            before_commit=before_commit,
            reject_alert_streak=s.reject_alert_streak,
            on_reject_flood=s.on_reject_flood,
            checkpointer=checkpointer,
            engine_decoding=None if s.engine_decoding else False,
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
        kafka_writers = list(self._kafka_writers.values())
        self._kafka_writers.clear()
        for writer in kafka_writers:
            writer.close()
        if self._writer is not None:
            if self._writer not in kafka_writers:
                self._writer.close()
            self._writer = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
