"""Avro encoding of key registrations (``aigc.audit.KeyRegistration``), ints kept exact."""

from __future__ import annotations

from aigc_audit.producers.codec import SchemaCatalogue, default_catalogue
from aigc_audit.producers.errors import DecodeError
from aigc_audit.producers.signing import KeyRegistration

KEY_REGISTRATION = "aigc.audit.KeyRegistration"


def encode_registration(reg: KeyRegistration, catalogue: SchemaCatalogue | None = None) -> bytes:
    """Return the single-object encoding of a signed registration.

    An unsigned one (signature b"") does not fit the 64-byte fixed: EventValidationError.
    """
    record = {
        "key_id": reg.key_id,
        "producer_id": reg.producer_id,
        "public_key": reg.public_key,
        "valid_from": reg.valid_from_us,
        "valid_until": reg.valid_until_us,
        "revoked_at": reg.revoked_at_us,
        "registered_at": reg.registered_at_us,
        "root_key_id": reg.root_key_id,
        "signature": reg.signature,
    }
    return (catalogue or default_catalogue()).encode(KEY_REGISTRATION, record)


def decode_registration(data: bytes, catalogue: SchemaCatalogue | None = None) -> KeyRegistration:
    """Parse a registration; raises DecodeError if ``data`` is not one. Verifies nothing."""
    fullname, rec = (catalogue or default_catalogue()).decode(data, logical_types=False)
    if fullname != KEY_REGISTRATION:
        raise DecodeError(f"expected a {KEY_REGISTRATION}, got a {fullname}")
    return KeyRegistration(
        key_id=rec["key_id"],
        producer_id=rec["producer_id"],
        public_key=rec["public_key"],
        valid_from_us=rec["valid_from"],
        valid_until_us=rec["valid_until"],
        revoked_at_us=rec["revoked_at"],
        registered_at_us=rec["registered_at"],
        root_key_id=rec["root_key_id"],
        signature=rec["signature"],
    )
