"""What every command shares: the consoles, the settings with command-line overrides, the
``--bus``/``--bootstrap`` options and the one error a command raises for the user."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from aigc_audit.consumers.app.settings import Settings, load_settings
from aigc_audit.consumers.errors import PlatformError

# Piped output (CI logs, `make demo | less`) gets room for the query tables rather than 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class CliError(PlatformError):
    """A user-facing failure; its message is the one line the user sees."""


class _State:
    config: Path | None = None
    data_dir: Path | None = None
    settings: Settings | None = None
    command: str | None = None
    """The command being run (``query run``), for the line that says it needs the platform."""


state = _State()


def settings(**overrides: Any) -> Settings:
    """The settings, with command-line overrides (None means: not given) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if state.settings is None or given:
        state.settings = load_settings(state.config, data_dir=state.data_dir, **given)
    return state.settings


def bus_options(command: Any) -> Any:
    """``--bus`` and ``--bootstrap``, shared by the commands that touch the bus."""
    command = click.option(
        "--bootstrap", help="Kafka bootstrap servers HOST:PORT[,HOST:PORT] (implies --bus kafka)."
    )(command)
    return click.option(
        "--bus", type=click.Choice(["embedded", "kafka"]), help="The bus (default: embedded)."
    )(command)


def bus_settings(bus: str | None, bootstrap: str | None) -> Settings:
    if bootstrap and bus is None:
        bus = "kafka"
    return settings(bus=bus, bootstrap=bootstrap)
