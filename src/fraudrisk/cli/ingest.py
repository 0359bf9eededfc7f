"""The ``fraudrisk ingest`` command: files -> lake, bad rows -> quarantine, counts on screen."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import examples

if TYPE_CHECKING:  # loaded when the command runs, not when the CLI starts
    from fraudrisk.data.ingest import IngestReport

FILE_ERROR_EXIT_CODE = 2

# Prose paragraphs are single lines (rich keeps paragraph breaks).
_HELP = "\n\n".join(
    [
        "Validate transaction files and append their valid rows to the lake.",
        "Rows that fail a check (bad amount, unparseable time, duplicate id, ...) are written "
        "with their reasons to the quarantine, by default the directory quarantine/ next to the "
        "lake. Rejected rows are normal: the exit code stays 0.",
        "A file that cannot be ingested at all (missing, empty, not UTF-8, truncated, wrong "
        "columns, a clear card number column) is refused whole: nothing of it is written, "
        "'error: <file>: <problem>' is printed and the exit code is 2.",
    ]
)
_EPILOG = examples(
    "fraudrisk ingest transactions.csv --lake ./lake",
    "fraudrisk ingest day1.parquet day2.csv.gz --lake s3://bucket/lake",
    "fraudrisk ingest book.csv --allow-unknown-columns --quarantine ./rejects",
)

app = typer.Typer()


@app.command("ingest", help=_HELP, epilog=_EPILOG)
def ingest_command(
    sources: Annotated[
        list[str],
        typer.Argument(help="Files to ingest: .csv, .csv.gz, .parquet or .pq (local or s3)."),
    ],
    lake: Annotated[
        str | None,
        typer.Option("--lake", help="Lake root (path or s3://...); default: the lake setting."),
    ] = None,
    quarantine: Annotated[
        str | None,
        typer.Option(
            "--quarantine", help="Where rejected rows go; default: quarantine/ by the lake."
        ),
    ] = None,
    allow_unknown_columns: Annotated[
        bool,
        typer.Option(
            "--allow-unknown-columns",
            help="Drop (and report) columns not in the lake schema instead of refusing the file.",
        ),
    ] = False,
) -> None:
    """Ingest files into the lake (see the command help)."""
    from fraudrisk.data.ingest import IngestError, ingest  # heavy: pandas, pyarrow
    from fraudrisk.io.lake import Lake

    settings = get_settings()
    target = Lake.open(lake or settings.lake_uri, settings.lake)
    epoch = dt.date.fromisoformat(settings.lake.epoch)
    console = Console()
    reports: list[IngestReport] = []
    failed = 0
    for source in sources:
        try:
            with console.status(f"ingesting {source}"):
                reports.append(
                    ingest(
                        source,
                        target,
                        allow_unknown_columns=allow_unknown_columns,
                        quarantine_uri=quarantine,
                        epoch=epoch,
                        settings=settings.lake,
                    )
                )
        except IngestError as exc:
            failed += 1
            typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
    if reports:
        _print_reports(console, reports)
    if failed:
        raise typer.Exit(code=FILE_ERROR_EXIT_CODE)


def _print_reports(console: Console, reports: list[IngestReport]) -> None:
    """A table of counts per file, one of rejections per reason, and where they went."""
    counts = Table(title="Ingested")
    for column in ("file", "read", "valid", "rejected", "days"):
        counts.add_column(column, justify="left" if column == "file" else "right")
    for report in reports:
        counts.add_row(
            escape(report.source),
            f"{report.rows_read:,}",
            f"{report.rows_valid:,}",
            f"{report.rows_rejected:,}",
            str(len(report.days_written)),
        )
    console.print(counts)
    reasons = Table(title="Rejected rows by reason")
    for column in ("file", "reason", "rows"):
        reasons.add_column(column, justify="right" if column == "rows" else "left")
    for report in reports:
        for kind, count in report.rejected_by_reason.items():
            reasons.add_row(escape(report.source), escape(kind), f"{count:,}")
    if reasons.row_count:
        console.print(reasons)
    for report in reports:
        if report.dropped_columns:
            dropped = list(report.dropped_columns)
            console.print(f"{report.source}: dropped columns {dropped}", markup=False)
        if report.quarantine_path:
            where = f"{report.source}: rejected rows in {report.quarantine_path}"
            console.print(where, markup=False, soft_wrap=True)
