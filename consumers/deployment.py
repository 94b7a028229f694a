"""Opens the parts of one deployment from its settings: bus, store, keys, clients, materialiser.

The bus is the embedded SQLite log or Kafka; the store is the embedded chDB store. The CLI and
the demo only talk to this module, so other stores plug in here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from consumers.checkpoints.checkpointer import Checkpointer, CheckpointSigner
from consumers.data_dir import DataDirLock
from consumers.key_registry import (
    CHECKPOINT_KEY_OWNER,
    EXPORT_KEY_OWNER,
    ensure_root_key,
    register_producer,
    root_public_key,
)
from consumers.materialiser import Materialiser
from consumers.settings import Settings
from consumers.store.base import Store
from consumers.store.embedded import EmbeddedStore
from producers.client import AuditClient
from producers.closing import Closing
from producers.signing import SigningKey
from producers.transports.base import BusReader, BusWriter
from producers.transports.embedded_log import EmbeddedLog


class Deployment(Closing):
    """Everything one CLI command needs, opened lazily and closed together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock: DataDirLock | None = None
        self._log: EmbeddedLog | None = None
        self._writer: BusWriter | None = None
        self._readers: list[BusReader] = []
        self._store: Store | None = None
        self._clients: list[AuditClient] = []
        self._topics_ready = False

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
        """On Kafka, create the events and keys topics if they are missing."""
        s = self.settings
        if s.bus != "kafka" or self._topics_ready:
            return
        from consumers.kafka_topics import TopicPlan, ensure_topics

        assert s.bootstrap is not None
        ensure_topics(
            s.bootstrap,
            TopicPlan(
                s.events_topic,
                s.keys_topic,
                s.partition_count,
                s.replication_factor,
                s.checkpoints_topic,
            ),
        )
        self._topics_ready = True

    @property
    def writer(self) -> BusWriter:
        if self._writer is None:
            s = self.settings
            if s.bus == "kafka":
                from producers.transports.kafka_writer import KafkaLogWriter, KafkaWriterConfig

                assert s.bootstrap is not None
                self.ensure_topics()
                compression = None if s.compression == "none" else s.compression
                self._writer = KafkaLogWriter(
                    KafkaWriterConfig(s.bootstrap, compression, s.delivery_timeout_s)
                )
            else:
                self._writer = self.log.writer()
        return self._writer

    def bus_readers(self) -> tuple[BusReader, BusReader]:
        """The materialiser's readers: the events topic in its group, and the key registry."""
        s = self.settings
        if s.bus == "kafka":
            from consumers.kafka_source import KafkaGroupReader, KafkaRegistryReader

            assert s.bootstrap is not None
            self.ensure_topics()
            events: BusReader = KafkaGroupReader(s.bootstrap, s.consumer_group, [s.events_topic])
            keys: BusReader = KafkaRegistryReader(s.bootstrap, s.keys_topic)
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
                from consumers.store.clickhouse import ClickHouseStore

                self._store = ClickHouseStore.from_url(url)
            else:
                if self._lock is None:
                    self._lock = DataDirLock(self.data_dir).acquire()
                self._store = EmbeddedStore(self.settings.store_path, self.settings.database)
            if migrate:
                from consumers.store.migrations import MigrationContext
                from consumers.store.migrations import migrate as run_migrations

                context = MigrationContext(self._store.database, self.settings.clickhouse_cluster)
                run_migrations(self._store, context)
        return self._store

    def read_store(self) -> Store:
        """The store for reading: the configured server, else a running ``aigc-audit serve`` of
        this data directory (through clickhouse-connect), else the embedded store itself."""
        if self._store is None and not self.settings.clickhouse_url:
            from consumers.serve import served_store

            served = served_store(self.data_dir)
            if served is not None:
                from consumers.store.clickhouse import ClickHouseStore

                self._store = ClickHouseStore.from_url(served.url)
                return self._store
        return self.store()

    def root_key(self) -> SigningKey:
        s = self.settings
        return ensure_root_key(s.root_key_path, s.root_public_key_path)

    def producer_key(self, producer_id: str) -> SigningKey:
        return register_producer(
            root=self.root_key(),
            bus=self.writer,
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
            bus=self.writer,
            topic=s.checkpoints_topic,
        )
        events, keys = self.bus_readers()
        return Materialiser(
            store=store,
            events=events,
            keys=keys,
            root_public_key=root_public_key(s.root_public_key_path),
            before_commit=before_commit,
            quarantine_streak_limit=s.quarantine_streak_limit,
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
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
