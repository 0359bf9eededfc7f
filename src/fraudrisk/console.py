"""Terminal output shared by the CLI commands: a console, progress bars, help examples."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
err_console = Console(stderr=True)


def progress_bar() -> Progress:
    """A progress bar for long work (hidden automatically when output is not a terminal)."""
    return Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def examples(*lines: str) -> str:
    """An epilog listing example invocations, one per line."""
    body = "\n\n".join(f"  [green]$[/green] {line}" for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"
