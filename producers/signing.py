"""Ed25519 keys, batch signing inputs and key registrations.

Key id: the hex of the first 16 bytes of SHA-256 over the raw 32-byte public key.

Batch signing input, layout version 1 (all integers big-endian; ``u16`` length prefixes count
bytes)::

    b"AIGC-AUDIT-BATCH-V1\\x00"
    u16 len(producer_id utf-8) || producer_id utf-8
    u16 len(key_id ascii)      || key_id ascii
    u64 sequence
    prev_digest                   32 bytes
    i64 created_at_us             microseconds since 1970-01-01T00:00:00Z
    u32 event_count
    merkle_root                   32 bytes

The batch signature is Ed25519 over these bytes; ``batch_digest`` is SHA-256 over them and is what
the producer's next batch carries as ``prev_digest`` (32 zero bytes before the first batch).

Key registration signing input, layout version 1::

    b"AIGC-AUDIT-KEYREG-V1\\x00"
    u16 len || key_id utf-8
    u16 len || producer_id utf-8
    public_key                    32 bytes
    i64 valid_from_us
    i64 valid_until_us            -1 when open-ended (so -1 itself is refused)
    i64 revoked_at_us             -1 when not revoked (likewise)
    i64 registered_at_us
    u16 len || root_key_id utf-8

signed by the provider's root key with Ed25519.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from aigc_audit.producers.errors import KeyFileError, SignatureError

BATCH_DOMAIN = b"AIGC-AUDIT-BATCH-V1\x00"
KEYREG_DOMAIN = b"AIGC-AUDIT-KEYREG-V1\x00"
GENESIS_DIGEST = bytes(32)
DIGEST_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

StrPath = str | os.PathLike[str]


def key_id_for(public_key: bytes) -> str:
    """Return the key id of a raw 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    return hashlib.sha256(public_key).digest()[:16].hex()


PRIVATE_KEY_MODE = 0o600
"""The only mode a private key file is written with, and the widest one it is read with."""
_GROUP_OR_OTHER = 0o077


def unsafe_mode(mode: int) -> bool:
    """Whether permission bits ``mode`` let the file's group or anyone else at it."""
    return bool(mode & _GROUP_OR_OTHER)


def _write_private_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    if overwrite and path.exists():
        # Write beside the target then rename, so a crash never leaves a half-written key.
        target = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        target.unlink(missing_ok=True)
    else:
        target = path
    # O_EXCL: never clobber an existing private key by accident, nor follow a planted symlink
    # to write the key somewhere else; and the file is born 0o600 (the umask can only narrow
    # it), so there is no moment at which it is wider.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if target != path:
            os.replace(target, path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def read_private_file(path: StrPath, what: str = "signing key") -> bytes:
    """The bytes of a private file (a key, a password file: ``what`` names it in errors),
    refused (KeyFileError) if its mode is wider than 0600.

    The mode is judged on the descriptor the bytes are read from, so a file swapped or
    chmod-ed between a check and the read cannot slip through.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode & 0o777
        if unsafe_mode(mode):
            raise KeyFileError(
                f"{what} {path} is mode {mode:04o}, open to group or others; "
                f"it must be 0600 (chmod 600 {path}, and consider it exposed)"
            )
        try:
            return fh.read()
        except OSError as exc:
            raise SignatureError(f"cannot read {what} {path}: {exc.strerror}") from exc


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A producer's (or the root's) Ed25519 private key."""

    private_key: Ed25519PrivateKey = dataclasses.field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: StrPath) -> SigningKey:
        """Load an unencrypted PKCS8 PEM key; raises SignatureError naming ``path``, and
        KeyFileError if the file's group or others may read or write it (mode wider than 0600).
        """
        data = read_private_file(path)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SignatureError(
                f"{path} is not an unencrypted PKCS8 PEM Ed25519 private key"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    def to_file(self, path: StrPath, *, overwrite: bool = False) -> None:
        """Write the key as unencrypted PKCS8 PEM with mode 0o600.

        Refuses (SignatureError) to replace an existing file unless ``overwrite``.
        """
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            _write_private_file(Path(path), pem, overwrite=overwrite)
        except FileExistsError as exc:
            raise SignatureError(f"refusing to overwrite existing key file {path}") from exc
        except OSError as exc:
            raise SignatureError(f"cannot write signing key {path}: {exc.strerror}") from exc

    @cached_property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @cached_property
    def key_id(self) -> str:
        """The key id derived from :attr:`public_key`."""
        return key_id_for(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``data``."""
        return self.private_key.sign(data)


def load_public_key(path: StrPath) -> bytes:
    """Read a SubjectPublicKeyInfo PEM Ed25519 key and return it raw (32 bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"{path} is not a PEM Ed25519 public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def write_public_key(path: StrPath, raw: bytes) -> None:
    """Write a raw 32-byte Ed25519 public key as SubjectPublicKeyInfo PEM."""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, not {len(raw)}")
    pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        Path(path).write_bytes(pem)
    except OSError as exc:
        raise SignatureError(f"cannot write public key {path}: {exc.strerror}") from exc


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> None:
    """Return None if ``signature`` is a valid Ed25519 signature of ``data``, else raise
    SignatureError."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"public key is {len(public_key)} bytes, not {PUBLIC_KEY_SIZE}")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"signature is {len(signature)} bytes, not {SIGNATURE_SIZE}")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(
            f"signature does not verify under key {key_id_for(public_key)}"
        ) from exc


# --- signing-input helpers: explicit range checks, because struct.error is not a ValueError ---


def _text(name: str, value: str, encoding: str = "utf-8") -> bytes:
    try:
        raw = value.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} must be {encoding} text") from exc
    if len(raw) > _U16_MAX:
        raise ValueError(f"{name} is {len(raw)} bytes, more than {_U16_MAX}")
    return struct.pack(">H", len(raw)) + raw


def _int(name: str, value: int, lo: int, hi: int, fmt: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return struct.pack(fmt, value)


def _fixed(name: str, value: bytes, size: int) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return bytes(value)


@dataclass(frozen=True)
class BatchHead:
    """The signed fields of a batch (everything but the event bytes themselves)."""

    producer_id: str
    key_id: str
    sequence: int
    prev_digest: bytes
    created_at_us: int
    event_count: int
    merkle_root: bytes


def batch_signing_input(head: BatchHead) -> bytes:
    """Return the exact bytes a batch signature covers (layout in the module docstring).

    Raises ValueError for a field that does not fit its slot (digest not 32 bytes, etc.).
    """
    return b"".join(
        (
            BATCH_DOMAIN,
            _text("producer_id", head.producer_id),
            _text("key_id", head.key_id, "ascii"),
            _int("sequence", head.sequence, 0, _U64_MAX, ">Q"),
            _fixed("prev_digest", head.prev_digest, DIGEST_SIZE),
            _int("created_at_us", head.created_at_us, _I64_MIN, _I64_MAX, ">q"),
            _int("event_count", head.event_count, 0, _U32_MAX, ">I"),
            _fixed("merkle_root", head.merkle_root, DIGEST_SIZE),
        )
    )


def batch_digest(head: BatchHead) -> bytes:
    """Return SHA-256 of the signing input: the ``prev_digest`` the next batch must carry."""
    return hashlib.sha256(batch_signing_input(head)).digest()


@dataclass(frozen=True, kw_only=True)
class KeyRegistration:
    """A producer key's registry entry (mirrors ``aigc.audit.KeyRegistration``).

    Times are integer microseconds since the epoch, UTC. ``signature`` is b"" until signed.
    """

    key_id: str
    producer_id: str
    public_key: bytes
    valid_from_us: int
    valid_until_us: int | None = None
    revoked_at_us: int | None = None
    registered_at_us: int
    root_key_id: str = ""
    signature: bytes = b""

    def is_valid_at(self, t_us: int) -> tuple[bool, str | None]:
        """Return (True, None), or (False, reason) with reason one of
        "key_revoked", "key_not_yet_valid", "key_expired" (checked in that order)."""
        if self.revoked_at_us is not None and t_us >= self.revoked_at_us:
            return False, "key_revoked"
        if t_us < self.valid_from_us:
            return False, "key_not_yet_valid"
        if self.valid_until_us is not None and t_us >= self.valid_until_us:
            return False, "key_expired"
        return True, None


def _optional_time(name: str, value: int | None) -> bytes:
    # -1 encodes "absent", so a real -1 is refused: otherwise None and -1 would share a signature.
    if value == -1:
        raise ValueError(f"{name} of -1 is reserved for 'absent'")
    return _int(name, -1 if value is None else value, _I64_MIN, _I64_MAX, ">q")


def registration_signing_input(reg: KeyRegistration) -> bytes:
    """Return the exact bytes a registration signature covers (layout in the module docstring)."""
    return b"".join(
        (
            KEYREG_DOMAIN,
            _text("key_id", reg.key_id),
            _text("producer_id", reg.producer_id),
            _fixed("public_key", reg.public_key, PUBLIC_KEY_SIZE),
            _int("valid_from_us", reg.valid_from_us, _I64_MIN, _I64_MAX, ">q"),
            _optional_time("valid_until_us", reg.valid_until_us),
            _optional_time("revoked_at_us", reg.revoked_at_us),
            _int("registered_at_us", reg.registered_at_us, _I64_MIN, _I64_MAX, ">q"),
            _text("root_key_id", reg.root_key_id),
        )
    )


def sign_registration(root: SigningKey, reg: KeyRegistration) -> KeyRegistration:
    """Return a copy of ``reg`` with ``root_key_id`` and ``signature`` set by ``root``.

    Raises ValueError if ``reg.key_id`` is not the key id of ``reg.public_key``.
    """
    if key_id_for(reg.public_key) != reg.key_id:
        raise ValueError(f"key_id {reg.key_id} is not the key id of the registered public key")
    named = dataclasses.replace(reg, root_key_id=root.key_id, signature=b"")
    return dataclasses.replace(named, signature=root.sign(registration_signing_input(named)))


def verify_registration(root_public_key: bytes, reg: KeyRegistration) -> None:
    """Check ``reg`` was signed by the root key ``root_public_key``; raises SignatureError."""
    root_key_id = key_id_for(root_public_key)
    if reg.root_key_id != root_key_id:
        raise SignatureError(
            f"registration of key {reg.key_id} names root key {reg.root_key_id!r}, "
            f"not the trusted root {root_key_id}"
        )
    if len(reg.public_key) != PUBLIC_KEY_SIZE or key_id_for(reg.public_key) != reg.key_id:
        raise SignatureError(f"registration key_id {reg.key_id} does not match its public key")
    try:
        data = registration_signing_input(reg)
    except ValueError as exc:
        raise SignatureError(f"registration of key {reg.key_id} is malformed: {exc}") from exc
    try:
        verify_signature(root_public_key, data, reg.signature)
    except SignatureError as exc:
        raise SignatureError(
            f"registration of key {reg.key_id} is not signed by root key {root_key_id}"
        ) from exc
