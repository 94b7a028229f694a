"""``aigc-audit query list|run``: the named inspection queries."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.cli.context import CliError, out, settings, state
from aigc_audit.consumers.cli.output import FORMATS, render, result_table


@click.group("query")
def query() -> None:
    """Named inspection queries."""
    state.command = f"query {click.get_current_context().invoked_subcommand}"


@query.command("list")
def query_list() -> None:
    """List the inspection queries with the articles they serve and their parameters."""
    from rich.table import Table as RichTable

    from aigc_audit.consumers.query.pack import load_query_pack

    table = RichTable(header_style="bold")
    table.add_column("name", no_wrap=True)
    for column in ("title", "articles", "parameters"):
        table.add_column(column, overflow="fold")
    for name, query in sorted(load_query_pack().items()):
        params = ", ".join(
            f"{p.name}: {p.type}" + (f" = {p.default}" if p.default is not None else "")
            for p in query.params
        )
        table.add_row(name, query.title, _articles(query.articles), params)
    out.print(table)


@query.command("run")
@click.argument("name")
@click.option("--param", "-p", "param", multiple=True, help="A parameter as NAME=VALUE.")
@click.option(
    "--format", "-f", "fmt", default="table", show_default=True, help="table, csv or json."
)
def query_run(name: str, param: tuple[str, ...], fmt: str) -> None:
    """Run one named inspection query against the store."""
    from aigc_audit.consumers.query.pack import bind_params, get_query, parse_param_args, run_query

    if fmt not in FORMATS:
        raise CliError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    query = get_query(name)
    values = bind_params(query, parse_param_args(param))
    with Deployment(settings()) as deployment:
        result = run_query(deployment.read_store(), query, values)
    if fmt == "table":
        out.print(result_table(result, f"{query.title} ({_articles(query.articles)})"))
        out.print(f"[dim]{len(result.rows)} rows at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC[/]")
    else:
        render(result, fmt, out)


def _articles(articles: tuple[str, ...]) -> str:
    return "; ".join(articles)
