"""``aigc-audit infra kafka up|down|status``: a local single-node Kafka broker for development.

``up`` and ``status`` print the bootstrap address as their last line on stdout, so a script can
take it with ``$(aigc-audit infra kafka up | tail -1)``; progress and notes go to stderr. Errors
raise InfraError, which the main CLI shows as one line with exit code 2.

``up`` starts a secured broker (TLS, SASL/SCRAM, ACLs; see broker.py) unless given
``--plaintext``, and then does the platform's set-up as the admin principal: the topics of the
settings' ``topic_prefix`` and the ACLs that give each role (producer, key publisher,
materialiser) exactly its part, for the settings' ``consumer_group``. It prints where the
credentials file (0600) and the CA certificate are, and the settings that use them.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from aigc_audit.consumers.app.kafka_setup import set_up_platform
from aigc_audit.consumers.app.settings import Settings, load_settings
from aigc_audit.infra.kafka import broker
from aigc_audit.infra.kafka.broker import BrokerState


def _settings() -> Settings:
    """The settings as the main CLI resolves them (its ``--config`` and ``--data-dir`` options,
    when run under it, then the config file and environment)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().params if ctx is not None else {}
    return load_settings(root.get("config"), data_dir=root.get("data_dir"))


def _state_dir(given: Path | None) -> Path:
    """``--state-dir``, else ``<data dir>/kafka``."""
    return given if given is not None else _settings().data_dir / "kafka"


def _describe_security(state: BrokerState, settings: Settings) -> None:
    if not state.secure:
        _note("security: none (PLAINTEXT, no authentication, no ACLs): for the demo only")
        return
    _note(
        f"security: SASL_SSL ({state.sasl_mechanism}), ACLs for topics "
        f"{settings.topic_prefix}.* and group {settings.consumer_group}"
    )
    _note(f"credentials (0600, one principal per role): {state.credentials_file}")
    _note(f"CA certificate: {state.ca_file}")
    _note("settings for a process with every role (development; a service gets only its own):")
    _note("  export AIGC_AUDIT_KAFKA_SECURITY_PROTOCOL=SASL_SSL")
    _note(f"  export AIGC_AUDIT_KAFKA_SSL_CAFILE={state.ca_file}")
    _note(f"  export AIGC_AUDIT_KAFKA_CREDENTIALS_FILE={state.credentials_file}")


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
@click.option(
    "--plaintext",
    is_flag=True,
    help="No TLS, no authentication, no ACLs: anyone who reaches the port may write (demo only).",
)
def up(port: int | None, state_dir: Path | None, timeout: float, plaintext: bool) -> None:
    """Start the broker (fetching it first if needed), secured unless --plaintext; set up the
    topics and ACLs of the settings' topic prefix; print its bootstrap address."""
    settings = _settings()
    where = state_dir if state_dir is not None else settings.data_dir / "kafka"
    running = broker.status(where)
    if running is not None:
        _note(f"Kafka {running.kafka_version} already running (pid {running.pid}) in {where}")
        if port is not None and port != running.port:
            _note(f"note: it listens on port {running.port}, not {port}; `down` it to move it")
        if plaintext and running.secure:
            _note("note: it is secured, not plaintext; `down` it and use another --state-dir")
    else:
        began = time.monotonic()
        running = broker.start(
            where, port=port, timeout=timeout, progress=_note, secure=not plaintext
        )
        _note(
            f"Kafka {running.kafka_version} up in {time.monotonic() - began:.1f} s "
            f"(pid {running.pid}, data in {running.data_dir}); stop it with "
            "`aigc-audit infra kafka down`"
        )
    if running.secure:
        set_up_platform(running, settings)
    _describe_security(running, settings)
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
        f"controller port {running.controller_port}, data in {running.data_dir}, "
        f"{running.security_protocol}"
    )
    if running.secure:
        click.echo(f"credentials: {running.credentials_file}; CA: {running.ca_file}")
    click.echo(running.bootstrap)
