"""The producer's on-disk spool: a durable FIFO of bus messages that could not be published yet.

When the bus cannot be reached, a sealed batch goes here instead of being dropped or blocking the
service; the batcher drains the spool, oldest first, when the bus is back. One spool belongs to
one producer (``<state_dir>/spool/<producer_id>/``) and holds that producer's batches in chain
order, so draining it in order keeps the hash chain intact on the bus.

Format: one SQLite database (``spool.sqlite3``) in WAL mode with ``synchronous=FULL``, one row per
message::

    messages(seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, key BLOB, value BLOB,
             spooled_us INTEGER)

Why SQLite rather than append-only segment files with length+CRC framing: both cost one fsync per
append, but SQLite already gives us what segments would have to build and test by hand: a torn
write is rolled back on open (the WAL checksums every frame), removal is a ``DELETE`` instead of
segment rotation and compaction, and the whole thing is stdlib. ``AUTOINCREMENT`` guarantees a
``seq`` is never reused, even after the spool was emptied and the process restarted, so ``seq``
rises monotonically over the spool's whole life. ``auto_vacuum=INCREMENTAL`` lets the file give
back its pages once a long outage has drained, since a spool is empty nearly all the time.

A spool can be capped (``max_bytes``, payload bytes as :attr:`DiskSpool.depth` counts them);
:meth:`DiskSpool.append` raises :class:`~producers.errors.SpoolFullError` when a message would
pass the cap, and also when the disk itself is full (``SQLITE_FULL``, ``ENOSPC``, ``EDQUOT``,
``EFBIG``), so a caller can tell "no room" from other failures. A refused append leaves the
spool as it was.

An exclusive ``flock`` on ``spool.lock`` stops two clients (in one process or several) from
draining the same spool, which would publish its batches twice and out of order.

Example::

    spool = DiskSpool(Path("state/spool/chat-1"))
    spool.append("aigc-audit.events", b"chat-1", batch_bytes)   # durable when it returns
    for message in spool.peek(10):
        bus.publish(message.topic, message.key, message.value)
        spool.remove_through(message.seq)
    spool.close()
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aigc_audit.producers.closing import Closing
from aigc_audit.producers.errors import SpoolError, SpoolFullError

try:  # POSIX only; elsewhere the spool simply is not guarded against a second opener.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # the module's stand-in where there is none

__all__ = ["DiskSpool", "SpoolDepth", "SpooledMessage"]

DB_FILENAME = "spool.sqlite3"
LOCK_FILENAME = "spool.lock"
# Written to the SQLite header so a spool never adopts (and appends to) another database.
_APPLICATION_ID = 0x41494753  # "AIGS": aigc-audit spool
_SCHEMA_VERSION = 1
# OS errors that mean "no room", as SQLite or the file system report them.
_NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT    NOT NULL,
    key         BLOB,
    value       BLOB    NOT NULL,
    spooled_us  INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """One spooled bus message; ``seq`` rises by at least one per append, oldest first."""

    seq: int
    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class SpoolDepth:
    """How much is waiting: message count and payload bytes (keys plus values)."""

    messages: int = 0
    bytes: int = 0


class DiskSpool(Closing):
    """A durable, thread-safe FIFO of ``(topic, key, value)`` in ``directory`` (created if missing).

    Every method is safe to call from any thread. A new :class:`DiskSpool` on the same directory,
    after :meth:`close` or a crash of the process (even ``kill -9``), sees exactly the messages
    whose :meth:`append` returned, plus possibly the one being appended when the process died,
    in the same order. Raises :class:`~producers.errors.SpoolError` when the directory cannot be
    used or another open spool holds it. ``max_bytes`` caps the payload bytes it holds (None:
    only the disk does); see :meth:`append`.
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1 (or None for no cap)")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.path = self.directory / DB_FILENAME
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"spool directory {self.directory} is unusable: {exc}") from exc
        try:
            self._take_directory_lock()
            self._conn = self._open()
            try:
                self._depth = self._measure()
            except BaseException:
                self._conn.close()
                raise
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _take_directory_lock(self) -> None:
        if fcntl is None:
            return
        try:
            # flock locks belong to the open file description, so this also catches a second
            # DiskSpool on the same directory inside this process, not only in another one.
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SpoolError(
                f"spool {self.directory} is in use by another client (one producer id must "
                "run in one client at a time)"
            ) from exc

    def _open(self) -> sqlite3.Connection:
        with self._translated():
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                foreign = app_id != _APPLICATION_ID and (
                    app_id != 0 or conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                )
                if foreign:
                    raise SpoolError(f"{self.path} is a SQLite database but not a spool")
                # Must precede the first table; a no-op on an existing spool.
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise SpoolError(f"spool {self.path} cannot use WAL mode (got {mode!r})")
                # FULL: the WAL is fsynced at every commit, so append() is durable on return.
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if app_id == 0:
                        conn.execute(_SCHEMA)
                        conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                        conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                    else:
                        version = conn.execute("PRAGMA user_version").fetchone()[0]
                        if version > _SCHEMA_VERSION:
                            raise SpoolError(
                                f"spool {self.path} has format {version}, newer than this "
                                f"library's {_SCHEMA_VERSION}; upgrade aigc-audit"
                            )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except BaseException:
                conn.close()
                raise
        return conn

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn sqlite3 and OS errors into one-line SpoolErrors naming the file; "no room"
        becomes SpoolFullError."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if _is_no_room(exc):
                raise SpoolFullError(f"spool {self.path}: the disk is full: {exc}") from exc
            raise SpoolError(f"spool {self.path}: {exc}") from exc

    def _measure(self) -> SpoolDepth:
        with self._translated():
            count, size = self._conn.execute(
                "SELECT count(*), coalesce(sum(length(value) + coalesce(length(key), 0)), 0) "
                "FROM messages"
            ).fetchone()
        return SpoolDepth(int(count), int(size))

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError(f"spool {self.path}: used after close()")

    def append(self, topic: str, key: bytes | None, value: bytes) -> int:
        """Add one message at the tail; it is on disk (fsynced) when this returns its ``seq``.

        Raises SpoolFullError, adding nothing, when the message would take the spool past
        ``max_bytes`` or the disk is full.
        """
        key_b = None if key is None else bytes(key)
        value_b = bytes(value)
        size = len(value_b) + (len(key_b) if key_b is not None else 0)
        with self._lock:
            self._check_open()
            if self.max_bytes is not None and self._depth.bytes + size > self.max_bytes:
                raise SpoolFullError(
                    f"spool {self.path} is full: it holds {self._depth.bytes} bytes in "
                    f"{self._depth.messages} messages, and {size} more would pass its cap of "
                    f"{self.max_bytes} bytes (spool_max_bytes)"
                )
            with self._translated():
                cursor = self._conn.execute(
                    "INSERT INTO messages (topic, key, value, spooled_us) VALUES (?, ?, ?, ?)",
                    (topic, key_b, value_b, time.time_ns() // 1000),
                )
            seq = cursor.lastrowid
            assert seq is not None  # an INSERT into a rowid table always sets it
            self._depth = SpoolDepth(self._depth.messages + 1, self._depth.bytes + size)
            return seq

    def peek(self, n: int = 1) -> list[SpooledMessage]:
        """Return up to ``n`` messages from the head, oldest first, without removing them."""
        if n < 1:
            return []
        with self._lock:
            self._check_open()
            with self._translated():
                rows = self._conn.execute(
                    "SELECT seq, topic, key, value FROM messages ORDER BY seq LIMIT ?", (n,)
                ).fetchall()
        return [SpooledMessage(seq, topic, key, value) for seq, topic, key, value in rows]

    def peek_last(self) -> SpooledMessage | None:
        """Return the newest message, or None when the spool is empty."""
        with self._lock:
            self._check_open()
            with self._translated():
                row = self._conn.execute(
                    "SELECT seq, topic, key, value FROM messages ORDER BY seq DESC LIMIT 1"
                ).fetchone()
        return None if row is None else SpooledMessage(*row)

    def remove_through(self, seq: int) -> None:
        """Durably remove every message with ``seq`` at or below ``seq`` (once they are on the
        bus). Removing what is already gone is a no-op."""
        with self._lock:
            self._check_open()
            with self._translated():
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    count, size = self._conn.execute(
                        "SELECT count(*), "
                        "coalesce(sum(length(value) + coalesce(length(key), 0)), 0) "
                        "FROM messages WHERE seq <= ?",
                        (seq,),
                    ).fetchone()
                    self._conn.execute("DELETE FROM messages WHERE seq <= ?", (seq,))
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                self._depth = SpoolDepth(self._depth.messages - count, self._depth.bytes - size)
                if self._depth.messages == 0 and count:
                    # Hand the pages of a drained outage back to the file system. Cheap when
                    # there is little to free, and it only runs when the spool just emptied.
                    self._conn.execute("PRAGMA incremental_vacuum").fetchall()

    @property
    def depth(self) -> SpoolDepth:
        """Messages and payload bytes waiting; kept in memory, so reading it does no I/O."""
        return self._depth

    def __len__(self) -> int:
        return self._depth.messages

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the database and release the directory lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()
            finally:
                os.close(self._lock_fd)

    def __repr__(self) -> str:
        return f"DiskSpool({str(self.directory)!r}, depth={self._depth})"


def _is_no_room(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _NO_ROOM_ERRNOS
    # SQLITE_FULL (13), whatever the extended code; sqlite3 has carried it since Python 3.11.
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL
