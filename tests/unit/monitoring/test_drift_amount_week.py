"""Issue 14 item 7 on a small lake: every amount of one week raised by 40 %.

A simulated world of 200 customers over 70 days (from 2018-04-01); the champion is trained on
days 40..57 and its reference drawn from them. Days 58..64 are an unchanged week. The same
week is simulated again with every lake amount × 1.4 — the features computed from the changed
lake, as the batch job would — and written 17 days later (days 75..81, new ids), so the two
windows differ in their amounts only. The amount features drift (5 of 19: under the 30 %
column share) and they carry about a quarter of the champion's decisions: the weighted verdict
fires, the column verdict does not.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.unit.monitoring.monitored import day, register, train_model, write_table
from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.config import MlflowSettings, MonitoringSettings, Settings, get_settings
from fraudrisk.data.fast import FastConfig
from fraudrisk.data.simulate import fast_days
from fraudrisk.features.table import features_of
from fraudrisk.monitoring.drift import drift_report
from fraudrisk.monitoring.results import DriftResult
from fraudrisk.registry.versions import bootstrap_champion
from fraudrisk.training.dataset import join_labels

CHAMPION = "models:/fraud-risk@champion"
CUSTOMERS, DAYS = 200, 70
TRAIN_DAYS, WEEK = (40, 57), (58, 64)
AMOUNT_FACTOR = 1.4
OFFSET = 17  # the changed week is written on days 75..81
AMOUNT_FEATURES = {
    "tx_amount",
    "customer_id_avg_amount_1day_window",
    "customer_id_avg_amount_7day_window",
    "customer_id_amount_ratio_30day_window",
}
UNCHANGED = (day(WEEK[0]), day(WEEK[1]))
RAISED = (day(WEEK[0] + OFFSET), day(WEEK[1] + OFFSET))


@dataclass
class AmountWorld:
    settings: Settings


def frame_of(lake: pa.Table) -> pd.DataFrame:
    """The lake's rows with their features and labels."""
    columns, _, _ = features_of(lake)
    labels = lake.select(["transaction_id", "tx_time_days", "tx_fraud", "tx_fraud_scenario"])
    return join_labels(pd.DataFrame(columns), labels.to_pandas())


def with_amounts_raised(lake: pa.Table, first: int, last: int, factor: float) -> pa.Table:
    """The lake with every amount of days ``first..last`` multiplied by ``factor``."""
    days = lake["tx_time_days"]
    week = pc.and_(pc.greater_equal(days, first), pc.less_equal(days, last))
    amounts = pc.if_else(week, pc.multiply(lake["tx_amount"], factor), lake["tx_amount"])
    return lake.set_column(lake.schema.get_field_index("tx_amount"), "tx_amount", amounts)


def week_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["tx_time_days"].between(*WEEK)]


def moved(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows ``OFFSET`` days later with new ids (their feature values unchanged)."""
    later = rows.copy()
    later["transaction_id"] += 10_000_000
    later["tx_datetime"] += pd.Timedelta(days=OFFSET)
    later["tx_time_days"] += OFFSET
    return later


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AmountWorld:
    home: Path = tmp_path_factory.mktemp("amount-week-home")
    settings = Settings(
        home=home, mlflow=MlflowSettings(), monitoring=MonitoringSettings(reference_rows=1500)
    )
    config = FastConfig(n_customers=CUSTOMERS, n_terminals=2 * CUSTOMERS, nb_days=DAYS)
    lake = pa.concat_tables([table for _, table in fast_days(config)])
    frame = frame_of(lake)
    raised = week_of(frame_of(with_amounts_raised(lake, *WEEK, AMOUNT_FACTOR)))
    write_table(str(home / "features"), pd.concat([frame, moved(raised)]))
    train = frame[frame["tx_time_days"].between(*TRAIN_DAYS)]
    version = register(settings, train_model(train), train, with_reference=True)
    bootstrap_champion(settings, version.version)
    return AmountWorld(settings)


def report(settings: Settings, window: tuple[dt.date, dt.date], **options: object) -> DriftResult:
    changed = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update=options)}
    )
    return drift_report(changed, CHAMPION, "lake", *window, workspace=False)


@pytest.fixture(scope="module")
def raised_week(world: AmountWorld) -> DriftResult:
    return report(world.settings, RAISED)


def test_the_raised_week_is_drift_by_weight_not_by_columns(
    world: AmountWorld, raised_week: DriftResult
) -> None:
    options = world.settings.monitoring
    assert set(raised_week.drifted_features) >= AMOUNT_FEATURES
    assert raised_week.drift_share < options.drift_share  # the verdict: columns say no
    assert raised_week.weighted_drift_share is not None
    assert raised_week.weighted_drift_share >= options.weighted_drift_share
    assert raised_week.verdicts == {"columns": False, "weighted": True}
    assert raised_week.drift_verdict == "weighted" and raised_week.drift_detected
    assert raised_week.triggered
    weights = raised_week.feature_weights
    assert raised_week.weighted_drift_share == pytest.approx(
        sum(weights[name] for name in raised_week.drifted_features)
    )


def test_the_columns_setting_gives_the_column_verdict_of_before(
    world: AmountWorld, raised_week: DriftResult
) -> None:
    elsewhere = str(world.settings.home / "columns-reports")  # keep the default's reports
    columns = report(world.settings, RAISED, drift_verdict="columns", reports_dir=elsewhere)
    assert columns.drift_verdict == "columns"
    assert columns.drift_detected is (columns.drift_share >= world.settings.monitoring.drift_share)
    assert not columns.drift_detected and not columns.triggered
    assert columns.drifted_features == raised_week.drifted_features
    assert columns.weighted_drift_share == pytest.approx(raised_week.weighted_drift_share)


def test_the_unchanged_week_is_no_drift_by_either_verdict(
    world: AmountWorld, raised_week: DriftResult
) -> None:
    unchanged = report(world.settings, UNCHANGED)
    assert unchanged.weighted_drift_share is not None
    assert unchanged.weighted_drift_share < world.settings.monitoring.weighted_drift_share / 4
    assert unchanged.verdicts == {"columns": False, "weighted": False}
    assert not unchanged.drift_detected and not unchanged.triggered
    assert unchanged.feature_weights == pytest.approx(raised_week.feature_weights)


def test_the_reports_show_the_weight_table(raised_week: DriftResult) -> None:
    table = json.loads(Path(raised_week.report_json).read_text())["importance"]["table"]
    assert [row["feature"] for row in table] == [
        row["feature"] for row in raised_week.weight_table()
    ]
    weights = [row["weight"] for row in table]
    assert weights == sorted(weights, reverse=True) and sum(weights) == pytest.approx(1.0)
    assert {row["feature"] for row in table if row["drifted"]} == set(raised_week.drifted_features)
    html = Path(raised_week.report).read_text()
    assert "weighted: <b>drift</b> <b>(decides)</b>" in html
    assert "columns: <b>no drift</b>" in html
    assert "<td>tx_amount</td>" in html


@pytest.fixture
def cli_home(world: AmountWorld) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("FRAUDRISK_HOME", str(world.settings.home))
    patch.setenv("FRAUDRISK_MONITORING__REFERENCE_ROWS", "1500")
    get_settings.cache_clear()
    yield
    patch.undo()
    get_settings.cache_clear()


def cli_drift(*extra: str) -> list[str]:
    dates = ["--start", str(RAISED[0]), "--end", str(RAISED[1])]
    return ["monitor", "drift", "--model", CHAMPION, *dates, "--no-workspace", *extra]


def test_cli_json_holds_the_weighted_verdict_and_the_weight_table(cli_home: None) -> None:
    outcome = CliRunner().invoke(app, cli_drift("--json"))
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.stdout)
    assert printed["drift_detected"] is True and printed["drift_verdict"] == "weighted"
    assert printed["verdicts"] == {"columns": False, "weighted": True}
    assert {row["feature"] for row in printed["weight_table"]} == set(printed["feature_weights"])


def test_cli_table_shows_both_verdicts_and_the_weights(cli_home: None) -> None:
    outcome = CliRunner().invoke(app, cli_drift(), env={"COLUMNS": "200"})
    assert outcome.exit_code == 0, outcome.output
    out = outcome.stdout
    defaults = MonitoringSettings()
    assert "drift (weighted verdict)" in out
    assert f"importance drifted (threshold {defaults.weighted_drift_share:.0%})" in out
    assert "no drift: " in out and f"features drifted (threshold {defaults.drift_share:.0%})" in out
    assert "Features by their weight" in out and "tx_amount" in out and "drifted" in out


def test_cli_columns_setting_answers_as_before(cli_home: None, tmp_path: Path) -> None:
    env = {
        "FRAUDRISK_MONITORING__DRIFT_VERDICT": "columns",
        "FRAUDRISK_MONITORING__REPORTS_DIR": str(tmp_path),  # keep the default's reports
    }
    outcome = CliRunner().invoke(app, cli_drift("--json"), env=env)
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.stdout)
    assert printed["drift_detected"] is False and printed["drift_verdict"] == "columns"
