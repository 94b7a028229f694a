"""The C2SP checkpoint format (https://c2sp.org/tlog-checkpoint) as a signed note
(https://c2sp.org/signed-note), with Ed25519 signatures.

A checkpoint body is::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    next-offset <n>          (our extension line: the bus offsets the tree has settled)

followed by a blank line and one signature line per signer::

    — <key name> <base64(key hash[4] || Ed25519 signature[64])>

The key hash is the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key), and the
signature covers the body bytes exactly (every line ends in "\\n"). Any tool that reads
Go's ``golang.org/x/mod/sumdb/note`` or sigsum checkpoints reads these.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aigc_audit.consumers.errors import PlatformError
from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.signing import SigningKey, verify_signature

ED25519_ALGORITHM = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
NEXT_OFFSET = "next-offset"
_KEY_NAME = re.compile(r"^[^\s+]+$")
_UINT64 = re.compile(r"0|[1-9][0-9]{0,19}")
"""A tree size or offset: decimal, no leading zero, and (checked after) below 2**64, as C2SP
and Go's note reader have it. Bounding the digits first keeps int() from refusing a long
string with ValueError (Python's 4300-digit limit) and from spending time on one."""


def _uint64(text: str) -> int | None:
    if not _UINT64.fullmatch(text):
        return None
    value = int(text)
    return value if value < 2**64 else None


def _b64(text: str) -> bytes | None:
    """Strict base64, or None; b64decode raises a ValueError (not binascii.Error) for text
    that is not ASCII."""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error is one
        return None


class CheckpointError(PlatformError):
    """A checkpoint that is malformed, unsigned, or signed by a key that is not trusted."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    next_offset: int

    def body(self) -> str:
        """The signed text: the C2SP lines and our extension line, each ending in a newline."""
        if not self.origin or "\n" in self.origin:
            raise CheckpointError(f"bad checkpoint origin {self.origin!r}")
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\n{NEXT_OFFSET} {self.next_offset}\n"


@dataclass(frozen=True)
class NoteSignature:
    key_name: str
    key_hash: bytes
    signature: bytes


def key_hash(key_name: str, public_key: bytes) -> bytes:
    """The 4-byte id of an Ed25519 note key (signed-note spec)."""
    return hashlib.sha256(
        key_name.encode("utf-8") + b"\n" + ED25519_ALGORITHM + public_key
    ).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey, key_name: str) -> str:
    """The signed note of ``checkpoint``: its body, a blank line and one signature line."""
    if not _KEY_NAME.match(key_name):
        raise CheckpointError(f"note key name {key_name!r} must be non-empty, no spaces or '+'")
    body = checkpoint.body()
    signature = key_hash(key_name, key.public_key) + key.sign(body.encode("utf-8"))
    encoded = base64.b64encode(signature).decode("ascii")
    return f"{body}\n{SIGNATURE_PREFIX}{key_name} {encoded}\n"


def parse_note(text: str) -> tuple[Checkpoint, str, list[NoteSignature]]:
    """Split a signed note into its checkpoint, its exact body text and its signature lines;
    raises CheckpointError for anything that is not a well-formed checkpoint note."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as json.loads makes of "\ud800"
        raise CheckpointError("a signed note must be UTF-8 text") from None
    if "\n\n" not in text or not text.endswith("\n"):
        raise CheckpointError("not a signed note: no blank line between body and signatures")
    body, _, signatures_text = text.partition("\n\n")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise CheckpointError("a checkpoint needs an origin, a tree size and a root hash")
    origin, size_text, root_text, *extensions = lines
    tree_size = _uint64(size_text)
    if tree_size is None:
        raise CheckpointError(f"bad tree size {size_text[:40]!r}")
    root = _b64(root_text)
    if root is None:
        raise CheckpointError(f"bad root hash {root_text[:60]!r}")
    if len(root) != 32:
        raise CheckpointError(f"root hash is {len(root)} bytes, not 32")
    next_offset = None
    for line in extensions:
        if line.startswith(f"{NEXT_OFFSET} "):
            next_offset = _uint64(line[len(NEXT_OFFSET) + 1 :])
            if next_offset is None:
                raise CheckpointError(f"bad {NEXT_OFFSET} line {line[:60]!r}")
    if next_offset is None:
        raise CheckpointError(f"checkpoint has no '{NEXT_OFFSET}' line")
    signatures = []
    for line in signatures_text.split("\n")[:-1]:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(f"bad signature line {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        raw = _b64(encoded)
        if raw is None:
            raise CheckpointError(f"bad signature encoding on line {line[:120]!r}")
        if len(raw) < 5:
            raise CheckpointError(f"signature on line {line!r} is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise CheckpointError("checkpoint is not signed")
    checkpoint = Checkpoint(origin, tree_size, root, next_offset)
    if checkpoint.body() != body:
        raise CheckpointError("checkpoint body is not in canonical form")
    return checkpoint, body, signatures


def open_checkpoint(text: str, trusted: Iterable[bytes]) -> tuple[Checkpoint, bytes]:
    """The checkpoint of a signed note and the public key that signed it.

    ``trusted`` are Ed25519 public keys allowed to sign checkpoints. At least one signature line
    must be by a trusted key (its key hash under the line's key name) and verify; lines by other
    keys are ignored, as the signed-note spec asks. Raises CheckpointError otherwise.
    """
    checkpoint, body, signatures = parse_note(text)
    keys = list(trusted)
    for sig in signatures:
        for public_key in keys:
            if key_hash(sig.key_name, public_key) != sig.key_hash:
                continue
            try:
                verify_signature(public_key, body.encode("utf-8"), sig.signature)
            except (AuditError, ValueError) as exc:
                raise CheckpointError(
                    f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size}: signature by "
                    f"{sig.key_name} does not verify ({exc})"
                ) from None
            return checkpoint, public_key
    names = ", ".join(s.key_name for s in signatures)
    raise CheckpointError(
        f"checkpoint {checkpoint.origin} @ {checkpoint.tree_size} is signed by no trusted key "
        f"(signed by: {names})"
    )
