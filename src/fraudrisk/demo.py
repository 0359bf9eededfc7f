"""``make demo``: the main job end to end on embedded defaults."""

from __future__ import annotations

from fraudrisk.config import get_settings
from fraudrisk.console import console, progress_bar
from fraudrisk.data.cli import print_report
from fraudrisk.data.handbook import HandbookConfig
from fraudrisk.data.simulate import handbook_days, write_days
from fraudrisk.data.summary import inspect_lake, plot_daily
from fraudrisk.io.lake import Lake


def run_demo() -> int:
    """Simulate the handbook dataset, validate the lake, summarise it; returns an exit code."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    lake = Lake.open(settings.lake_uri, settings.lake)
    config = HandbookConfig()
    console.rule("[bold]1. simulate the handbook dataset into the lake")
    with progress_bar() as bar:
        customers = bar.add_task("customers", total=config.n_customers)
        lake.init(config.start_date)
        written = bar.add_task("days written", total=config.nb_days)
        result = write_days(
            lake,
            handbook_days(config, lambda n: bar.advance(customers, n)),
            lambda _n: bar.advance(written),
        )
    console.print(f"lake: {lake.storage.uri} ({result.rows:,} transactions, {result.days} days)")
    console.rule("[bold]2. validate and summarise the lake")
    report = inspect_lake(lake)
    print_report(report)
    plot = plot_daily(report, settings.home / "reports" / "daily_transactions.png")
    console.print(f"plot: {plot}")
    return 0 if report.ok else 1
