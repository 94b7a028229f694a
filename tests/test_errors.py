"""One error root: every error of ours derives from ``AuditError`` (the platform's from
``PlatformError``, one subclass per stage), and the CLI turns any of them into one line and
exit 2. The classes are found by importing every module, so a new error class cannot slip
out from under the root unnoticed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import click
import pytest

import aigc_audit
from aigc_audit.consumers.cli import main as cli
from aigc_audit.consumers.errors import PlatformError
from aigc_audit.producers.errors import AuditError

# Signals a module raises and catches itself, which never reach a caller or a user; each with
# where it is caught. Anything else must derive from the root, but for private classes
# (``_Unsupported``): their leading underscore already says they never leave their module.
INTERNAL = {
    "aigc_audit.consumers.bundle.format.line_compiler.Slow": "the compiled renderer's fallback",
    "aigc_audit.consumers.keys.keyring.KeyRejected": "a batch's key verdict, become a reason",
    "aigc_audit.consumers.bundle.verify.source.Unreadable": "a bundle file, become a problem",
    "aigc_audit.consumers.bundle.verify.fast_events.Unreadable": "a chunk sent to the exact path",
    "aigc_audit.consumers.bundle.verify.event_checks.Damaged": "an event, become a problem",
    "aigc_audit.consumers.store.reader_policy.ReaderRefusal": "an HTTP 4xx reply to a reader",
    "aigc_audit.consumers.store.chdb_http.ClickHouseError": "the engine's error, an HTTP reply",
    "aigc_audit.consumers.store.sqlscan.SqlScanError": "a statement the server answers 400",
    "aigc_audit.producers.record_encoder.UnsupportedSchema": "the encoder's fastavro fallback",
    "aigc_audit.producers.record_encoder.Misfit": "a record fastavro then reports exactly",
    "aigc_audit.consumers.bench.stages.StageCheckError": "a benchmark's self-check: a bug",
}


def _modules() -> Iterator[str]:
    for top in ("producers", "consumers", "schemas", "queries", "dashboards", "infra"):
        package = importlib.import_module(f"aigc_audit.{top}")
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            yield info.name


def our_errors() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                if value.__qualname__.startswith("_"):
                    continue
                found[f"{name}.{value.__qualname__}"] = value
    return found


ERRORS = our_errors()


def test_the_walk_finds_the_errors_of_every_stage() -> None:
    # A walk that found nothing would pass every test below.
    assert aigc_audit.__name__ == "aigc_audit"
    for stage_error in (
        "aigc_audit.producers.errors.BusError",
        "aigc_audit.consumers.ingest.errors.IngestError",
        "aigc_audit.consumers.keys.errors.KeysError",
        "aigc_audit.consumers.checkpoints.note.CheckpointError",
        "aigc_audit.consumers.store.base.StoreError",
        "aigc_audit.consumers.query.errors.QueryError",
        "aigc_audit.consumers.bundle.export.errors.ExportError",
        "aigc_audit.consumers.bundle.format.errors.FormatError",
        "aigc_audit.consumers.bundle.verify.result.BundleError",
        "aigc_audit.consumers.app.settings.SettingsError",
        "aigc_audit.consumers.cli.context.CliError",
        "aigc_audit.infra.kafka.tools.InfraError",
    ):
        assert stage_error in ERRORS
    assert set(INTERNAL) <= set(ERRORS), "an internal signal listed here no longer exists"


@pytest.mark.parametrize("name", sorted(set(ERRORS) - set(INTERNAL)))
def test_every_error_derives_from_the_one_root(name: str) -> None:
    error = ERRORS[name]
    assert issubclass(error, AuditError), f"{name} is not an AuditError"
    if name.startswith("aigc_audit.consumers."):
        assert issubclass(error, PlatformError), f"{name} is not a PlatformError"


def _instance(error: type[BaseException]) -> BaseException:
    try:
        return error("the stage said why\nand a second line the user need not see")
    except TypeError:  # a constructor of its own: build it as Exception would
        made = error.__new__(error)
        made.args = ("the stage said why\nand a second line the user need not see",)
        return made


@pytest.mark.parametrize("name", sorted(set(ERRORS) - set(INTERNAL)))
def test_the_cli_turns_any_of_them_into_one_line_and_exit_2(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    error = _instance(ERRORS[name])

    @click.command("fail")
    def fail() -> None:
        raise error

    monkeypatch.setitem(cli.app.commands, "fail", fail)
    with pytest.raises(SystemExit) as exited:
        cli.main(["fail"])
    assert exited.value.code == 2
    printed = capsys.readouterr().err
    line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    assert printed == f"aigc-audit: error: {line}\n"
