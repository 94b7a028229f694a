"""``aigc-audit infra kafka up|down|status``: a local single-node Kafka broker for development.

``up`` and ``status`` print the bootstrap address as their last line on stdout, so a script can
take it with ``$(aigc-audit infra kafka up | tail -1)``; progress and notes go to stderr. Errors
raise InfraError, which the main CLI shows as one line with exit code 2.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from consumers.settings import load_settings
from infra.kafka import broker


def _state_dir(given: Path | None) -> Path:
    """``--state-dir``, else ``<data dir>/kafka`` with the data dir as the main CLI resolves it
    (its ``--config`` and ``--data-dir`` options, when run under it, then the settings)."""
    if given is not None:
        return given
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().params if ctx is not None else {}
    return load_settings(root.get("config"), data_dir=root.get("data_dir")).data_dir / "kafka"


def _note(message: str) -> None:
    click.echo(message, err=True)


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the broker keeps its config, logs and data (default: <data dir>/kafka).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def kafka() -> None:
    """A single-node Apache Kafka broker (KRaft) on this machine, fetched with Maven; no Docker."""


@kafka.command()
@click.option("--port", type=click.IntRange(1, 65535), help="Client port (default: a free one).")
@state_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the broker to answer.",
)
def up(port: int | None, state_dir: Path | None, timeout: float) -> None:
    """Start the broker (fetching it first if needed) and print its bootstrap address."""
    where = _state_dir(state_dir)
    running = broker.status(where)
    if running is not None:
        _note(f"Kafka {running.kafka_version} already running (pid {running.pid}) in {where}")
        if port is not None and port != running.port:
            _note(f"note: it listens on port {running.port}, not {port}; `down` it to move it")
    else:
        began = time.monotonic()
        running = broker.start(where, port=port, timeout=timeout, progress=_note)
        _note(
            f"Kafka {running.kafka_version} up in {time.monotonic() - began:.1f} s "
            f"(pid {running.pid}, data in {running.data_dir}); stop it with "
            "`aigc-audit infra kafka down`"
        )
    click.echo(running.bootstrap)


@kafka.command()
@state_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a clean shutdown before SIGKILL.",
)
def down(state_dir: Path | None, timeout: float) -> None:
    """Stop the broker; its data stays. Succeeds when none is running."""
    where = _state_dir(state_dir)
    stopped = broker.stop(where, timeout=timeout)
    if stopped is None:
        _note(f"no Kafka broker running in {where}")
    else:
        _note(f"stopped Kafka {stopped.kafka_version} (pid {stopped.pid}) at {stopped.bootstrap}")


@kafka.command()
@state_dir_option
def status(state_dir: Path | None) -> None:
    """Print the running broker's pid and bootstrap address; exit 1 if none is running."""
    where = _state_dir(state_dir)
    running = broker.status(where)
    if running is None:
        _note(f"no Kafka broker running in {where}")
        raise click.exceptions.Exit(1)
    uptime = time.time() - running.started_at
    click.echo(
        f"Kafka {running.kafka_version}: pid {running.pid}, up {uptime:.0f} s, "
        f"controller port {running.controller_port}, data in {running.data_dir}"
    )
    click.echo(running.bootstrap)
