"""The key registry as the materialiser sees it: producer keys registered by the provider's root.

Registrations arrive on the keys topic (compacted in Kafka: the latest per key id wins). Each is
accepted only if the provider's root key signed it; a later registration of the same key (for
instance one that sets ``revoked_at``) supersedes an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass

from aigc_audit.producers.errors import AuditError
from aigc_audit.producers.key_registration_codec import decode_registration
from aigc_audit.producers.signing import KeyRegistration, verify_registration


@dataclass(frozen=True)
class KeyRejected(Exception):
    reason: str
    detail: str


class Keyring:
    def __init__(self, root_public_key: bytes) -> None:
        self._root = root_public_key
        self._keys: dict[str, KeyRegistration] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key_id: str) -> KeyRegistration | None:
        return self._keys.get(key_id)

    def admit(self, data: bytes) -> KeyRegistration:
        """Decode and check one registration message; raise KeyRejected if it is not acceptable."""
        try:
            reg = decode_registration(data)
        except AuditError as exc:
            raise KeyRejected("malformed_key_registration", str(exc)) from exc
        try:
            verify_registration(self._root, reg)
        except AuditError as exc:
            raise KeyRejected("bad_key_registration", f"key {reg.key_id}: {exc}") from exc
        self.add(reg)
        return reg

    def add(self, reg: KeyRegistration) -> None:
        """Hold ``reg`` unless a registration of the same key made later is already held."""
        held = self._keys.get(reg.key_id)
        if held is None or reg.registered_at_us >= held.registered_at_us:
            self._keys[reg.key_id] = reg
