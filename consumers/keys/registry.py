"""The provider's keys: the offline root key, and producer keys registered under it.

A registration is signed by the root key and published on the keys topic, where every
materialiser reads it. In production the root key stays offline and registrations are signed
on an air-gapped machine; the embedded default keeps it in the key directory for the demo
(never in the data directory: see consumers.keys.key_files).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

from aigc_audit.consumers.keys.key_files import make_key_dir
from aigc_audit.producers.errors import KeyFileError, SignatureError
from aigc_audit.producers.key_registration_codec import encode_registration
from aigc_audit.producers.signing import (
    KeyRegistration,
    SigningKey,
    load_public_key,
    sign_registration,
    write_public_key,
)
from aigc_audit.producers.transports.base import BusWriter

PLATFORM_KEY_PREFIX = "aigc-audit."
"""Producer ids the root gives the platform's own keys; a batch signed by one is refused."""
CHECKPOINT_KEY_OWNER = f"{PLATFORM_KEY_PREFIX}checkpoint"
EXPORT_KEY_OWNER = f"{PLATFORM_KEY_PREFIX}export"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _now_us() -> int:
    return time.time_ns() // 1000


def ensure_root_key(key_path: Path, public_path: Path) -> SigningKey:
    """Load the root key, creating it (and its public half for inspectors) on first use."""
    if key_path.exists():
        return SigningKey.from_file(key_path)
    make_key_dir(key_path.parent)
    key = SigningKey.generate()
    key.to_file(key_path)
    write_public_key(public_path, key.public_key)
    return key


def root_public_key(public_path: Path) -> bytes:
    return load_public_key(public_path)


def producer_key_path(keys_dir: Path, producer_id: str) -> Path:
    if not _SAFE_NAME.match(producer_id):
        raise ValueError(f"producer id {producer_id!r} must be 1-128 of A-Z a-z 0-9 . _ -")
    return keys_dir / "producers" / f"{producer_id}.key"


def publish_registration(bus: BusWriter, topic: str, registration: KeyRegistration) -> None:
    # Keyed by key id, so a compacted topic keeps each key's latest registration.
    bus.publish(topic, registration.key_id.encode("ascii"), encode_registration(registration))


def register_producer(
    *,
    root: SigningKey,
    bus: BusWriter,
    topic: str,
    keys_dir: Path,
    producer_id: str,
    valid_from_us: int | None = None,
    valid_until_us: int | None = None,
) -> SigningKey:
    """The producer's signing key, generated and registered under the root on first use."""
    path = producer_key_path(keys_dir, producer_id)
    if path.exists():
        return SigningKey.from_file(path)
    make_key_dir(keys_dir)  # 0700 at every level the platform makes, not only the last
    make_key_dir(path.parent)
    key = SigningKey.generate()
    now = _now_us()
    registration = sign_registration(
        root,
        KeyRegistration(
            key_id=key.key_id,
            producer_id=producer_id,
            public_key=key.public_key,
            valid_from_us=now if valid_from_us is None else valid_from_us,
            valid_until_us=valid_until_us,
            registered_at_us=now,
        ),
    )
    publish_registration(bus, topic, registration)
    try:
        key.to_file(path)
    except SignatureError:
        if not path.exists():
            raise
        # Another process (a second materialiser) registered this id first: use its key; the
        # registration published above names a key nobody holds, which signs nothing.
        return _read_when_complete(path)
    return key


def _read_when_complete(path: Path, timeout_s: float = 5.0) -> SigningKey:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return SigningKey.from_file(path)
        except KeyFileError:
            raise  # a wrong mode is not a write in progress: waiting would not fix it
        except SignatureError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the other process is still writing it


def revoke(
    *, root: SigningKey, bus: BusWriter, topic: str, registration: KeyRegistration, at_us: int
) -> KeyRegistration:
    """Publish a registration of the same key with ``revoked_at`` set; batches made from then on
    are refused."""
    revoked = sign_registration(
        root, replace(registration, revoked_at_us=at_us, registered_at_us=_now_us(), signature=b"")
    )
    publish_registration(bus, topic, revoked)
    return revoked
