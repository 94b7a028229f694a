"""The progress bars of the long commands (rich), one look for all of them."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aigc_audit.consumers.cli.output import CommandProgress


def progress_bars(console: Console) -> Progress:
    return CommandProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
