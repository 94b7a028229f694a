"""The ``aigc-audit`` command: a thin layer over the platform's modules.

Every failure a user can cause (a bad config, an unknown query, a held data directory, a broken
bus) ends as one line on stderr and exit code 2; a traceback means a bug in aigc-audit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aigc_audit.consumers.app.settings import load_settings
from aigc_audit.consumers.cli import demo, inspection, pipeline
from aigc_audit.consumers.cli.bench import bench
from aigc_audit.consumers.cli.context import err, settings, state
from aigc_audit.consumers.cli.kafka import kafka
from aigc_audit.consumers.cli.migrate import migrate
from aigc_audit.consumers.cli.query import query
from aigc_audit.consumers.errors import PLATFORM_INSTALL, missing_platform_module
from aigc_audit.producers.errors import AuditError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=True),
    help="TOML config file (default: $AIGC_AUDIT_CONFIG, else ./aigc-audit.toml if present).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Data directory (default: $AIGC_AUDIT_DATA_DIR or ./.aigc-audit).",
)
def app(config: Path | None, data_dir: Path | None) -> None:
    """aigc-audit: a signed, replayable compliance audit log for generative-AI services."""
    # Read the configuration before any command, so a bad file fails every command the same way.
    state.config, state.data_dir = config, data_dir
    state.command = click.get_current_context().invoked_subcommand
    state.settings = load_settings(config, data_dir=data_dir)
    click.get_current_context().obj = settings


@app.group("infra")
def infra() -> None:
    """Start and stop the real parts on this machine (Kafka in KRaft mode)."""


infra.add_command(kafka, "kafka")
for _command in (
    demo.demo,
    demo.emit,
    pipeline.consume,
    pipeline.serve,
    query,
    migrate,
    inspection.verify,
    inspection.export,
    inspection.report,
    bench,
):
    app.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user-facing failures into one line and exit code 2."""
    try:
        code = app.main(args=argv, prog_name="aigc-audit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        err.print("aigc-audit: aborted")
        sys.exit(130)
    except (AuditError, OSError) as exc:
        _fail(exc)
    except ImportError as exc:
        # A base install (client library and offline verifier) has no platform libraries:
        # a command that needs one says which extra to install. Any other missing module is
        # a broken install or a bug, and its traceback is what helps.
        if missing_platform_module(exc) is None:
            raise
        _fail(exc)


def _fail(exc: BaseException) -> None:
    # Plain stderr, not rich: one line must stay one line whatever the terminal's width.
    missing = missing_platform_module(exc)
    if missing is not None:
        command = " ".join(filter(None, ("aigc-audit", state.command)))
        text = f"{command} needs the platform: {PLATFORM_INSTALL} (missing: {missing})"
    else:
        text = _one_line(exc)
    sys.stderr.write(f"aigc-audit: error: {text}\n")
    sys.exit(2)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    main()
