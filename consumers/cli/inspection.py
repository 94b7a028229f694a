"""``aigc-audit verify``, ``export`` and ``report``: what an inspection needs from the CLI.

``verify`` exits 0 only when every check passes, 1 when a check fails (the evidence is not
what was signed) and 2 when the input is unusable (no such bundle, a bad key file).
"""

from __future__ import annotations

import getpass
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.inspection import export_with_report
from aigc_audit.consumers.app.settings import Settings
from aigc_audit.consumers.cli.context import err, out
from aigc_audit.consumers.cli.output import CommandProgress
from aigc_audit.consumers.errors import PlatformError
from aigc_audit.consumers.query.pack import bind_params, get_query, parse_param_args
from aigc_audit.consumers.query.selection import Selection

VERIFICATION_FAILED = 1


class InspectionError(PlatformError):
    """An export, report or verification that cannot start; one line for the user."""


def selection_options(command: Any) -> Any:
    """The options that say which events an export or a report covers."""
    options = [
        click.option("--since", help="Events at or after this time (ISO 8601; UTC if no offset)."),
        click.option("--until", help="Events before this time (ISO 8601)."),
        click.option("--subject", help="Only this subject's events (pseudonymous id)."),
        click.option(
            "--family",
            "families",
            multiple=True,
            help="Only this event family (generations, moderation_actions, user_sanctions, "
            "data_handling); repeatable.",
        ),
        click.option("--query", "query_name", help="The events in the rows of this named query."),
        click.option("--param", "-p", "params", multiple=True, help="Its parameter NAME=VALUE."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_selection(
    since: str | None,
    until: str | None,
    subject: str | None,
    families: tuple[str, ...],
    query_name: str | None,
    params: tuple[str, ...],
) -> Selection:
    given = parse_param_args(params)
    if given and not query_name:
        raise InspectionError("--param needs --query: parameters belong to a named query")
    if query_name:
        bind_params(get_query(query_name), given)  # fail now, with the query's own message
    return Selection(
        since=_time("--since", since),
        until=_time("--until", until),
        subject=subject,
        families=families,
        query=query_name,
        query_params=given,
    )


def _time(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        raise InspectionError(
            f"{option} {text!r} is not an ISO 8601 time such as 2026-11-01 or 2026-11-01T08:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _spinner() -> Progress:
    return CommandProgress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
    )


def _counter(progress: Progress, description: str) -> Callable[[int], None]:
    task = progress.add_task(description, total=None)
    return lambda n: progress.update(task, description=f"{description}: {n:,}")


@click.command("verify")
@click.argument("bundle", required=False, type=click.Path(path_type=Path))
@click.option("--trust", type=click.Path(path_type=Path), help="The provider's root public key.")
@click.option(
    "--store", "check_store", is_flag=True, help="Verify this deployment's store instead."
)
@click.pass_context
def verify(ctx: click.Context, bundle: Path | None, trust: Path | None, check_store: bool) -> None:
    """Verify an export bundle offline (BUNDLE --trust ROOT_PUBLIC_KEY), or the store (--store).

    Prints every check with its result; exits 0 only when all pass.
    """
    from aigc_audit.producers.signing import load_public_key

    if check_store == (bundle is not None):
        raise InspectionError("give either BUNDLE --trust KEY, or --store")
    if check_store:
        settings: Settings = ctx.obj()
        with Deployment(settings) as deployment:
            root = load_public_key(trust or settings.root_public_key_path)
            ok = _verify_store(deployment, root)
    else:
        if trust is None:
            raise InspectionError("verifying a bundle needs --trust ROOT_PUBLIC_KEY")
        # not None: without --store, the check above refused a missing BUNDLE
        ok = _verify_bundle(cast(Path, bundle), load_public_key(trust))
    if not ok:
        sys.exit(VERIFICATION_FAILED)


def _verify_store(deployment: Deployment, root: bytes) -> bool:
    from aigc_audit.consumers.store_verification import verify_store

    with _spinner() as progress:
        events = _counter(progress, "verifying the store")
        result = verify_store(deployment.read_store(), root, progress=lambda _s, n: events(n))
    for check in result.checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        out.print(f"{mark} {check.name}: {check.detail}", highlight=False)
    for finding in result.findings:
        out.print(f"  [red]•[/] {finding.line()}", highlight=False)
    verdict = "[green]store verified[/]" if result.ok else "[red]store verification FAILED[/]"
    out.print(f"{verdict}: {len(result.findings)} finding(s)")
    return result.ok


def _verify_bundle(bundle: Path, root: bytes) -> bool:
    from aigc_audit.consumers.bundle.verify import format_checks, verify_bundle

    if not bundle.exists():
        raise InspectionError(f"no bundle at {bundle}")
    with _spinner() as progress:
        progress.add_task(f"verifying {bundle}", total=None)
        result = verify_bundle(bundle, root)
    for line in format_checks(result):
        style = "green" if line.startswith("✓") else "red"
        out.print(f"[{style}]{line[:1]}[/]{line[1:]}", highlight=False)
    verdict = "[green]bundle verified[/]" if result.ok else "[red]bundle verification FAILED[/]"
    out.print(verdict)
    return result.ok


@click.command("export")
@click.argument("out_path", type=click.Path(path_type=Path))
@selection_options
@click.option("--no-report", is_flag=True, help="Leave report.html out of the bundle.")
@click.option("--by", "exported_by", help="Who exports (default: user@host).")
@click.pass_context
def export(
    ctx: click.Context,
    out_path: Path,
    since: str | None,
    until: str | None,
    subject: str | None,
    families: tuple[str, ...],
    query_name: str | None,
    params: tuple[str, ...],
    no_report: bool,
    exported_by: str | None,
) -> None:
    """Write an export bundle (a directory, or OUT_PATH.zip) of the selected events, with their
    proofs, keys, schemas, a signed manifest and the report; verify it with `aigc-audit verify`."""
    selection = build_selection(since, until, subject, families, query_name, params)
    settings: Settings = ctx.obj()
    with Deployment(settings) as deployment, _spinner() as progress:
        summary = export_with_report(
            deployment,
            selection,
            out_path,
            exported_by=exported_by or f"{getpass.getuser()}@{socket.gethostname()}",
            with_report=not no_report,
            progress=_counter(progress, f"exporting to {out_path}"),
        )
    counts = ", ".join(f"{n:,} {f}" for f, n in sorted(summary.events_by_family.items()))
    out.print(
        f"wrote {out_path}: {summary.events:,} events ({counts or 'none'}) in "
        f"{summary.batches:,} batches, {summary.checkpoints} checkpoints, {summary.keys} keys; "
        f"{summary.files} files, {summary.bytes / 1e6:,.1f} MB, {summary.seconds:.1f} s"
    )
    out.print(f"verify it with: aigc-audit verify {out_path} --trust {_trust_path(settings)}")


@click.command("report")
@click.argument("out_path", type=click.Path(path_type=Path), default=Path("report.html"))
@selection_options
@click.pass_context
def report(
    ctx: click.Context,
    out_path: Path,
    since: str | None,
    until: str | None,
    subject: str | None,
    families: tuple[str, ...],
    query_name: str | None,
    params: tuple[str, ...],
) -> None:
    """Write the inspection report (one self-contained HTML file, charts inline) for the
    selected events (default: all) to OUT_PATH (default report.html)."""
    from aigc_audit.consumers.report import write_report

    selection = build_selection(since, until, subject, families, query_name, params)
    with Deployment(ctx.obj()) as deployment, _spinner() as progress:
        progress.add_task(f"writing {out_path}", total=None)
        written = write_report(deployment.read_store(), selection, out_path)
    out.print(f"wrote {out_path}: {written.event_count:,} events, {len(written.sections)} sections")


def _trust_path(settings: Settings) -> Path:
    return settings.root_public_key_path
