"""Fuzzing the key-registration decoder, ``producers.key_registration_codec.decode_registration``,
and ``consumers.keys.keyring.Keyring.admit`` over it (what the materialiser does with each message
of the keys topic), on a real registration signed by a real root key, mutated, and on hostile bytes.

The contract: decode returns a registration or raises DecodeError; admit raises only
KeyRejected with a declared reason; and a mutated registration is admitted only if it decodes
to exactly the original (another spelling of the same signed fields).
"""

from __future__ import annotations

import contextlib
import types

from hypothesis import given
from hypothesis import strategies as st

from aigc_audit.consumers.keys.keyring import KeyRejected, Keyring
from aigc_audit.producers.codec import MAGIC, default_catalogue
from aigc_audit.producers.errors import DecodeError
from aigc_audit.producers.key_registration_codec import decode_registration, encode_registration
from aigc_audit.producers.signing import KeyRegistration, SigningKey, sign_registration

CATALOGUE = default_catalogue()
ROOT = SigningKey.generate()
KEY = SigningKey.generate()
REG = sign_registration(
    ROOT,
    KeyRegistration(
        key_id=KEY.key_id,
        producer_id="chat-1",
        public_key=KEY.public_key,
        valid_from_us=1_000_000,
        valid_until_us=9_000_000_000_000_000,
        registered_at_us=1_000_000,
    ),
)
VALID = encode_registration(REG, CATALOGUE)
REASONS = {"malformed_key_registration", "bad_key_registration"}


def contract(data: bytes) -> KeyRegistration | None:
    with contextlib.suppress(DecodeError):
        decode_registration(data, CATALOGUE)
    try:
        return Keyring(ROOT.public_key).admit(data)
    except KeyRejected as exc:
        assert exc.reason in REASONS, exc
        return None


def test_the_real_registration_is_admitted() -> None:
    assert contract(VALID) == REG


@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    assert contract(data) is None


@given(st.binary(max_size=300))
def test_registration_fingerprint_and_random_body(body: bytes) -> None:
    assert contract(MAGIC + CATALOGUE.fingerprint("aigc.audit.KeyRegistration") + body) is None


@given(data=st.data())
def test_mutated_registration(kit: types.SimpleNamespace, data: st.DataObject) -> None:
    mutated = data.draw(kit.mutated(VALID))
    admitted = contract(mutated)
    if admitted is not None:
        assert admitted == REG, mutated.hex()


def test_length_bomb_in_the_key_id(bounded: object) -> None:
    bomb = VALID[:10] + b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01" + b"abc"  # 2**62
    outcome = bounded(lambda: decode_registration(bomb, CATALOGUE))  # type: ignore[operator]
    assert isinstance(outcome.error, DecodeError), outcome
    assert outcome.seconds < 0.5 and outcome.peak_bytes < 4 << 20
