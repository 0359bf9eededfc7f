"""The ``fraudrisk simulate`` command: synthetic card transactions into the lake."""

from __future__ import annotations

import datetime as dt
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.cli.lake import open_lake
from fraudrisk.console import console, examples, progress_bar

if TYPE_CHECKING:  # the heavy modules load when a command runs, not when the CLI starts
    from fraudrisk.data.simulate import WriteResult
    from fraudrisk.data.world_changes import DriftConfig
    from fraudrisk.io.lake import Lake

app = typer.Typer()


class Preset(StrEnum):
    """Simulation presets."""

    handbook = "handbook"


class NewPatternOption(StrEnum):
    """Fraud patterns --new-pattern can add (mirrors fraudrisk.data.world_changes.NewPattern)."""

    card_testing = "card-testing"


SIMULATE_EPILOG = examples(
    "fraudrisk simulate --preset handbook --out data/lake",
    "fraudrisk simulate --customers 50000 --terminals 100000 --days 30 --seed 7 --out data/big",
    "FRAUDRISK_LAKE__URI=s3://bucket/lake fraudrisk simulate --preset handbook",
    "fraudrisk simulate --continue --days 28 --out data/lake",
    "fraudrisk simulate --continue --days 28 --drift-from 2018-10-08 --amount-factor 2.0 "
    "--new-pattern card-testing --out data/lake",
)


@app.command("simulate", epilog=SIMULATE_EPILOG)
def simulate(
    out: Annotated[
        str | None, typer.Option(help="Lake URI (dir or s3://); default: settings.")
    ] = None,
    preset: Annotated[
        Preset | None, typer.Option(help="Reproduce a published dataset exactly.")
    ] = None,
    customers: Annotated[int | None, typer.Option(min=1, help="Customers [5000].")] = None,
    terminals: Annotated[int | None, typer.Option(min=1, help="Terminals [10000].")] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Days to simulate [183; with --continue 28].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [0].")] = None,
    start_date: Annotated[
        str | None,
        typer.Option(
            help="First day, YYYY-MM-DD [2018-04-01; with --continue the lake's next day]."
        ),
    ] = None,
    continue_: Annotated[
        bool,
        typer.Option(
            "--continue",
            help="Append days to an existing handbook lake: same customers, terminals and "
            "compromises, ids after the lake's largest (--customers/--terminals: its size).",
            rich_help_panel="Continue a lake, change the world",
        ),
    ] = False,
    drift_from: Annotated[
        str | None,
        typer.Option(
            help="With --continue: the world changes from this day (YYYY-MM-DD).",
            rich_help_panel="Continue a lake, change the world",
        ),
    ] = None,
    amount_factor: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=100.0,
            help="From --drift-from: every amount (and the >220 fraud rule) × this.",
            rich_help_panel="Continue a lake, change the world",
        ),
    ] = 1.0,
    new_pattern: Annotated[
        NewPatternOption | None,
        typer.Option(
            help="From --drift-from: a fraud pattern the handbook lacks (scenario 4: night "
            "bursts of tiny tests at new terminals, then purchases).",
            rich_help_panel="Continue a lake, change the world",
        ),
    ] = None,
    pattern_cards: Annotated[
        int,
        typer.Option(
            min=1,
            help="Cards hit by --new-pattern per day.",
            rich_help_panel="Continue a lake, change the world",
        ),
    ] = 20,
) -> None:
    """Simulate card transactions with fraud scenarios into the lake.

    --preset handbook reproduces the handbook's published 1,754,155-transaction dataset row
    for row; without a preset the fast vectorised generator runs at any scale, streaming day
    by day (50M transactions fit in a few hundred MB). --continue appends days of the same
    handbook world to a lake, optionally changing the world from --drift-from (an amount
    shift, a new fraud pattern): a drift to watch, or without a change, a control.
    """
    scale = {"--customers": customers, "--terminals": terminals, "--seed": seed}
    if not continue_:  # when continuing, --days counts the appended days
        scale["--days"] = days
    if preset is not None and any(v is not None for v in scale.values()):
        given = [k for k, v in scale.items() if v is not None]
        raise typer.BadParameter(f"--preset {preset.value} fixes the population; drop {given}")
    change = _world_change(drift_from, amount_factor, new_pattern, pattern_cards)
    if continue_:
        _continue(out, customers, terminals, days or 28, seed or 0, start_date, change)
        return
    if change is not None or drift_from is not None:
        raise typer.BadParameter("--drift-from, --amount-factor and --new-pattern need --continue")
    from fraudrisk.data.fast import FastConfig  # heavy: numpy, pyarrow, pandas
    from fraudrisk.data.handbook import HandbookConfig
    from fraudrisk.data.simulate import fast_days, handbook_days, write_days

    lake = open_lake(out)
    start = _parse_date(start_date or "2018-04-01")
    began = time.perf_counter()
    with progress_bar() as bar:
        if preset is Preset.handbook:
            config = HandbookConfig(start_date=start)
            gen = bar.add_task("customers", total=config.n_customers)
            tables = handbook_days(config, lambda n: bar.advance(gen, n))
            n_days = config.nb_days
        else:
            fast = FastConfig(
                customers or 5_000, terminals or 10_000, days or 183, start, seed=seed or 0
            )
            tables, n_days = fast_days(fast), fast.nb_days
        lake.init(start)
        write = bar.add_task("days written", total=n_days)
        result = write_days(lake, tables, lambda _n: bar.advance(write))
    _print_write(result, lake, time.perf_counter() - began)


def _world_change(
    drift_from: str | None,
    amount_factor: float,
    new_pattern: NewPatternOption | None,
    pattern_cards: int,
) -> DriftConfig | None:
    """The --drift-from options as a DriftConfig (None when the world does not change)."""
    changes = amount_factor != 1.0 or new_pattern is not None
    if drift_from is None:
        if changes:
            raise typer.BadParameter("--amount-factor and --new-pattern need --drift-from DATE")
        return None
    if not changes:
        raise typer.BadParameter("--drift-from needs a change: --amount-factor or --new-pattern")
    from fraudrisk.data.world_changes import DriftConfig, NewPattern  # heavy: pandas

    pattern = NewPattern(new_pattern.value) if new_pattern is not None else None
    return DriftConfig(_parse_date(drift_from), amount_factor, pattern, pattern_cards)


def _continue(
    out: str | None,
    customers: int | None,
    terminals: int | None,
    n_days: int,
    seed: int,
    start_date: str | None,
    change: DriftConfig | None,
) -> None:
    """Append ``n_days`` of the lake's handbook world, changed from ``change.start`` if given."""
    from fraudrisk.data.handbook import HandbookConfig  # heavy: numpy, pyarrow, pandas
    from fraudrisk.data.world_changes import continue_lake

    lake = open_lake(out)
    config = HandbookConfig(n_customers=customers or 5_000, n_terminals=terminals or 10_000)
    first = _parse_date(start_date) if start_date else None
    if change is not None:
        console.print(f"the world changes {change.describe()}")
    began = time.perf_counter()
    with progress_bar() as bar:
        write = bar.add_task("days appended", total=n_days)
        try:
            result = continue_lake(
                lake, config, n_days, change, first, seed, lambda _n: bar.advance(write)
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    _print_write(result, lake, time.perf_counter() - began)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {text!r}") from None


def _print_write(result: WriteResult, lake: Lake, seconds: float) -> None:
    rate = result.rows / seconds if seconds else 0.0
    console.print(
        f"wrote [bold]{result.rows:,}[/bold] transactions ({result.frauds:,} frauds) "
        f"in {result.days} day partitions to {lake.storage.uri} — {seconds:.1f} s, {rate:,.0f} tx/s"
    )
