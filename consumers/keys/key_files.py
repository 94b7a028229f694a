"""Where the platform's private keys live, and the checks that refuse to start when they are
within the store engine's reach or open to anyone but their owner.

The engine (chDB, ClickHouse in-process) reads files with table functions (``file``,
``filesystem``): relative paths from the process's working directory, and the store's own files
under its ``path``. Private keys therefore live in a key directory of their own, by default the
data directory's sibling ``<data_dir>.keys`` (``.aigc-audit.keys``), never inside the data
directory, the store or the engine's ``user_files_path``. Older versions kept them in
``<data_dir>/keys``; such a directory is refused with the command that moves it, not moved
behind the operator's back (another process may hold those files open, or the operator may
want them on another volume).

On chDB an absolute path outside ``user_files_path`` is *not* refused (clickhouse-local skips
ClickHouse's user_files check), so placement alone does not keep a key from SQL that may name
any absolute path: readers' SQL must also be confined (``aigc-audit serve``'s allow-list).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from aigc_audit.consumers.keys.errors import KeysError
from aigc_audit.consumers.store.base import Store
from aigc_audit.producers.signing import unsafe_mode

KEY_DIR_MODE = 0o700
LEGACY_KEYS_DIR = "keys"
"""Where versions before the key directory kept every private key: ``<data_dir>/keys``."""
PRIVATE_KEY_SUFFIX = ".key"


class KeyExposureError(KeysError):
    """A private key is, or could be, within the engine's reach or open to others; one line."""


def default_key_dir(data_dir: Path) -> Path:
    """``<data_dir>.keys``: beside the data directory, so each data directory (each test's too)
    has its own keys, paired with the registrations on its own bus, and outside it."""
    base = data_dir if data_dir.name else Path(os.path.abspath(data_dir))
    return base.with_name(f"{base.name}.keys")


def make_key_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if it is missing; an existing one is judged, not chmod-ed,
    by :func:`check_keys` (a wider directory may already have leaked its keys)."""
    path.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)


def engine_read_roots(store: Store) -> list[Path]:
    """The directories the embedded engine itself says it reads: its store ``path`` and its
    ``user_files_path`` (empty for a store that is not the embedded engine)."""
    from aigc_audit.consumers.store.embedded import EmbeddedStore

    if not isinstance(store, EmbeddedStore):
        return []
    result = store.query(
        "SELECT value FROM system.server_settings WHERE name IN ('path', 'user_files_path')"
    )
    return [Path(str(row[0])) for row in result.rows if str(row[0])]


def check_keys(key_dir: Path, *, data_dir: Path, engine_roots: Iterable[Path] = ()) -> None:
    """Refuse (KeyExposureError, one line) when a private key is exposed or could be:

    - the key directory inside the data directory or an engine root, or containing one;
    - private keys still in the legacy ``<data_dir>/keys``;
    - the key directory, or one below it, open to group or others (wider than 0700);
    - a private key file wider than 0600, or one that resolves into the engine's reach.
    """
    roots = [_real(data_dir), *(_real(r) for r in engine_roots)]
    key_real = _real(key_dir)
    for root in roots:
        if _within(key_real, root) or _within(root, key_real):
            raise KeyExposureError(
                f"key directory {key_dir} overlaps {root}, which the store's engine can read; "
                "set key_dir (AIGC_AUDIT_KEY_DIR) to a directory outside the data directory"
            )
    legacy = data_dir / LEGACY_KEYS_DIR
    if next(_private_keys(legacy), None) is not None:
        # Refused, not moved: another process may hold these files, and where they go (another
        # volume, offline) is the operator's call. The message is the whole fix.
        move = (
            f"merge them into {key_dir} by hand (it exists already)"
            if key_dir.exists()
            else f"mv {legacy} {key_dir}"
        )
        raise KeyExposureError(
            f"private keys lie in {legacy}, inside the data directory the store's engine can "
            f"read; move them out before starting: {move}"
        )
    if not key_dir.exists():
        return
    for directory in [key_dir, *(p for p in key_dir.rglob("*") if p.is_dir())]:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if unsafe_mode(mode):
            raise KeyExposureError(
                f"key directory {directory} is mode {mode:04o}, open to group or others; "
                f"it must be 0700 (chmod 700 {directory})"
            )
    for key in _private_keys(key_dir):
        mode = stat.S_IMODE(key.stat().st_mode)
        if unsafe_mode(mode):
            raise KeyExposureError(
                f"key file {key} is mode {mode:04o}, open to group or others; it must be 0600 "
                f"(chmod 600 {key}, and consider the key exposed)"
            )
        # A symlinked key is judged by where it lands.
        target = _real(key)
        if any(_within(target, root) for root in roots):
            raise KeyExposureError(
                f"key file {key} resolves to {target}, which the store's engine can read"
            )


def _private_keys(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return iter(())
    return (p for p in sorted(directory.rglob(f"*{PRIVATE_KEY_SUFFIX}")) if p.is_file())


def _real(path: Path) -> Path:
    # Symlinks and '..' resolved, so that neither hides an overlap.
    return Path(os.path.realpath(path))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
