"""The embedded bus: one SQLite file in WAL mode used as a Kafka-like append-only log.

It is the default bus, for a single machine: producers and consumers in any number of threads and
processes share one file (``<data_dir>/bus.sqlite3``). It keeps Kafka's model (see
:mod:`producers.transports.base`) so a Kafka-backed transport can replace it without the callers
noticing:

* Offsets are assigned densely from 0 per ``(topic, partition)`` inside the same ``BEGIN
  IMMEDIATE`` transaction that inserts the messages. SQLite allows one writer at a time across
  the whole file, so concurrent writers in several threads or processes queue up (for at most
  ``busy_timeout_s``) instead of colliding or leaving holes.
* ``synchronous=FULL``: the WAL is fsynced on every commit, so a message is durable, even
  across a power loss, when ``publish`` returns. Audit data is worth the fsync.
* A keyed message goes to ``murmur2(key) % partitions``, the same partition Kafka's default
  partitioner picks, so one producer's batches stay ordered in one partition on either bus.
  Unkeyed messages rotate over partitions, one partition per call (Kafka's "sticky" behaviour).
* Topics are created on first publish with the log's default partition count and keep that
  count forever; :meth:`EmbeddedLog.create_topic` creates one with another count.
* Consumer groups store one committed *next* offset per partition. Positions move only on
  :meth:`EmbeddedLogReader.commit`.

Not modelled: group membership and rebalancing. A group is meant to be read by **one consumer
process at a time**; a second reader of the same group does not get a share of the partitions,
it simply reads everything and shares (and overwrites) the committed positions. Nor is retention:
nothing is ever deleted, so replaying from offset 0 always sees the whole history.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aigc_audit.producers.closing import Closing
from aigc_audit.producers.errors import BusError, BusUnavailableError
from aigc_audit.producers.transports.base import BusMessage, TopicPartition

__all__ = [
    "DEFAULT_FILENAME",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "EmbeddedLog",
    "EmbeddedLogReader",
    "EmbeddedLogWriter",
    "murmur2",
    "partition_for_key",
]

#: File name used when :class:`EmbeddedLog` is given a directory.
DEFAULT_FILENAME = "bus.sqlite3"
#: Kafka's default producer ``max.request.size``: refusing the same sizes here means a batch
#: size that works on the embedded bus also works on a default Kafka cluster.
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
# Written to the SQLite header so we never adopt (and add tables to) someone else's database.
_APPLICATION_ID = 0x41494742  # "AIGB": aigc-audit bus
_SCHEMA_VERSION = 1
# Kafka's rule for topic names, so a name that works here also works on a cluster.
_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    topic       TEXT    NOT NULL PRIMARY KEY,
    partitions  INTEGER NOT NULL CHECK (partitions > 0),
    created_us  INTEGER NOT NULL
);
-- The next offset per partition lives in its own row rather than being derived from
-- MAX(offset): it is one indexed read per write, and it can never go backwards.
CREATE TABLE IF NOT EXISTS partition_heads (
    topic        TEXT    NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic, "partition")
) WITHOUT ROWID;
-- A rowid table (not WITHOUT ROWID) because values are signed batches of kilobytes: large rows
-- belong in the table b-tree, with the primary key in its own compact index for range reads.
CREATE TABLE IF NOT EXISTS messages (
    topic         TEXT    NOT NULL,
    "partition"   INTEGER NOT NULL,
    "offset"      INTEGER NOT NULL,
    key           BLOB,
    value         BLOB    NOT NULL,
    timestamp_us  INTEGER NOT NULL,
    PRIMARY KEY (topic, "partition", "offset")
);
CREATE TABLE IF NOT EXISTS consumer_positions (
    "group"      TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL CHECK (next_offset >= 0),
    updated_us   INTEGER NOT NULL,
    PRIMARY KEY ("group", topic, "partition")
) WITHOUT ROWID;
"""

_SELECT_MESSAGES = (
    'SELECT topic, "partition", "offset", key, value, timestamp_us FROM messages '
    'WHERE topic = ? AND "partition" = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?'
)
_INSERT_MESSAGE = (
    'INSERT INTO messages (topic, "partition", "offset", key, value, timestamp_us) '
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_HEAD = (
    'INSERT INTO partition_heads (topic, "partition", next_offset) VALUES (?, ?, ?) '
    'ON CONFLICT (topic, "partition") DO UPDATE SET next_offset = excluded.next_offset'
)
_UPSERT_POSITION = (
    'INSERT INTO consumer_positions ("group", topic, "partition", next_offset, updated_us) '
    'VALUES (?, ?, ?, ?, ?) ON CONFLICT ("group", topic, "partition") '
    "DO UPDATE SET next_offset = excluded.next_offset, updated_us = excluded.updated_us"
)


def murmur2(data: bytes) -> int:
    """Return Kafka's murmur2 hash of ``data`` as a signed 32-bit int (``Utils.murmur2``)."""
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


@functools.lru_cache(maxsize=4096)
def partition_for_key(key: bytes, partitions: int) -> int:
    """Return the partition Kafka's default partitioner gives ``key`` among ``partitions``.

    Stable across processes, runs and machines (unlike Python's ``hash``). Cached because a
    service has few producer ids and publishes under them over and over.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _now_us() -> int:
    return time.time_ns() // 1000


def _check_topic(topic: object) -> str:
    if not isinstance(topic, str) or not _TOPIC_RE.fullmatch(topic) or topic in {".", ".."}:
        raise BusError(f"invalid topic name {topic!r}: use 1-249 characters from A-Z a-z 0-9 . _ -")
    return topic


@contextlib.contextmanager
def _translated(path: Path, busy_timeout_s: float) -> Iterator[None]:
    """Turn sqlite3 errors into the library's one-line bus errors, keeping the cause chained."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        low = text.lower()
        if "not a database" in low or "malformed" in low:
            raise BusUnavailableError(f"not a usable SQLite bus log: {path} ({text})") from exc
        if "locked" in low or "busy" in low:
            raise BusUnavailableError(
                f"bus log {path} is held by another process (waited {busy_timeout_s:g}s)"
            ) from exc
        if isinstance(exc, sqlite3.OperationalError):
            # Disk full, I/O error, read-only file, vanished directory: the bus cannot take
            # messages right now, which is what BusUnavailableError (spool and retry) is for.
            raise BusUnavailableError(f"bus log {path} unavailable: {text}") from exc
        raise BusError(f"bus log {path}: {text}") from exc


class _Db:
    """One SQLite connection behind a lock.

    sqlite3 connections must not be used by two threads at once; a lock per connection is the
    simplest way to let any thread use it, and costs nothing since SQLite serialises writers to
    the file anyway.
    """

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.lock = threading.RLock()
        self._closed = False
        with _translated(path, busy_timeout_s):
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves, because the
            # module's implicit transactions would start deferred and could fail on upgrade.
            # timeout= is SQLite's busy timeout: other writers make us wait, not fail.
            self.conn = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise BusUnavailableError(
                        f"bus log {path} cannot use WAL mode (got {mode!r}); "
                        "put it on a local file system"
                    )
                self.conn.execute("PRAGMA synchronous=FULL")
            except BaseException:
                self.conn.close()
                raise

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        if self._closed:
            raise BusError(f"bus log {self.path}: used after close()")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one write transaction; commit on success, roll back on error.

        BEGIN IMMEDIATE takes the file's write lock up front, so the reads that decide offsets
        and the inserts that use them cannot interleave with another writer's.
        """
        with self.lock:
            self.check_open()
            with _translated(self.path, self.busy_timeout_s):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock for reads; callers fetch results fully so no read stays open."""
        with self.lock:
            self.check_open()
            with _translated(self.path, self.busy_timeout_s):
                yield self.conn

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self.conn.close()


def _rows_to_messages(rows: list[tuple[Any, ...]]) -> list[BusMessage]:
    return [BusMessage(t, p, o, k, v, ts) for (t, p, o, k, v, ts) in rows]


class EmbeddedLog(Closing):
    """A bus log in one SQLite file: opens it, creates topics, hands out writers and readers.

    ``path`` is the SQLite file, or an existing directory in which ``bus.sqlite3`` is used. The
    file is created if missing; its directory must exist. ``partitions`` is the count given to
    topics created from now on (existing topics keep theirs). ``busy_timeout_s`` bounds how long
    an operation waits for other processes' writes before raising BusUnavailableError.

    Raises BusUnavailableError (one line naming the path) when the directory does not exist, the
    file is not a SQLite database, or it is a database of something other than a bus log.

    Writers and readers have their own connections and outlive :meth:`close` of the log; close
    them separately. All methods are thread-safe.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        partitions: int = 1,
        busy_timeout_s: float = 30.0,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
        if busy_timeout_s < 0:
            raise ValueError(f"busy_timeout_s must be >= 0, got {busy_timeout_s!r}")
        if max_message_bytes is not None and max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be >= 1 or None, got {max_message_bytes!r}")
        file = Path(path)
        if file.is_dir():
            file = file / DEFAULT_FILENAME
        if not file.parent.is_dir():
            raise BusUnavailableError(f"bus log directory does not exist: {file.parent}")
        self.path: Path = file
        self.default_partitions: int = partitions
        self.busy_timeout_s: float = busy_timeout_s
        self.max_message_bytes: int | None = max_message_bytes
        self._db = _Db(file, busy_timeout_s)
        try:
            self._init_schema()
        except BaseException:
            self._db.close()
            raise

    def _init_schema(self) -> None:
        with self._db.write() as conn:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id == 0:
                has_tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if has_tables:
                    raise BusUnavailableError(
                        f"{self.path} is a SQLite database but not an aigc-audit bus log"
                    )
                # executescript would COMMIT our transaction; run the statements one by one.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            elif app_id != _APPLICATION_ID:
                raise BusUnavailableError(
                    f"{self.path} is a SQLite database but not an aigc-audit bus log"
                )
            elif version > _SCHEMA_VERSION:
                raise BusUnavailableError(
                    f"bus log {self.path} has schema version {version}, newer than this "
                    f"library's {_SCHEMA_VERSION}; upgrade aigc-audit"
                )

    # -- handing out clients ---------------------------------------------------------------

    def writer(self) -> EmbeddedLogWriter:
        """Return a new writer with its own connection (thread-safe, share it freely)."""
        return EmbeddedLogWriter(self)

    def reader(self, group: str, topics: Sequence[str]) -> EmbeddedLogReader:
        """Return a reader for ``group`` over ``topics``, positioned at the group's committed
        offsets (0 for partitions the group never committed)."""
        return EmbeddedLogReader(self, group, topics)

    # -- topics and inspection -------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int | None = None) -> int:
        """Create ``topic`` with ``partitions`` (default: the log's) unless it exists.

        Returns the topic's partition count, which is the existing one if it already existed.
        """
        _check_topic(topic)
        count = self.default_partitions if partitions is None else partitions
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
        with self._db.write() as conn:
            return _ensure_topic(conn, topic, count)

    def topics(self) -> list[str]:
        """Return the names of all topics, sorted."""
        with self._db.read() as conn:
            return [r[0] for r in conn.execute("SELECT topic FROM topics ORDER BY topic")]

    def partitions_for(self, topic: str) -> list[int]:
        """Return the partition numbers of ``topic`` (``[]`` if the topic does not exist)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT partitions FROM topics WHERE topic = ?", (topic,)).fetchone()
        return list(range(row[0])) if row else []

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Return, per partition of ``topic``, the offset the next message would get."""
        partitions = self.partitions_for(topic)
        with self._db.read() as conn:
            heads = dict(
                conn.execute(
                    'SELECT "partition", next_offset FROM partition_heads WHERE topic = ?',
                    (topic,),
                ).fetchall()
            )
        return {p: heads.get(p, 0) for p in partitions}

    def message_count(self, topic: str) -> int:
        """Return how many messages ``topic`` holds (nothing is ever deleted)."""
        return sum(self.end_offsets(topic).values())

    def latest_by_key(self, topic: str) -> dict[bytes, BusMessage]:
        """Return the last message per key of ``topic``: what a compacted Kafka topic retains.

        Unkeyed messages are ignored (compaction would drop them). Values are never null here,
        so there are no tombstones: a key, once written, stays. Used for the key registry, which
        is small, so reading it in one query is fine.
        """
        with self._db.read() as conn:
            rows = conn.execute(
                'SELECT m.topic, m."partition", m."offset", m.key, m.value, m.timestamp_us '
                "FROM messages AS m JOIN ("
                '  SELECT key, "partition", MAX("offset") AS last FROM messages '
                '  WHERE topic = ? AND key IS NOT NULL GROUP BY key, "partition"'
                ') AS l ON m.topic = ? AND m."partition" = l."partition" AND m."offset" = l.last',
                (topic, topic),
            ).fetchall()
        latest: dict[bytes, BusMessage] = {}
        for message in _rows_to_messages(rows):
            assert message.key is not None
            # A key lives in one partition, since partition counts never change; the timestamp
            # rule only matters for a file edited by hand.
            seen = latest.get(message.key)
            if seen is None or message.timestamp_us >= seen.timestamp_us:
                latest[message.key] = message
        return latest

    def close(self) -> None:
        """Close the log's own connection. Idempotent; writers and readers stay usable."""
        self._db.close()

    def __repr__(self) -> str:
        return f"EmbeddedLog({str(self.path)!r}, partitions={self.default_partitions})"


def _ensure_topic(conn: sqlite3.Connection, topic: str, partitions: int) -> int:
    """Create ``topic`` if missing (inside the caller's write transaction); return its count."""
    conn.execute(
        "INSERT OR IGNORE INTO topics (topic, partitions, created_us) VALUES (?, ?, ?)",
        (topic, partitions, _now_us()),
    )
    return int(
        conn.execute("SELECT partitions FROM topics WHERE topic = ?", (topic,)).fetchone()[0]
    )


class EmbeddedLogWriter(Closing):
    """Appends to an :class:`EmbeddedLog`; implements :class:`~producers.transports.base.BusWriter`.

    Thread-safe: one connection behind a lock. Several writers (in this or other processes) may
    write the same file at once; SQLite serialises their transactions.
    """

    def __init__(self, log: EmbeddedLog) -> None:
        self._log = log
        self._db = _Db(log.path, log.busy_timeout_s)
        # Partition counts never change once a topic exists, so caching them is safe.
        self._partitions: dict[str, int] = {}
        self._sticky = itertools.count()

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Append one message; durable when this returns. See BusWriter.publish."""
        self.publish_many(topic, [(key, value)])

    def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Append all ``items`` in one transaction; durable when this returns.

        Raises BusError for an invalid topic name or a message over ``max_message_bytes`` (then
        nothing is appended), TypeError for keys or values that are not bytes, and
        BusUnavailableError when the file cannot be written (locked too long, disk full, ...).
        """
        _check_topic(topic)
        if not items:
            return
        limit = self._log.max_message_bytes
        checked: list[tuple[bytes | None, bytes]] = []
        for index, item in enumerate(items):
            key, value = item
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"value #{index} must be bytes, got {type(value).__name__}")
            if key is not None and not isinstance(key, bytes | bytearray | memoryview):
                raise TypeError(f"key #{index} must be bytes or None, got {type(key).__name__}")
            key_b = None if key is None else bytes(key)
            value_b = bytes(value)
            size = len(value_b) + (len(key_b) if key_b is not None else 0)
            if limit is not None and size > limit:
                raise BusError(
                    f"message #{index} for topic {topic!r} is {size} bytes, over the bus limit "
                    f"of {limit} bytes; use smaller batches"
                )
            checked.append((key_b, value_b))

        with self._db.write() as conn:
            count = self._partitions.get(topic) or _ensure_topic(
                conn, topic, self._log.default_partitions
            )
            # Unkeyed items of one call share a partition, rotating per call like Kafka's
            # sticky partitioner: it keeps a batch together without starving any partition.
            sticky = next(self._sticky) % count
            by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
            for key_b, value_b in checked:
                partition = sticky if key_b is None else partition_for_key(key_b, count)
                by_partition.setdefault(partition, []).append((key_b, value_b))
            timestamp = _now_us()
            for partition, rows in by_partition.items():
                head_row = conn.execute(
                    'SELECT next_offset FROM partition_heads WHERE topic = ? AND "partition" = ?',
                    (topic, partition),
                ).fetchone()
                head = head_row[0] if head_row else 0
                conn.executemany(
                    _INSERT_MESSAGE,
                    (
                        (topic, partition, head + i, key_b, value_b, timestamp)
                        for i, (key_b, value_b) in enumerate(rows)
                    ),
                )
                conn.execute(_UPSERT_HEAD, (topic, partition, head + len(rows)))
        # Only after COMMIT: a rolled-back auto-create must not be remembered.
        self._partitions[topic] = count

    def check_available(self) -> None:
        """Raise BusUnavailableError if this writer is closed or its log file is gone.

        Deliberately cheap (one ``stat``, no lock, no transaction): a fail-closed client runs it
        on the service's thread. A file locked by another process is not detected here; the
        next publish finds out, after ``busy_timeout_s``.
        """
        if self._db.closed:
            raise BusUnavailableError(f"bus log {self._log.path}: writer is closed")
        if not self._log.path.exists():
            raise BusUnavailableError(f"bus log {self._log.path} no longer exists")

    def close(self) -> None:
        """Close the connection. Idempotent; publishing afterwards raises BusError."""
        self._db.close()


class EmbeddedLogReader(Closing):
    """Reads topics of an :class:`EmbeddedLog` for one consumer group.

    Implements :class:`~producers.transports.base.BusReader`. Partitions of the subscribed
    topics are discovered on every poll, so topics created after the reader still get read.
    Meant for one consumer process per group at a time (see the module docstring). Thread-safe,
    though one consumer loop per reader is the intended use.
    """

    # Poll's wait backs off between these bounds: short enough that a consumer sees new data
    # within milliseconds, long enough that an idle consumer costs next to nothing.
    _MIN_WAIT_S = 0.002
    _MAX_WAIT_S = 0.05

    def __init__(self, log: EmbeddedLog, group: str, topics: Sequence[str]) -> None:
        if not isinstance(group, str) or not group:
            raise ValueError(f"group must be a non-empty string, got {group!r}")
        if isinstance(topics, str):
            # A bare string is a sequence of one-letter "topics": almost certainly a mistake.
            raise TypeError("topics must be a sequence of topic names, not a single string")
        if not topics:
            raise ValueError("topics must name at least one topic")
        self.group: str = group
        self.topics: tuple[str, ...] = tuple(dict.fromkeys(_check_topic(t) for t in topics))
        self._db = _Db(log.path, log.busy_timeout_s)
        self._partitions: dict[str, int] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._rotation = 0
        with self._db.read() as conn:
            self._data_version = self._read_data_version(conn)
            self._discover(conn)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _read_data_version(conn: sqlite3.Connection) -> int:
        # Changes whenever another connection commits: a cheap "anything new?" check.
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _discover(self, conn: sqlite3.Connection) -> None:
        """Pick up subscribed topics that exist now; start their partitions at the committed
        position, or 0."""
        missing = [t for t in self.topics if t not in self._partitions]
        if not missing:
            return
        marks = ",".join("?" * len(missing))
        found = conn.execute(
            f"SELECT topic, partitions FROM topics WHERE topic IN ({marks})", missing
        ).fetchall()
        if not found:
            return
        committed = {
            (t, p): o
            for t, p, o in conn.execute(
                'SELECT topic, "partition", next_offset FROM consumer_positions WHERE "group" = ?',
                (self.group,),
            ).fetchall()
        }
        for topic, count in found:
            self._partitions[topic] = count
            for partition in range(count):
                tp = (topic, partition)
                self._positions.setdefault(tp, committed.get(tp, 0))

    def _heads(self, conn: sqlite3.Connection) -> dict[TopicPartition, int]:
        topics = list(self._partitions)
        if not topics:
            return {}
        marks = ",".join("?" * len(topics))
        rows = conn.execute(
            f'SELECT topic, "partition", next_offset FROM partition_heads WHERE topic IN ({marks})',
            topics,
        ).fetchall()
        heads = {(t, p): o for t, p, o in rows}
        return {tp: heads.get(tp, 0) for tp in self._positions}

    def _fetch(self, max_messages: int) -> list[BusMessage]:
        with self._db.read() as conn:
            self._discover(conn)
            heads = self._heads(conn)
            pending = [tp for tp, pos in self._positions.items() if heads[tp] > pos]
            if not pending:
                return []
            # Start from a different partition each time so a busy partition cannot starve
            # the others when max_messages is smaller than the backlog.
            start = self._rotation % len(pending)
            self._rotation += 1
            out: list[BusMessage] = []
            for topic, partition in pending[start:] + pending[:start]:
                room = max_messages - len(out)
                if room <= 0:
                    break
                rows = conn.execute(
                    _SELECT_MESSAGES, (topic, partition, self._positions[(topic, partition)], room)
                ).fetchall()
                if rows:
                    out.extend(_rows_to_messages(rows))
                    self._positions[(topic, partition)] = rows[-1][2] + 1
            return out

    def _changed(self) -> bool:
        with self._db.read() as conn:
            version = self._read_data_version(conn)
        if version != self._data_version:
            self._data_version = version
            return True
        return False

    # -- BusReader ---------------------------------------------------------------------------

    def poll(self, max_messages: int = 500, timeout_s: float = 0.0) -> list[BusMessage]:
        """Return up to ``max_messages`` messages after the current positions; see BusReader.

        With nothing new, waits up to ``timeout_s`` (0: do not wait) for another connection to
        commit, then returns ``[]``. The lock is not held while waiting, so other threads can
        commit meanwhile.
        """
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1:
            raise ValueError(f"max_messages must be an int >= 1, got {max_messages!r}")
        deadline = time.monotonic() + max(0.0, timeout_s)
        wait = self._MIN_WAIT_S
        while True:
            messages = self._fetch(max_messages)
            if messages:
                return messages
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                time.sleep(min(wait, remaining))
                wait = min(wait * 2, self._MAX_WAIT_S)
                if self._changed():
                    break

    def commit(self, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Durably store the group's next offsets; ``None`` commits the current positions.

        Raises ValueError (and commits nothing) for a negative position or one beyond the
        partition's end offset: committing past the end would silently skip messages not yet
        written, which an audit log must never do.
        """
        if positions is None:
            with self._db.lock:
                positions = dict(self._positions)
        if not positions:
            return
        rows = []
        now = _now_us()
        for tp, next_offset in positions.items():
            topic, partition = tp
            if isinstance(next_offset, bool) or not isinstance(next_offset, int):
                raise ValueError(f"position for {tp!r} must be an int, got {next_offset!r}")
            if next_offset < 0:
                raise ValueError(f"position for {tp!r} must be >= 0, got {next_offset}")
            rows.append((self.group, topic, partition, next_offset, now))
        with self._db.write() as conn:
            for _, topic, partition, next_offset, _ in rows:
                head_row = conn.execute(
                    'SELECT next_offset FROM partition_heads WHERE topic = ? AND "partition" = ?',
                    (topic, partition),
                ).fetchone()
                head = head_row[0] if head_row else 0
                if next_offset > head:
                    raise ValueError(
                        f"cannot commit offset {next_offset} for {(topic, partition)!r}: "
                        f"its end offset is {head}"
                    )
            conn.executemany(_UPSERT_POSITION, rows)

    def committed(self, topic: str, partition: int) -> int | None:
        """Return the group's committed next offset for the partition, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                'SELECT next_offset FROM consumer_positions WHERE "group" = ? AND topic = ? '
                'AND "partition" = ?',
                (self.group, topic, partition),
            ).fetchone()
        return None if row is None else int(row[0])

    def position(self, topic: str, partition: int) -> int | None:
        """Return the in-memory next offset to poll for the partition, or None if unknown."""
        with self._db.lock:
            return self._positions.get((topic, partition))

    def seek_to_beginning(self) -> None:
        """Rewind every known subscribed partition to offset 0 (nothing is ever deleted).

        Committed positions are unchanged until the next commit.
        """
        with self._db.read() as conn:
            self._discover(conn)
            for tp in self._positions:
                self._positions[tp] = 0

    def end_offsets(self) -> dict[TopicPartition, int]:
        """Return the next offset to be written, per partition of the subscribed topics."""
        with self._db.read() as conn:
            self._discover(conn)
            return self._heads(conn)

    def close(self) -> None:
        """Close the connection without committing. Idempotent."""
        self._db.close()
