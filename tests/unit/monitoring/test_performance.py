"""Delayed-label performance: per-day metrics, the label delay, variants, the drop, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.metrics import average_precision_score
from tests.unit.monitoring.perf_fixtures import (
    BUDGET,
    EXPECTED_AP,
    PerfWorld,
    day,
    good_scores,
    perf_world,
    random_scores,
    write_scores,
)
from typer.testing import CliRunner

from fraudrisk.cli import monitor_performance
from fraudrisk.config import DatabaseSettings, get_settings
from fraudrisk.data.labels import LabelMessage, LabelsTable
from fraudrisk.io.lake import Lake
from fraudrisk.monitoring.performance import day_performance, labelled_performance
from fraudrisk.scoring.model import ModelLoadError, load_model
from fraudrisk.training.metrics import expected_calibration_error, reliability_bins

D1, D2 = dt.date(2018, 10, 1), dt.date(2018, 10, 2)
CHAMPION = "models:/fraud-risk@champion"


def hand_frame() -> pd.DataFrame:
    """Two days of one variant; card 1 is caught on day 1, so it leaves day 2's ranking."""
    rows = [  # day, customer (card), score, fraud
        (D1, 1, 0.9, 1),
        (D1, 2, 0.8, 0),
        (D1, 3, 0.7, 1),
        (D1, 4, 0.1, 0),
        (D1, 1, 0.2, 1),
        (D2, 1, 0.95, 1),
        (D2, 5, 0.6, 0),
        (D2, 6, 0.5, 0),
        (D2, 3, 0.3, 1),
    ]
    frame = pd.DataFrame(rows, columns=["day", "customer_id", "risk_score", "tx_fraud"])
    return frame.assign(variant="champion", model_version="4")


def test_day_metrics_equal_a_hand_computation():
    first, second = day_performance(hand_frame(), budget=2)
    # Day 1 ranked: 0.9 F, 0.8 G, 0.7 F, 0.2 F, 0.1 G -> AP = (1/1 + 2/3 + 3/4) / 3.
    assert first.day == D1 and (first.transactions, first.frauds) == (5, 3)
    assert first.average_precision == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # Cards: 1 (0.9, F), 2 (0.8), 3 (0.7, F), 4 (0.1): the top 2 hold one of the 2 fraudulent.
    assert first.card_precision_at_k == 0.5 and first.recall_at_budget == 0.5
    # Day 2 ranked: 0.95 F, 0.6 G, 0.5 G, 0.3 F -> AP = (1/1 + 2/4) / 2; card 1 was caught:
    # the top 2 of cards 5, 6, 3 are both genuine, card 3 is missed.
    assert second.average_precision == pytest.approx((1 + 2 / 4) / 2)
    assert second.card_precision_at_k == 0.0 and second.recall_at_budget == 0.0
    assert (second.variant, second.model_version) == ("champion", "4")


def test_a_day_without_fraud_has_no_ap_nor_recall():
    genuine = hand_frame().assign(tx_fraud=0)
    for result in day_performance(genuine, budget=2):
        assert result.average_precision is None and result.recall_at_budget is None
        assert result.card_precision_at_k == 0.0 and result.frauds == 0


def test_variants_are_computed_apart():
    champion = hand_frame()
    canary = hand_frame().assign(
        variant="canary", model_version="5", risk_score=lambda f: -f.risk_score
    )
    results = day_performance(pd.concat([champion, canary]), budget=2)
    assert [(r.day, r.variant) for r in results] == [
        (D1, "canary"),
        (D1, "champion"),
        (D2, "canary"),
        (D2, "champion"),
    ]
    alone = day_performance(champion, budget=2)
    assert [r for r in results if r.variant == "champion"] == alone
    reversed_day1 = average_precision_score([1, 0, 1, 0, 1], [-0.9, -0.8, -0.7, -0.1, -0.2])
    assert results[0].average_precision == pytest.approx(reversed_day1)


@pytest.fixture(scope="module")
def world(monitored, tmp_path_factory: pytest.TempPathFactory) -> PerfWorld:
    """The monitoring package's champion (version 1, days 40..57) and a lake of its labels."""
    return perf_world(monitored, tmp_path_factory.mktemp("perf"))


def settings_with_store(world: PerfWorld, path) -> object:
    """The world's settings over a fresh alert store."""
    return world.settings.model_copy(update={"db": DatabaseSettings(url=f"sqlite:///{path}")})


def test_only_labelled_days_count_and_the_end_is_clipped(world, tmp_path):
    settings = settings_with_store(world, tmp_path / "a.db")
    rows = world.days(58, 65)
    write_scores(settings, rows, good_scores(rows), version=world.version)
    result = labelled_performance(settings, CHAMPION, day(58), day(65), as_of=day(68))
    assert result.end == day(61)  # 68 - 7 days of label delay
    assert sorted({d.day for d in result.days}) == [day(i) for i in range(58, 62)]
    assert sum(d.transactions for d in result.days) == len(world.days(58, 61))
    early = labelled_performance(settings, CHAMPION, day(58), day(65), as_of=day(64))
    assert early.days == [] and early.average_precision is None
    assert not early.drop_detected and not early.triggered


def test_scores_per_variant_and_version_and_rules_apart(world, tmp_path):
    settings = settings_with_store(world, tmp_path / "b.db")
    rows = world.days(58, 60)
    canary = rows["customer_id"] % 4 == 0
    fallback = rows["customer_id"] % 4 == 1
    served = rows[~canary & ~fallback]
    write_scores(settings, served, good_scores(served), version=world.version)
    write_scores(settings, rows[canary], random_scores(rows[canary]), "canary", "99")
    write_scores(
        settings,
        rows[fallback],
        random_scores(rows[fallback]),
        fallback=True,
        version=world.version,
    )
    result = labelled_performance(settings, CHAMPION, day(58), day(60), as_of=day(68))
    groups = {(d.variant, d.model_version) for d in result.days}
    assert groups == {("champion", world.version), ("canary", "99"), ("champion", "rules")}
    canary_rows = rows[canary].assign(score=random_scores(rows[canary]))
    for entry in (d for d in result.days if d.variant == "canary"):
        mine = canary_rows[canary_rows["tx_time_days"] == (entry.day - day(0)).days]
        assert entry.transactions == len(mine) and entry.frauds == mine["tx_fraud"].sum()
        if entry.frauds:
            expected = average_precision_score(mine["tx_fraud"], mine["score"])
            assert entry.average_precision == pytest.approx(expected)
    labels = served["tx_fraud"]
    assert result.average_precision == pytest.approx(
        average_precision_score(labels, good_scores(served))
    )


def test_a_drop_is_detected_when_scores_degrade_and_not_when_they_are_good(world, tmp_path):
    rows = world.days(58, 61)
    good = settings_with_store(world, tmp_path / "good.db")
    write_scores(good, rows, good_scores(rows), version=world.version)
    fine = labelled_performance(good, CHAMPION, day(58), day(61), as_of=day(68))
    assert fine.expected_average_precision == pytest.approx(EXPECTED_AP)
    assert fine.average_precision == pytest.approx(1.0) and fine.drop < 0
    assert not fine.drop_detected and not fine.triggered
    bad = settings_with_store(world, tmp_path / "bad.db")
    write_scores(bad, rows, random_scores(rows), version=world.version)
    worse = labelled_performance(bad, CHAMPION, day(58), day(61), as_of=day(68))
    assert worse.average_precision < 0.3 and worse.drop > 0.5
    assert worse.drop_detected and worse.triggered


def test_lake_source_scores_the_feature_table_with_the_model(world):
    result = labelled_performance(
        world.settings,
        CHAMPION,
        day(58),
        day(67),
        as_of=day(67),
        source="lake",
        table_uri=world.table_uri,
    )
    assert result.end == day(60) and {d.variant for d in result.days} == {"champion"}
    model = load_model(world.settings, CHAMPION)
    for entry in result.days:
        rows = world.days(*(2 * [(entry.day - day(0)).days]))
        scores = model.probability(rows[list(model.feature_names)].to_numpy(np.float32))
        assert entry.transactions == len(rows) and entry.frauds == rows["tx_fraud"].sum()
        if entry.frauds:
            assert entry.average_precision == pytest.approx(
                average_precision_score(rows["tx_fraud"], scores)
            )


def test_an_unknown_model_is_a_clear_error(world):
    with pytest.raises(ModelLoadError, match="cannot resolve models:/fraud-risk@nobody"):
        labelled_performance(world.settings, "models:/fraud-risk@nobody", day(58), day(60), day(68))
    with pytest.raises(ValueError, match="source must be scores or lake"):
        labelled_performance(world.settings, CHAMPION, day(58), day(60), day(68), source="bucket")
    with pytest.raises(ValueError, match="after end"):
        labelled_performance(world.settings, CHAMPION, day(60), day(58), day(68))


@pytest.fixture()
def cli(world, tmp_path, monkeypatch) -> typer.Typer:
    """A monitor app holding only the performance command, over the world's settings."""
    settings = settings_with_store(world, tmp_path / "cli.db")
    rows = world.days(58, 61)
    write_scores(settings, rows, good_scores(rows), version=world.version)
    environment = {
        "HOME": str(settings.home),
        "LAKE__URI": settings.lake.uri,
        "DB__URL": settings.db.url,
        "MONITORING__ALERT_BUDGET": str(BUDGET),
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"FRAUDRISK_{name}", value)
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is called by its name
    app.add_typer(monitor_performance.app)
    yield app
    get_settings.cache_clear()


def test_cli_prints_a_table_per_day_and_variant(cli):
    args = [
        "performance",
        "--model",
        CHAMPION,
        "--start",
        str(day(58)),
        "--end",
        str(day(64)),
        "--as-of",
        str(day(68)),
    ]
    result = CliRunner().invoke(cli, args, terminal_width=150)
    assert result.exit_code == 0, result.output
    assert f"labels known through {day(61)} (window clipped from {day(64)})" in result.output
    assert result.output.count("champion") >= 4 and f"CP@{BUDGET}" in result.output
    assert all(str(day(i)) in result.output for i in range(58, 62))  # whole, not cut
    assert "no performance drop beyond tolerance" in result.output


def test_cli_json_is_the_performance_result(cli, world):
    args = [
        "performance",
        "--model",
        CHAMPION,
        "--start",
        str(day(58)),
        "--end",
        str(day(64)),
        "--as-of",
        str(day(68)),
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["end"] == str(day(61)) and data["drop_detected"] is False
    assert data["model_version"] == world.version and len(data["days"]) == 4
    assert data["expected_average_precision"] == pytest.approx(EXPECTED_AP)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "models:/fraud-risk@nobody"], "cannot resolve"),
        (["--model", CHAMPION, "--source", "bucket"], "Invalid value"),
    ],
)
def test_cli_bad_input_is_a_message_not_a_traceback(cli, args, message):
    days = ["--start", str(day(58)), "--end", str(day(64))]
    result = CliRunner().invoke(cli, ["performance", *args, *days], terminal_width=200)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_analyst_labels_count_from_their_label_time_and_correct_the_lakes(world, tmp_path):
    settings = settings_with_store(world, tmp_path / "analyst.db")
    rows = world.days(58, 61)
    scores = good_scores(rows)
    write_scores(settings, rows, scores, version=world.version)
    frauds = rows[rows["tx_fraud"] == 1]["transaction_id"].tolist()
    assert len(frauds) >= 4
    corrected, late = frauds[:3], frauds[3]
    given = dt.datetime.combine(day(66), dt.time(9))

    def label(tx: int, at: dt.datetime) -> LabelMessage:
        return LabelMessage(
            transaction_id=tx, tx_fraud=0, labelled_at=at, source="analyst", labelled_by="ana"
        )

    lake = Lake.open(settings.lake_uri, settings.lake)
    table = LabelsTable.beside(lake.storage)
    try:
        table.append([label(tx, given) for tx in corrected])
        table.append([label(late, dt.datetime.combine(day(69), dt.time(9)))])  # after as_of
        result = labelled_performance(settings, CHAMPION, day(58), day(61), as_of=day(68))
    finally:
        shutil.rmtree(table.storage.root)
    assert result.labels == {"analyst": 3, "lake": len(rows) - 3}
    truth = rows["tx_fraud"].where(~rows["transaction_id"].isin(corrected), 0)
    assert result.average_precision == pytest.approx(average_precision_score(truth, scores))
    lake_only = labelled_performance(settings, CHAMPION, day(58), day(61), as_of=day(68))
    assert lake_only.labels == {"lake": len(rows)}
    assert lake_only.average_precision != pytest.approx(result.average_precision)


def test_the_window_calibration_is_reported_and_alarms_beyond_its_tolerance(world, tmp_path):
    settings = settings_with_store(world, tmp_path / "calibration.db")
    rows = world.days(58, 61)
    scores = good_scores(rows)  # ranks well, but 0.7 + noise is no probability of fraud
    write_scores(settings, rows, scores, version=world.version)
    result = labelled_performance(settings, CHAMPION, day(58), day(61), as_of=day(68))
    curve = reliability_bins(rows["tx_fraud"], scores)
    assert result.calibration_error == pytest.approx(expected_calibration_error(curve))
    assert result.relative_calibration_error == pytest.approx(
        result.calibration_error / rows["tx_fraud"].mean()
    )
    assert [b.count for b in result.reliability] == [b.count for b in curve]
    assert result.calibration_drift_detected and not result.drop_detected
    lenient = settings.model_copy(
        update={
            "monitoring": settings.monitoring.model_copy(
                update={"max_relative_calibration_error": 1e6}
            )
        }
    )
    quiet = labelled_performance(lenient, CHAMPION, day(58), day(61), as_of=day(68))
    assert not quiet.calibration_drift_detected
    assert quiet.calibration_error == result.calibration_error
