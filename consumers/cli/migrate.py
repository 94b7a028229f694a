"""``aigc-audit migrate``: bring the store's schema and retention TTLs up to date.

A thin layer over :func:`consumers.store.migrations.migrate`. The store comes from the settings
(the embedded store, or ``clickhouse_url`` with ``clickhouse_cluster`` for a cluster); the TTLs
from ``retention_days`` and ``retention_overrides``. A retention under 180 days fails in the
settings, before the store is touched. Registered on the CLI by ``consumers/cli/main.py``.
"""

from __future__ import annotations

import click

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import migration_context
from aigc_audit.consumers.cli.context import settings
from aigc_audit.consumers.store.migrations import MigrationReport
from aigc_audit.consumers.store.migrations import migrate as run_migrations


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
@click.option(
    "--to",
    "target",
    type=click.IntRange(min=1),
    help="Apply migrations up to this number only (default: all).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also apply migrations marked blocking (stop the materialisers first).",
)
def migrate(dry_run: bool, target: int | None, force: bool) -> None:
    """Apply the store's pending migrations and the configured retention; safe to run twice."""
    s = settings()
    with Deployment(s) as deployment:
        store = deployment.store(migrate=False)
        report = run_migrations(
            store,
            migration_context(s, store.database),
            dry_run=dry_run,
            target=target,
            force=force,
            on_step=None if dry_run else lambda line: click.echo(f"{line} ...", err=True),
        )
    click.echo(render_sql(report) if dry_run else render_summary(report))


def render_sql(report: MigrationReport) -> str:
    """The dry run's output: a SQL script, one statement per block, runnable as it is."""
    where = f"{report.database} on cluster {report.cluster}" if report.cluster else report.database
    if report.up_to_date:
        return f"-- {where}: already up to date (schema version {report.version_after})"
    head = (
        f"-- {where}: schema version {report.version_before} -> {report.version_after}, "
        f"{len(report.statements)} statements (dry run: nothing was executed)"
    )
    return "\n\n".join([head, *(f"{sql};" for sql in report.statements)])


def render_summary(report: MigrationReport) -> str:
    """What a run did, one line per migration and TTL change."""
    if report.up_to_date:
        return (
            f"{report.database}: already up to date (schema version {report.version_after}, "
            "retention unchanged)"
        )
    lines = [f"applied {m.label} ({len(m.statements)} statements)" for m in report.migrations] + [
        f"retention of {table}: {days} days" for table, days in report.retention.items()
    ]
    lines.append(
        f"{report.database}: schema version {report.version_before} -> {report.version_after}"
    )
    return "\n".join(lines)
