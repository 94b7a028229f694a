"""Ed25519 keys, the pinned batch/registration signing inputs, and key registrations."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from aigc_audit.producers.errors import KeyFileError, SignatureError
from aigc_audit.producers.signing import (
    GENESIS_DIGEST,
    BatchHead,
    KeyRegistration,
    SigningKey,
    batch_digest,
    batch_signing_input,
    key_id_for,
    load_public_key,
    registration_signing_input,
    sign_registration,
    verify_registration,
    verify_signature,
    write_public_key,
)

HEAD = BatchHead(
    producer_id="svc-生成-01",
    key_id="0123456789abcdef0123456789abcdef",
    sequence=0x0102030405060708,
    prev_digest=bytes(range(32)),
    created_at_us=1_717_171_717_171_717,
    event_count=3,
    merkle_root=bytes(range(32, 64)),
)

# Pinned: inspectors reimplement this layout, so any change to it must fail here first.
GOLDEN_BATCH_INPUT = (
    "414947432d41554449542d42415443482d563100000d7376632de7949fe68890"
    "2d30310020303132333435363738396162636465663031323334353637383961"
    "62636465660102030405060708000102030405060708090a0b0c0d0e0f101112"
    "131415161718191a1b1c1d1e1f000619c232386a050000000320212223242526"
    "2728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
)

REG = KeyRegistration(
    key_id="ab" * 16,
    producer_id="svc",
    public_key=bytes(range(32)),
    valid_from_us=1,
    revoked_at_us=-2,
    registered_at_us=3,
    root_key_id="cd" * 16,
)
GOLDEN_REG_INPUT = (
    "414947432d41554449542d4b45595245472d5631000020616261626162616261"
    "6261626162616261626162616261626162616261626162000373766300010203"
    "0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00000000"
    "00000001fffffffffffffffffffffffffffffffe000000000000000300206364"
    "636463646364636463646364636463646364636463646364636463646364"
)


def _flip(value: object) -> object:
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    if isinstance(value, str):
        return chr(ord(value[0]) ^ 1) + value[1:]
    assert isinstance(value, int)
    return value ^ 1


# --- the batch signing input ---


def test_batch_signing_input_is_pinned() -> None:
    assert batch_signing_input(HEAD).hex() == GOLDEN_BATCH_INPUT
    assert batch_digest(HEAD) == hashlib.sha256(bytes.fromhex(GOLDEN_BATCH_INPUT)).digest()


def test_batch_signing_input_matches_documented_layout() -> None:
    pid, kid = HEAD.producer_id.encode(), HEAD.key_id.encode("ascii")
    expected = (
        b"AIGC-AUDIT-BATCH-V1\x00"
        + struct.pack(">H", len(pid))
        + pid
        + struct.pack(">H", len(kid))
        + kid
        + struct.pack(">Q", HEAD.sequence)
        + HEAD.prev_digest
        + struct.pack(">q", HEAD.created_at_us)
        + struct.pack(">I", HEAD.event_count)
        + HEAD.merkle_root
    )
    assert batch_signing_input(HEAD) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prev_digest", bytes(31)),
        ("prev_digest", bytes(33)),
        ("merkle_root", b""),
        ("sequence", -1),
        ("sequence", 2**64),
        ("created_at_us", 2**63),
        ("event_count", 2**32),
        ("event_count", -1),
        ("key_id", "ключ"),
        ("producer_id", "x" * 65536),
    ],
)
def test_batch_signing_input_rejects_misfit_fields(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        batch_signing_input(dataclasses.replace(HEAD, **{field: value}))


def test_genesis_digest_is_zero() -> None:
    assert bytes(32) == GENESIS_DIGEST


# --- keys and signatures ---


def test_key_id_is_hex_of_first_16_bytes_of_sha256() -> None:
    key = SigningKey.generate()
    assert len(key.public_key) == 32
    assert key.key_id == hashlib.sha256(key.public_key).hexdigest()[:32]
    assert key_id_for(key.public_key) == key.key_id
    with pytest.raises(ValueError):
        key_id_for(b"short")


def test_sign_and_verify_round_trip() -> None:
    key = SigningKey.generate()
    head = dataclasses.replace(HEAD, key_id=key.key_id)
    sig = key.sign(batch_signing_input(head))
    assert len(sig) == 64
    verify_signature(key.public_key, batch_signing_input(head), sig)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(BatchHead)])
def test_any_changed_head_field_breaks_the_signature(field: str) -> None:
    key = SigningKey.generate()
    sig = key.sign(batch_signing_input(HEAD))
    changed = dataclasses.replace(HEAD, **{field: _flip(getattr(HEAD, field))})
    assert batch_signing_input(changed) != batch_signing_input(HEAD)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(key.public_key, batch_signing_input(changed), sig)


def test_bad_signatures_and_keys_are_rejected() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    data = batch_signing_input(HEAD)
    sig = key.sign(data)
    with pytest.raises(SignatureError):
        verify_signature(other.public_key, data, sig)
    with pytest.raises(SignatureError):
        verify_signature(key.public_key, data, bytes([sig[0] ^ 0x80]) + sig[1:])
    with pytest.raises(SignatureError, match="63 bytes"):
        verify_signature(key.public_key, data, sig[:-1])
    with pytest.raises(SignatureError, match="public key"):
        verify_signature(key.public_key[:31], data, sig)


# --- key files ---


def test_key_file_round_trip_with_private_mode(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "producer.pem"
    key.to_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.from_file(path)
    assert loaded.public_key == key.public_key
    verify_signature(key.public_key, b"x", loaded.sign(b"x"))


def test_key_file_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    path = tmp_path / "producer.pem"
    first, second = SigningKey.generate(), SigningKey.generate()
    first.to_file(path)
    with pytest.raises(SignatureError, match="refusing to overwrite"):
        second.to_file(path)
    assert SigningKey.from_file(path).key_id == first.key_id
    path.chmod(0o644)
    second.to_file(path, overwrite=True)
    assert SigningKey.from_file(path).key_id == second.key_id
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["producer.pem"]


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o602])
def test_key_file_open_to_others_is_refused_before_it_is_parsed(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "producer.pem"
    SigningKey.generate().to_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=re.escape(f"{path} is mode {mode:04o}")) as info:
        SigningKey.from_file(path)
    assert "\n" not in str(info.value)
    path.write_bytes(b"garbage")  # the mode is judged first: no parse error for a wide file
    with pytest.raises(KeyFileError):
        SigningKey.from_file(path)


def test_missing_key_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.pem"
    with pytest.raises(SignatureError, match=re.escape(str(path))) as info:
        SigningKey.from_file(path)
    assert "\n" not in str(info.value)
    with pytest.raises(SignatureError, match=re.escape(str(path))):
        load_public_key(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_garbage_key_file_names_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pem"
    path.write_bytes(content)
    path.chmod(0o600)  # judged on its content, not refused for its mode first
    with pytest.raises(SignatureError, match=re.escape(str(path))) as info:
        SigningKey.from_file(path)
    assert "\n" not in str(info.value)


def test_encrypted_or_foreign_key_file_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate()
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(
        key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    encrypted.chmod(0o600)  # judged on its content, not refused for its mode first
    with pytest.raises(SignatureError, match=re.escape(str(encrypted))):
        SigningKey.from_file(encrypted)
    public = tmp_path / "pub.pem"
    write_public_key(public, key.public_key)
    public.chmod(0o600)
    with pytest.raises(SignatureError, match=re.escape(str(public))):
        SigningKey.from_file(public)
    private = tmp_path / "priv.pem"
    key.to_file(private)
    with pytest.raises(SignatureError, match=re.escape(str(private))):
        load_public_key(private)


def test_public_key_file_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "pub.pem"
    write_public_key(path, key.public_key)
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert load_public_key(path) == key.public_key
    with pytest.raises(ValueError):
        write_public_key(path, b"short")


# --- key registrations ---


def _registration(key: SigningKey, **changes: object) -> KeyRegistration:
    reg = KeyRegistration(
        key_id=key.key_id,
        producer_id="svc-chat",
        public_key=key.public_key,
        valid_from_us=1_000,
        valid_until_us=2_000,
        registered_at_us=900,
    )
    return dataclasses.replace(reg, **changes)


def test_registration_signing_input_is_pinned() -> None:
    assert registration_signing_input(REG).hex() == GOLDEN_REG_INPUT


def test_registration_sign_and_verify() -> None:
    root, producer = SigningKey.generate(), SigningKey.generate()
    unsigned = _registration(producer)
    signed = sign_registration(root, unsigned)
    assert signed.root_key_id == root.key_id
    assert len(signed.signature) == 64
    assert unsigned.signature == b""
    verify_registration(root.public_key, signed)


def test_registration_from_another_root_is_rejected() -> None:
    root, impostor, producer = (SigningKey.generate() for _ in range(3))
    signed = sign_registration(impostor, _registration(producer))
    with pytest.raises(SignatureError, match="trusted root"):
        verify_registration(root.public_key, signed)
    # Claiming the real root's id does not help without its signature.
    forged = dataclasses.replace(signed, root_key_id=root.key_id)
    with pytest.raises(SignatureError, match="not signed by root"):
        verify_registration(root.public_key, forged)


@pytest.mark.parametrize(
    "changes",
    [
        {"producer_id": "svc-other"},
        {"valid_from_us": 0},
        {"valid_until_us": None},
        {"valid_until_us": 2_001},
        {"revoked_at_us": 1_500},
        {"registered_at_us": 901},
    ],
)
def test_tampered_registration_is_rejected(changes: dict[str, object]) -> None:
    root, producer = SigningKey.generate(), SigningKey.generate()
    signed = sign_registration(root, _registration(producer))
    with pytest.raises(SignatureError):
        verify_registration(root.public_key, dataclasses.replace(signed, **changes))


def test_registration_key_id_must_match_public_key() -> None:
    root, producer, other = (SigningKey.generate() for _ in range(3))
    with pytest.raises(ValueError, match="key id"):
        sign_registration(root, _registration(producer, key_id=other.key_id))
    signed = sign_registration(root, _registration(producer))
    swapped = dataclasses.replace(signed, public_key=other.public_key)
    with pytest.raises(SignatureError, match="does not match"):
        verify_registration(root.public_key, swapped)


def test_minus_one_is_reserved_for_absent_times() -> None:
    root, producer = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(ValueError, match="reserved"):
        sign_registration(root, _registration(producer, revoked_at_us=-1))
    signed = sign_registration(root, _registration(producer, valid_until_us=None))
    with pytest.raises(SignatureError, match="malformed"):
        verify_registration(root.public_key, dataclasses.replace(signed, valid_until_us=-1))


def test_is_valid_at_reasons() -> None:
    reg = _registration(SigningKey.generate())
    assert reg.is_valid_at(999) == (False, "key_not_yet_valid")
    assert reg.is_valid_at(1_000) == (True, None)
    assert reg.is_valid_at(1_999) == (True, None)
    assert reg.is_valid_at(2_000) == (False, "key_expired")
    revoked = dataclasses.replace(reg, revoked_at_us=1_500)
    assert revoked.is_valid_at(1_499) == (True, None)
    assert revoked.is_valid_at(1_500) == (False, "key_revoked")
    assert revoked.is_valid_at(5_000) == (False, "key_revoked")
    open_ended = dataclasses.replace(reg, valid_until_us=None)
    assert open_ended.is_valid_at(10**15) == (True, None)
