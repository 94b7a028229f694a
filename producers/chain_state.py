"""Where a producer's hash chain stands, kept on disk so a restarted service continues its chain.

A producer that forgot its chain would start again at sequence 0, and the materialiser would
(rightly) record a fork. A producer that remembered it only *after* publishing a batch would,
when killed between the two, seal a second, different batch with the same sequence on the next
start: a fork again. So the order is write-ahead:

1. The batcher seals batches *n* .. *m* (one, or a few when it is behind the callers) and
   saves (:meth:`ChainStateFile.save`) the new position (``next_sequence = m + 1``,
   ``prev_digest`` = batch *m*'s digest) **together with the signed batches themselves** (the
   *unconfirmed* batches), durably (write, fsync, rename, fsync of the directory), before any
   of them can reach the bus or the spool. One save for a few batches keeps the fsync from
   capping the worker's throughput.
2. It publishes (or spools) them in order, and after each
3. confirms it (:meth:`ChainStateFile.confirm`): a 32-byte marker file, ``<name>.delivered``,
   overwritten with the batch digest, without an fsync.

A restart loads the position and sends again, in order and before sealing anything new, each
unconfirmed batch after the one the marker names (all of them if it names none). If a batch
had reached the bus, its copy is a ``replay`` (the same sequence and digest, which the
materialiser records and drops); if it had not, the copy fills what would otherwise be a gap.
A sequence is never reused and never skipped.

The marker is not fsynced because getting it wrong is harmless: after a power loss it may be
stale or torn, which only causes one more replay. It can never claim a batch the state file does
not hold, since the state file is durable before the marker is written.

File format (``<producer_id>.chain.json``): one JSON line, then the unconfirmed batches' raw
bytes, one after the other::

    {"next_sequence": 8, "prev_digest": "<hex>",
     "unconfirmed": [{"digest": "<hex>", "bytes": 61234}, {"digest": "<hex>", "bytes": 60980}]}
    <61234 bytes><60980 bytes>

A file of the earlier format (the JSON object alone, no newline, no batch) loads as a position
with nothing unconfirmed.

Example::

    state = ChainStateFile(Path("state/chat-1.chain.json"))
    durable = state.load_durable()              # position + the batches to re-send, if any
    state.save(ChainPosition(n + 1, batch.digest), [(batch.digest, batch_bytes)])
    bus.publish(topic, key, batch_bytes)
    state.confirm(batch.digest)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.signing import GENESIS_DIGEST

_DIGEST_BYTES = 32


@dataclass(frozen=True)
class ChainPosition:
    next_sequence: int
    prev_digest: bytes

    @classmethod
    def genesis(cls) -> ChainPosition:
        return cls(0, GENESIS_DIGEST)


@dataclass(frozen=True)
class DurableChain:
    """What a start-up finds on disk."""

    position: ChainPosition
    unconfirmed: tuple[bytes, ...] = ()
    """The encoded signed batches, oldest first, that are not known to have reached the bus or
    the spool; the last has sequence ``position.next_sequence - 1`` (its digest is
    ``position.prev_digest``). They must be sent again, in order, before any new batch."""


class ChainStateFile:
    """The chain position, replaced atomically before each batch is sent (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.delivered_path = path.with_suffix(".delivered")

    def load(self) -> ChainPosition:
        return self.load_durable().position

    def load_durable(self) -> DurableChain:
        if not self.path.exists():
            return DurableChain(ChainPosition.genesis())
        try:
            raw = self.path.read_bytes()
            header, _, rest = raw.partition(b"\n")
            doc = json.loads(header)
            position = ChainPosition(int(doc["next_sequence"]), bytes.fromhex(doc["prev_digest"]))
            entries = [
                (bytes.fromhex(entry["digest"]), int(entry["bytes"]))
                for entry in doc.get("unconfirmed", [])
            ]
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise AuditError(f"chain state file {self.path} is unreadable: {exc}") from exc
        announced = sum(size for _, size in entries)
        if len(rest) != announced:
            # The rename makes the file appear whole or not at all; anything else was edited.
            raise AuditError(
                f"chain state file {self.path} is unreadable: it announces {announced} bytes of "
                f"batches and holds {len(rest)} after its header"
            )
        batches: list[bytes] = []
        offset = 0
        for _, size in entries:
            batches.append(rest[offset : offset + size])
            offset += size
        delivered = self._delivered()
        digests = [digest for digest, _ in entries]
        if delivered in digests:
            # Those up to the confirmed one arrived (they are sent in order).
            batches = batches[digests.index(delivered) + 1 :]
        return DurableChain(position, tuple(batches))

    def _delivered(self) -> bytes | None:
        try:
            with open(self.delivered_path, "rb") as fh:
                return fh.read(_DIGEST_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError:
            return None  # unreadable counts as unconfirmed: the worst outcome is a replay

    def save(
        self, position: ChainPosition, unconfirmed: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Make ``position``, and the ``(digest, encoded batch)`` pairs it ends with (oldest
        first), durable: they survive a crash of the process or of the machine once this
        returns. Raises OSError (ENOSPC on a full disk) leaving the previous state in place,
        unless the error came from the final directory fsync, after which either state may be
        the one found on the next start."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        header = {
            "next_sequence": position.next_sequence,
            "prev_digest": position.prev_digest.hex(),
            "unconfirmed": [
                {"digest": digest.hex(), "bytes": len(value)} for digest, value in unconfirmed
            ],
        }
        try:
            with open(tmp, "wb") as fh:
                fh.write(json.dumps(header).encode() + b"\n")
                for _, value in unconfirmed:
                    fh.write(value)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            # A partial temporary file on a full disk would hold the space the retry needs.
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.path)
        _fsync_directory(self.path.parent)

    def confirm(self, digest: bytes) -> None:
        """Record that the batch with ``digest`` reached the bus or the spool (no fsync; see
        the module). Errors are ignored: an unwritten marker only causes a replay."""
        try:
            fd = os.open(self.delivered_path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            os.pwrite(fd, digest, 0)
        except OSError:
            pass
        finally:
            os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot be
    opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
