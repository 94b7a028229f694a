"""Salted password hashes for the store server's users: the server keeps only these.

A hash is ``scrypt$<n>$<r>$<p>$<salt>$<digest>`` (salt and digest in urlsafe base64), made by
:func:`hash_password` and checked by :func:`verify_password` in constant time. ``aigc-audit
serve --hash-password`` prints one for the configuration (``serve_reader_password_hash``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "scrypt$"
_N, _R, _P = 1 << 14, 8, 1  # OWASP's scrypt floor: ~30 ms and 16 MiB a guess


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return f"{PREFIX}{_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def is_password_hash(value: str) -> bool:
    try:
        _parse(value)
    except ValueError:
        return False
    return True


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a hash from :func:`hash_password`)."""
    n, r, p, salt, digest = _parse(stored)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def _parse(value: str) -> tuple[int, int, int, bytes, bytes]:
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != PREFIX.rstrip("$"):
        raise ValueError("not a scrypt$n$r$p$salt$digest password hash")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = base64.urlsafe_b64decode(parts[4]), base64.urlsafe_b64decode(parts[5])
    except ValueError as exc:
        raise ValueError(f"bad password hash: {exc}") from None
    if n < 2 or n & (n - 1) or not (1 <= r <= 64 and 1 <= p <= 16) or n > 1 << 20:
        raise ValueError("bad password hash: scrypt parameters out of range")
    if len(salt) < 8 or len(digest) != 32:
        raise ValueError("bad password hash: salt or digest of the wrong size")
    return n, r, p, salt, digest


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", errors="surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r * p,
        dklen=32,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()
