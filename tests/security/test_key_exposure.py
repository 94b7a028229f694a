"""No private key within the store engine's own reach (Issue 12).

The attack: SQL on the engine's session used ``filesystem(...)`` over the data directory and read
``keys/root.key``. These tests set up a deployment the way the demo does (root, checkpoint,
export and producer keys made through consumers.app.deployment), then run the file-reading table
functions on the embedded engine's own, unconfined session (the materialiser's) and look for
every private key's path and bytes in what comes back.

What chDB itself confines is pinned too, not assumed: relative paths resolve from the process's
working directory, and absolute paths outside ``user_files_path`` are *read*, not refused
(clickhouse-local skips ClickHouse's user_files check). Placement therefore protects the engine's
own directories and the paths relative to them; SQL naming an arbitrary absolute path must be
stopped before the engine (serve's allow-list), which the last test makes explicit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings, load_settings
from aigc_audit.consumers.store.base import StoreError
from aigc_audit.consumers.store.embedded import EmbeddedStore

pytestmark = pytest.mark.chdb


@dataclass
class Setup:
    settings: Settings
    store: EmbeddedStore
    keys: dict[Path, bytes]
    """Every private key file the deployment made, with its bytes."""
    user_files: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp("exposure") / "data"
    settings = load_settings(environ={}, data_dir=data_dir)
    with Deployment(settings) as deployment:
        deployment.root_key()
        deployment.checkpoint_signer()
        deployment.export_key()
        deployment.producer_key("chat-1")
        store = deployment.store()
        assert isinstance(store, EmbeddedStore)
        found = {p: p.read_bytes() for p in _private_key_files(settings)}
        # root, checkpoint, export, chat-1: all four, wherever the platform put them.
        assert len(found) == 4, sorted(found)
        user_files = Path(_scalar(store, "SELECT getServerSetting('user_files_path')"))
        yield Setup(settings, store, found, user_files)


def _private_key_files(settings: Settings) -> list[Path]:
    # Where the old layout put them as well as where the settings say: a key in either counts.
    places = {settings.keys_dir, settings.data_dir / "keys"}
    return sorted({p for d in places if d.is_dir() for p in d.rglob("*.key")})


def _scalar(store: EmbeddedStore, sql: str) -> str:
    return str(store.query(sql).rows[0][0])


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _leaks(setup: Setup, sql: str) -> list[str]:
    """What of the private keys the query's rows show: a key's path, name or PEM body."""
    try:
        rows = setup.store.query(sql).rows
    except StoreError:
        return []  # refused or nothing there: nothing read
    text = "\n".join(str(v) for row in rows for v in row)
    leaks = []
    for path, body in setup.keys.items():
        pem = body.decode("ascii").split("-----")[2].strip()
        if str(path) in text or pem[:40] in text or path.name in text:
            leaks.append(str(path))
    return leaks


def test_every_private_key_lies_outside_the_engines_directories(setup: Setup) -> None:
    s = setup.settings
    engine_path = Path(
        _scalar(setup.store, "SELECT value FROM system.server_settings WHERE name = 'path'")
    )
    roots = {
        "data_dir": s.data_dir,
        "store_path": s.store_path,
        "engine path": engine_path,
        "user_files_path": setup.user_files,
    }
    for key in setup.keys:
        real = Path(os.path.realpath(key))
        for name, root in roots.items():
            root_real = Path(os.path.realpath(root))
            assert root_real not in real.parents, f"{key} is inside {name} {root}"


@pytest.mark.parametrize("where", ["data_dir", "store_path"])
def test_relative_file_functions_from_the_engines_directories_reach_no_key(
    setup: Setup, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chDB resolves relative paths from the working directory: run from the data directory and
    from the store, as a service might, and try what the attacker tried."""
    base: Path = getattr(setup.settings, where)
    monkeypatch.chdir(base)
    # Pin that relative paths really resolve here, or the queries below would prove nothing.
    listed = setup.store.query("SELECT path FROM filesystem('') LIMIT 1").rows
    assert listed, "filesystem('') listed nothing"
    queries = [
        "SELECT path, name, content FROM filesystem('')",
        "SELECT path, name, content FROM filesystem('.')",
        "SELECT path, name, content FROM filesystem('keys')",
        "SELECT path, name, content FROM filesystem('store/..')",
        "SELECT * FROM file('keys/root.key', 'RawBLOB')",
        "SELECT * FROM file('keys/*.key', 'RawBLOB')",
        "SELECT * FROM file('keys/producers/*.key', 'RawBLOB')",
        "SELECT * FROM file('../keys/root.key', 'RawBLOB')",
        "SELECT * FROM file('store/../keys/root.key', 'RawBLOB')",
        "SELECT * FROM file('**/*.key', 'RawBLOB')",
    ]
    for sql in queries:
        assert _leaks(setup, sql) == [], sql


def test_absolute_file_functions_over_the_engines_directories_reach_no_key(setup: Setup) -> None:
    s = setup.settings
    queries = []
    for root in (s.data_dir, s.store_path, setup.user_files):
        queries += [
            f"SELECT path, name, content FROM filesystem({_quote(root)})",
            f"SELECT * FROM file({_quote(root / 'keys' / 'root.key')}, 'RawBLOB')",
            f"SELECT * FROM file({_quote(root / 'keys' / 'producers' / '*.key')}, 'RawBLOB')",
            f"SELECT * FROM file({_quote(root / '**' / '*.key')}, 'RawBLOB')",
        ]
    # The store's path as the engine reports it, the way an attacker would learn it.
    queries.append(
        "SELECT path, name, content FROM filesystem("
        "(SELECT value FROM system.server_settings WHERE name = 'path') || '/..')"
    )
    for sql in queries:
        assert _leaks(setup, sql) == [], sql


def test_chdb_does_not_confine_absolute_paths_so_readers_sql_must_be(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pins what this chDB does with a path outside user_files_path: it reads it. Were it
    refused, this test would fail and tell that the engine now confines files itself.

    So no placement hides a key from SQL free to name any absolute path (nor do modes, for a
    process running as the keys' owner, or as root): readers' SQL must not reach the engine
    unconfined. The same holds for relative paths from a working directory above the key
    directory, as the default layout's (``./.aigc-audit`` and ``./.aigc-audit.keys``) is."""
    key = next(iter(setup.keys))
    assert setup.user_files not in key.parents
    sql = f"SELECT * FROM file({_quote(key)}, 'RawBLOB')"
    rows = setup.store.query(sql).rows
    assert rows and str(rows[0][0]).startswith("-----BEGIN PRIVATE KEY-----")
    # The leak detector the other tests rely on does see a key when one is read.
    assert _leaks(setup, sql) == [str(key)]
    monkeypatch.chdir(setup.settings.data_dir.parent)
    assert _leaks(setup, "SELECT path, name, content FROM filesystem('')") != []
