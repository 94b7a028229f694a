"""Where a producer's hash chain stands, kept on disk so a restarted service continues its chain.

A producer that forgot its chain would start again at sequence 0, and the materialiser would
(rightly) record a fork.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from producers.errors import AuditError
from producers.signing import GENESIS_DIGEST


@dataclass(frozen=True)
class ChainPosition:
    next_sequence: int
    prev_digest: bytes

    @classmethod
    def genesis(cls) -> ChainPosition:
        return cls(0, GENESIS_DIGEST)


class ChainStateFile:
    """A small JSON file, replaced atomically (write, fsync, rename) after each published batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ChainPosition:
        if not self.path.exists():
            return ChainPosition.genesis()
        try:
            doc = json.loads(self.path.read_text())
            return ChainPosition(int(doc["next_sequence"]), bytes.fromhex(doc["prev_digest"]))
        except (ValueError, KeyError, OSError) as exc:
            raise AuditError(f"chain state file {self.path} is unreadable: {exc}") from exc

    def save(self, position: ChainPosition) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(
                {
                    "next_sequence": position.next_sequence,
                    "prev_digest": position.prev_digest.hex(),
                },
                fh,
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
