"""Steps 1-5 of ``make demo``: simulate, summarise, build features, serve them online, train."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow.compute as pc

from fraudrisk.config import Settings
from fraudrisk.console import console, progress_bar
from fraudrisk.data.handbook import HandbookConfig
from fraudrisk.data.simulate import handbook_days, write_days
from fraudrisk.data.summary import inspect_lake, plot_daily, print_report
from fraudrisk.features import feast_store
from fraudrisk.features.batch import build_features
from fraudrisk.features.spark import get_spark
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.lake import Lake
from fraudrisk.vocab import CHAMPION_ALIAS

DEMO_CUSTOMER = 42
#: Optuna trials of the demo's training run: the recorded recipe first, then TPE's proposals.
DEMO_TRIALS = 3
#: Tuning time budget of the demo (no trial starts after it; the running one finishes).
DEMO_TUNING_TIMEOUT_S = 90.0


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


def build_feature_table(settings: Settings, table_uri: str, title: str | None = None) -> None:
    """Step 3 (and step 9 again): the Spark batch feature job over the lake.

    Args:
        settings: Platform settings.
        table_uri: The feature table to write.
        title: A heading printed instead of step 3's rule, or None.
    """
    if title is None:
        console.rule("[bold]3. build the features with Spark (local[*])")
    else:
        console.print(title)
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


def train_model(settings: Settings, table_uri: str) -> bool:
    """Step 5: the training pipeline under kfp.local; print what it registered."""
    # deferred: pulls mlflow, kfp, optuna (≈2 s)
    from fraudrisk.training.launch import launch_training, training_config

    console.rule("[bold]5. train: the Kubeflow training pipeline under kfp.local")
    config = training_config(
        table_uri=table_uri,
        lake_uri=settings.lake_uri,
        n_trials=DEMO_TRIALS,
        timeout_s=DEMO_TUNING_TIMEOUT_S,
        bootstrap=True,
    )
    console.print(
        f"tune ≤ {DEMO_TRIALS} trials / {DEMO_TUNING_TIMEOUT_S:.0f} s → train → calibrate → "
        "evaluate (4 test folds) → gate → register"
    )
    run = launch_training(config, settings=settings)
    console.print(f"pipeline finished in {run.seconds:.0f} s; task outputs: {run.outputs}")
    console.print(f"task log: {run.task_log}")
    if run.version is None:
        console.print("[red]the validation gate rejected the model: nothing registered")
        return False
    print_registered(settings, run.version)
    return True


def print_registered(settings: Settings, version: str) -> None:
    """The version's aliases, test metrics beside the book's best, and its plots on disk."""
    from fraudrisk.training import results  # deferred: pulls mlflow, kfp, optuna (≈2 s)

    names = results.aliases(settings, version)
    console.print(f"registered {settings.mlflow.model_name} version {version}, aliases: {names}")
    table = results.version_metrics(settings, version)
    line = ", ".join(
        f"{metric} {row['test folds (mean)']:.3f} (book {row['book best']:.3f})"
        for metric, row in table.iterrows()
    )
    console.print(f"test folds (mean): {line}")
    dest = settings.home / "reports" / f"{settings.mlflow.model_name}-v{version}"
    plots = results.download_plots(settings, version, dest)
    console.print(f"plots: {', '.join(str(path) for path in plots.values())}")
    console.print(
        f"try: fraudrisk evaluate --model models:/{settings.mlflow.model_name}@{CHAMPION_ALIAS} "
        f"--lake {settings.lake_uri} --protocol handbook --json"
    )
