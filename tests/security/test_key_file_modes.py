"""Private key files are 0600 from birth, their directory 0700, and the platform refuses to start,
with one line, when either is wider or when keys still lie in the data directory (Issue 12)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import aigc_audit.consumers
from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings, load_settings
from aigc_audit.consumers.keys.key_files import KeyExposureError, check_keys, make_key_dir
from aigc_audit.producers.errors import KeyFileError, SignatureError
from aigc_audit.producers.signing import SigningKey

pytestmark = pytest.mark.chdb


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _keys(tmp_path: Path) -> Settings:
    """A data directory whose deployment made its root, checkpoint, export and a producer key
    (through the embedded bus only: the store is left for the command under test to open)."""
    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    with Deployment(settings) as deployment:
        deployment.root_key()
        deployment.checkpoint_signer()
        deployment.export_key()
        deployment.producer_key("chat-1")
    return settings


CODE_ROOT = str(Path(aigc_audit.consumers.__file__).resolve().parents[1])
"""The checkout whose code this test runs; the CLI under test must run the same code, not
whatever the venv has installed."""


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_AUDIT_")}
    return subprocess.run(
        [sys.executable, "-m", "aigc_audit.consumers.cli.main", *args],
        capture_output=True,
        text=True,
        env={
            **inherited,
            "PYTHONPATH": CODE_ROOT,
            "AIGC_AUDIT_DATA_DIR": str(settings.data_dir),
            **env,
        },
        cwd=settings.data_dir.parent,
        timeout=30,
    )


def _refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aigc-audit: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def umask_zero() -> Iterator[None]:
    # With no umask to narrow it, a mode a file gets is the one it was created with.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_the_platform_makes_keys_0600_in_a_0700_directory_outside_the_data_dir(
    tmp_path: Path, umask_zero: None
) -> None:
    settings = _keys(tmp_path)
    keys = sorted(settings.keys_dir.rglob("*.key"))
    assert len(keys) == 4, keys  # root, checkpoint, export, chat-1
    for key in keys:
        assert _mode(key) == 0o600, (key, oct(_mode(key)))
    for directory in [settings.keys_dir, *(p for p in settings.keys_dir.rglob("*") if p.is_dir())]:
        assert _mode(directory) == 0o700, (directory, oct(_mode(directory)))
    data_dir = settings.data_dir.resolve()
    assert data_dir not in settings.keys_dir.resolve().parents
    assert not (settings.data_dir / "keys").exists()
    assert settings.keys_dir == data_dir.with_name("data.keys")


def test_a_key_file_is_born_0600_and_never_through_a_symlink(
    tmp_path: Path, umask_zero: None
) -> None:
    key = SigningKey.generate()
    path = tmp_path / "k.key"
    key.to_file(path)
    assert _mode(path) == 0o600
    key.to_file(path, overwrite=True)  # replaced through a temporary file, also born 0600
    assert _mode(path) == 0o600
    with pytest.raises(SignatureError, match="refusing to overwrite"):
        key.to_file(path)
    # A symlink planted where a key is to be written must not carry the key elsewhere.
    elsewhere = tmp_path / "public" / "stolen.key"
    elsewhere.parent.mkdir()
    (tmp_path / "planted.key").symlink_to(elsewhere)
    with pytest.raises(SignatureError):
        key.to_file(tmp_path / "planted.key")
    assert not elsewhere.exists()


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o620])
def test_from_file_refuses_a_key_open_to_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.key"
    SigningKey.generate().to_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        SigningKey.from_file(path)
    message = str(caught.value)
    assert str(path) in message and f"{mode:04o}" in message and "0600" in message
    assert len(message.splitlines()) == 1
    path.chmod(0o600)
    assert SigningKey.from_file(path).key_id  # the same file, narrowed, loads


@pytest.mark.parametrize(
    ("which", "mode"),
    [("root.key", 0o640), ("producers/chat-1.key", 0o644)],
)
def test_the_platform_refuses_to_start_with_a_key_file_wider_than_0600(
    tmp_path: Path, which: str, mode: int
) -> None:
    settings = _keys(tmp_path)
    key = settings.keys_dir / which
    key.chmod(mode)
    # A producer's key (chat-1) is judged too before any key is used: a wide file is refused
    # whichever command would have touched it.
    _refused(_cli(settings, "consume"), str(key), f"{mode:04o}")


def test_serve_refuses_to_start_with_a_key_directory_wider_than_0700(tmp_path: Path) -> None:
    settings = _keys(tmp_path)
    settings.keys_dir.chmod(0o755)
    _refused(_cli(settings, "serve"), str(settings.keys_dir), "0755", "0700")


def test_an_old_data_dir_with_keys_inside_is_refused_with_where_to_move_them(
    tmp_path: Path,
) -> None:
    """Keys of an older version, in <data_dir>/keys, are refused (not moved: another process
    may hold them, the operator may want them elsewhere), naming the move that fixes it."""
    settings = _keys(tmp_path)
    legacy = settings.data_dir / "keys"
    settings.keys_dir.rename(legacy)  # the layout of every version before the key directory
    result = _cli(settings, "consume")
    _refused(result, str(legacy), f"mv {legacy} {settings.keys_dir}")
    assert sorted(p.name for p in legacy.rglob("*.key")) == [
        "aigc-audit.checkpoint.key",
        "aigc-audit.export.key",
        "chat-1.key",
        "root.key",
    ]
    root_id = SigningKey.from_file(legacy / "root.key").key_id
    # The move the message names is the whole fix: the deployment then starts on its old keys.
    subprocess.run(["mv", str(legacy), str(settings.keys_dir)], check=True)
    with Deployment(settings) as deployment:
        assert deployment.root_key().key_id == root_id


def test_a_key_dir_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    inside = data_dir / "secrets"
    settings = load_settings(environ={}, data_dir=data_dir, key_dir=inside)
    with Deployment(settings) as deployment, pytest.raises(KeyExposureError) as caught:
        deployment.root_key()
    assert "overlaps" in str(caught.value) and str(inside) in str(caught.value)
    assert not inside.exists()  # refused before a key was made there
    _refused(_cli(settings, "consume", AIGC_AUDIT_KEY_DIR=str(inside)), str(inside), "KEY_DIR")


def test_check_keys_refuses_every_overlap_with_the_engines_reach(tmp_path: Path) -> None:
    data_dir = tmp_path / "outer" / "data"
    data_dir.mkdir(parents=True)
    user_files = tmp_path / "user_files"
    # The data directory inside the key directory: the store would sit beside the keys.
    with pytest.raises(KeyExposureError, match="overlaps"):
        check_keys(tmp_path / "outer", data_dir=data_dir)
    # Inside an engine root the engine itself reports (its user_files_path).
    with pytest.raises(KeyExposureError, match="overlaps"):
        check_keys(user_files / "keys", data_dir=data_dir, engine_roots=[user_files])
    # A symlinked key is judged by where it lands: here, inside the data directory.
    key_dir = tmp_path / "data.keys"
    make_key_dir(key_dir)
    landed = data_dir / "landed.key"
    SigningKey.generate().to_file(landed)
    (key_dir / "root.key").symlink_to(landed)
    with pytest.raises(KeyExposureError, match="resolves to"):
        check_keys(key_dir, data_dir=data_dir)
    (key_dir / "root.key").unlink()
    check_keys(key_dir, data_dir=data_dir)  # nothing left to refuse
    # Old-layout keys when the key directory exists already: merged by hand, not an mv that
    # would nest one directory in the other.
    (data_dir / "keys").mkdir()
    landed.rename(data_dir / "keys" / "root.key")
    with pytest.raises(KeyExposureError, match=f"merge them into {key_dir} by hand"):
        check_keys(key_dir, data_dir=data_dir)


@pytest.mark.parametrize(
    ("setting", "content"),
    [
        ("kafka_credentials_file", '{"producer": {"username": "producer", "password": "pw"}}'),
        ("kafka_password_file", "pw\n"),
    ],
)
def test_a_kafka_password_file_open_to_others_is_refused(
    tmp_path: Path, setting: str, content: str
) -> None:
    from aigc_audit.consumers.app.settings import SettingsError

    secret = tmp_path / "secret"
    secret.write_text(content)
    secret.chmod(0o644)
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "data",
        kafka_security_protocol="SASL_SSL",
        kafka_username="producer",
        **{setting: secret},
    )
    with pytest.raises(SettingsError, match=r"mode 0644, open to group or others"):
        settings.kafka_security("producer")
    secret.chmod(0o600)
    assert settings.kafka_security("producer").password == "pw"
