"""``make demo``: the main job end to end on embedded defaults (all state under FRAUDRISK_HOME).

1. simulate the handbook dataset into the lake; 2. validate and summarise it (plot);
3. build the features with Spark; 4. register the Feast repo, materialise the online store and
check an online lookup against the batch feature table.
"""

from __future__ import annotations

import datetime as dt
import time

import pyarrow.compute as pc

from fraudrisk.config import Settings, get_settings
from fraudrisk.console import console, progress_bar
from fraudrisk.data.cli import print_report
from fraudrisk.data.handbook import HandbookConfig
from fraudrisk.data.simulate import handbook_days, write_days
from fraudrisk.data.summary import inspect_lake, plot_daily
from fraudrisk.io.lake import Lake

DEMO_CUSTOMER = 42


def run_demo() -> int:
    """Run every stage of the demo; returns an exit code."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    lake = Lake.open(settings.lake_uri, settings.lake)
    simulate_lake(lake)
    if not summarise_lake(lake, settings):
        return 1
    table_uri = str(settings.home / "features")
    build_feature_table(settings, table_uri)
    return 0 if serve_online_features(settings, table_uri) else 1


def simulate_lake(lake: Lake) -> None:
    """Step 1: the handbook dataset, row for row, into the lake."""
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


def summarise_lake(lake: Lake, settings: Settings) -> bool:
    """Step 2: validate every partition, print the summary, plot the daily volume."""
    console.rule("[bold]2. validate and summarise the lake")
    report = inspect_lake(lake)
    print_report(report)
    plot = plot_daily(report, settings.home / "reports" / "daily_transactions.png")
    console.print(f"plot: {plot}")
    return report.ok


def build_feature_table(settings: Settings, table_uri: str) -> None:
    """Step 3: the Spark batch feature job over the lake."""
    from fraudrisk.features.batch import build_features
    from fraudrisk.features.spark import get_spark

    console.rule("[bold]3. build the features with Spark (local[*])")
    began = time.perf_counter()
    with console.status("starting Spark and building features"):
        spark = get_spark(app_name="fraudrisk-demo")
        result = build_features(spark, settings.lake_uri, table_uri, settings.lake)
    console.print(
        f"feature table: {table_uri} — {result.rows:,} rows × 19 features, {result.days} days, "
        f"entity state for {result.customers:,} customers / {result.terminals:,} terminals, "
        f"{time.perf_counter() - began:.1f} s (Spark start-up included)"
    )


def serve_online_features(settings: Settings, table_uri: str) -> bool:
    """Step 4: Feast apply + materialise, then an online lookup checked against the batch row."""
    from fraudrisk.features import feast_store
    from fraudrisk.features.table import FeatureTable

    console.rule("[bold]4. Feast: apply the repo, materialise the online store, look up")
    applied = feast_store.apply(settings, table_uri)
    console.print(f"applied {len(applied)} Feast objects to {settings.feast_repo_path}")
    with console.status("materialising the online store"):
        began = time.perf_counter()
        feast_store.materialize(
            settings, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC)
        )
    console.print(f"materialised in {time.perf_counter() - began:.1f} s")
    online = feast_store.online_features(settings, [DEMO_CUSTOMER], None)["customer"][0]
    batch = FeatureTable.open(table_uri).read()
    rows = batch.filter(pc.equal(batch["customer_id"], DEMO_CUSTOMER))
    latest = rows.slice(rows.num_rows - 1).to_pylist()[0]
    names = [n for n in online if n in latest and n != "customer_id"]
    same = all(abs(float(online[n]) - float(latest[n])) < 1e-9 for n in names)
    console.print(
        f"customer {DEMO_CUSTOMER}: online values of its {len(names)} features "
        + ("[green]equal[/green]" if same else "[red]differ from[/red]")
        + f" its latest batch row (transaction {latest['transaction_id']}); its state holds "
        f"{len(online.get('event_ids') or [])} events of the last 30 days"
    )
    console.print("try: fraudrisk features lookup --customer 42 --terminal 7")
    return same
