"""``make demo`` step 10: the world changes; drift is detected, retraining fires once.

Six weeks of the same handbook world are appended to the lake, changed from
:data:`CHANGE_DAY` on (amounts × :data:`AMOUNT_FACTOR` and a card-testing fraud pattern the
champion never saw); Spark rebuilds the feature table. The watcher then checks the champion on
three days, as it would every night: the last undrifted day (no trigger: the false-alarm
control), the third changed day (Evidently finds drift, the trigger launches the training
pipeline under kfp.local, which registers a challenger through the gates) and the day after
(the same cause inside its cool-down: suppressed). Finally the champion and the new challenger
are scored side by side on the last two changed weeks, which the challenger never trained on.

The demo compresses time: the whole changed period is simulated before the watcher runs, so
the retraining run trains on the lake as it is then (its last labelled weeks are changed ones),
as a run started a few weeks into the change would.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.table import Table

from fraudrisk.config import Settings
from fraudrisk.console import console, progress_bar
from fraudrisk.data.handbook import HandbookConfig
from fraudrisk.data.world_changes import DriftConfig, NewPattern, continue_lake, lake_end
from fraudrisk.demo.steps import build_feature_table
from fraudrisk.io.lake import Lake
from fraudrisk.monitoring.checks import WatchOptions
from fraudrisk.monitoring.ledger import Decision, TriggerLedger
from fraudrisk.monitoring.prometheus import MonitoringMetrics
from fraudrisk.monitoring.results import PerformanceResult
from fraudrisk.monitoring.trigger import RetrainingTrigger, TriggerOptions
from fraudrisk.monitoring.watch import Watcher, print_round

#: First day of the changed world (the day after the handbook dataset's last).
CHANGE_DAY = dt.date(2018, 10, 1)
#: Days appended: six weeks, so that two changed weeks follow the retrained model's window.
CHANGED_DAYS = 42
#: Amount shift of the changed world.
AMOUNT_FACTOR = 2.0
#: Days of each drift window the watcher checks.
WINDOW_DAYS = 3
#: The days the watcher checks, with what each round shows.
WATCH_DAYS = (
    (CHANGE_DAY - dt.timedelta(days=1), "the last day before the change: no trigger expected"),
    (CHANGE_DAY + dt.timedelta(days=2), "three changed days: drift, retraining fires"),
    (CHANGE_DAY + dt.timedelta(days=3), "the next night, same cause: inside its cool-down"),
)
#: Retraining budget of the demo: the recorded recipe, one trial.
RETRAIN_TRIALS = 1
RETRAIN_TIMEOUT_S = 30.0
#: Weeks both models are compared on: after the retrained model's training window and hold-out.
COMPARE_DAYS = 14


def run_drift_scenario(settings: Settings, table_uri: str) -> bool:
    """Change the world, rebuild the features, watch, retrain once, compare; True when done."""
    console.rule("[bold]10. a changing world: drift detected, retraining triggered once")
    lake = Lake.open(settings.lake_uri, settings.lake)
    if not _continue_world(lake):
        return False
    build_feature_table(settings, table_uri, "the feature table again, over the longer lake:")
    champion = settings.serving.model_uri
    decisions = _watch(settings, champion)
    fired = [d for d in decisions if d.cause.kind == "drift" and d.outcome == "fired"]
    if len(fired) != 1 or fired[0].registered_version is None:
        console.print(f"[red]expected one retraining with a new version, got {decisions}")
        return False
    console.print(
        f"retraining triggered once (cause {fired[0].cause}); report: {fired[0].report}\n"
        f"new challenger: {settings.mlflow.model_name} version {fired[0].registered_version}"
    )
    _print_gate(settings, fired[0].registered_version)
    _compare(settings, champion, fired[0].registered_version, table_uri)
    console.print("browse the reports: fraudrisk monitor ui")
    return True


def _continue_world(lake: Lake) -> bool:
    """Append the changed weeks (once: a lake already continued is kept as it is)."""
    last = lake_end(lake).last_day
    change = DriftConfig(CHANGE_DAY, AMOUNT_FACTOR, NewPattern.card_testing)
    if last >= CHANGE_DAY:
        console.print(f"the lake already runs to {last}: keeping its changed weeks")
        return True
    if last != CHANGE_DAY - dt.timedelta(days=1):
        console.print(f"[red]the lake ends on {last}, not on the day before {CHANGE_DAY}")
        return False
    with progress_bar() as bar:
        task = bar.add_task("changed days", total=CHANGED_DAYS)
        result = continue_lake(
            lake, HandbookConfig(), CHANGED_DAYS, change, on_day=lambda _n: bar.advance(task)
        )
    console.print(
        f"appended {result.rows:,} transactions over {CHANGED_DAYS} days, changed "
        f"{change.describe()}"
    )
    return True


def _watch(settings: Settings, model_uri: str) -> list[Decision]:
    """The watcher's rounds on :data:`WATCH_DAYS`; the decisions of every round."""
    options = TriggerOptions.from_settings(settings, training_config=_retraining_config(settings))
    ledger, metrics = TriggerLedger(settings.db_url), MonitoringMetrics()
    decisions: list[Decision] = []
    try:
        trigger = RetrainingTrigger(settings, ledger, options, metrics=metrics)
        for day, meaning in WATCH_DAYS:
            console.print(f"[bold]watcher, night of {day}[/bold] — {meaning}")
            watch = WatchOptions(model_uri, "lake", WINDOW_DAYS, end=day)
            with console.status("drift and labelled-performance checks (and any retraining)"):
                found = Watcher(settings, watch, trigger, metrics).check_once()
            print_round(found)
            decisions += found.decisions
    finally:
        ledger.close()
    return decisions


def _retraining_config(settings: Settings) -> Path:
    """The training run configuration the trigger submits: the demo's small tuning budget."""
    # deferred: pulls mlflow, kfp, optuna (≈2 s)
    from fraudrisk.training.launch import training_config

    config: Any = training_config(n_trials=RETRAIN_TRIALS, timeout_s=RETRAIN_TIMEOUT_S)
    path = settings.home / "monitoring" / "retraining.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def _print_gate(settings: Settings, version: str) -> None:
    """What the gate compared the new version with, as recorded on the version."""
    from fraudrisk.registry.mlflow_io import mlflow_client  # deferred: pulls mlflow (≈1 s)
    from fraudrisk.registry.versions import GATE_TAG
    from fraudrisk.training.gate import GateResult

    found = mlflow_client(settings).get_model_version(settings.mlflow.model_name, version)
    try:
        verdict = GateResult.model_validate_json(found.tags.get(GATE_TAG, ""))
    except ValidationError:
        console.print(f"[yellow]version {version} records no readable gate result")
        return
    console.print(f"gate: {'passed' if verdict.passed else 'rejected'}, {verdict.comparison}")
    compared = verdict.head_to_head
    if compared is not None:
        name = "average_precision"
        console.print(
            f"  hold-out AP: challenger {compared.candidate[name]:.3f}, "
            f"champion {compared.champion[name]:.3f}"
        )


def _compare(settings: Settings, champion: str, version: str, table_uri: str) -> None:
    """Both models, labelled, on the last :data:`COMPARE_DAYS` changed days."""
    # deferred: pulls sklearn, scipy (≈0.6 s)
    from fraudrisk.monitoring.performance import labelled_performance

    last = CHANGE_DAY + dt.timedelta(days=CHANGED_DAYS - 1)
    start, as_of = last - dt.timedelta(days=COMPARE_DAYS - 1), last + dt.timedelta(days=7)
    models = {
        "champion": champion,
        f"challenger v{version}": f"models:/{settings.mlflow.model_name}/{version}",
    }
    table = Table(title=f"on the changed weeks {start} → {last} (labels from the lake)")
    for column in ("model", "version", "AP", "CP@100 (mean/day)", "recall@100 (mean/day)"):
        table.add_column(column)
    for name, uri in models.items():
        result = labelled_performance(settings, uri, start, last, as_of, "lake", "lake", table_uri)
        table.add_row(
            name,
            result.model_version,
            _fmt(result.average_precision),
            *(_fmt(v) for v in _daily_means(result)),
        )
    console.print(table)


def _daily_means(result: PerformanceResult) -> tuple[float | None, float | None]:
    def mean(values: list[Any]) -> float | None:
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None

    return (
        mean([d.card_precision_at_k for d in result.days]),
        mean([d.recall_at_budget for d in result.days]),
    )


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
