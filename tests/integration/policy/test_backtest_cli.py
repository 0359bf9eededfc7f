"""``fraudrisk policy backtest`` end to end: a small lake, its feature table, a champion.

The JSON is checked against a brute force that shares nothing with the command but the
model: the feature table and the lake read with pandas, the model's risk and reason codes
(``scoring.decisions.reason_codes``, for the rows a policy's review threshold flags), the
policy applied row by row with ``decide_one``, the figures counted in loops (the unit
tests' ``counted_figures``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from matplotlib.image import imread
from tests.unit.monitoring.perf_fixtures import EPOCH, PerfWorld, build_perf_world
from tests.unit.policy.test_backtest import counted_figures
from typer.testing import CliRunner

from fraudrisk.cli import policy_backtest
from fraudrisk.config import get_settings
from fraudrisk.features.table import FeatureTable
from fraudrisk.io.lake import Lake
from fraudrisk.policy.backtest_plots import PLOTS
from fraudrisk.policy.backtest_results import BacktestResult
from fraudrisk.policy.engine import PolicyEngine
from fraudrisk.policy.loader import load_default_policy, load_policy
from fraudrisk.scoring.decisions import reason_codes
from fraudrisk.scoring.model import load_model

pytestmark = pytest.mark.slow
FIRST, LAST, AS_OF = 50, 59, 70  # days of the lake: after the champion's training days
CANDIDATE = """
name: candidate
thresholds: {review: 0.02, decline: 0.6}
alert_budget: 5
costs: {review: 3.0, false_decline: 30.0, missed_fraud: amount}
rules:
  - {name: tiny, when: 'amount < 5 and risk < 0.5', action: allow, reason: tiny}
  - {name: terminal, when: 'terminal_id_risk_7day_window >= 0.3', action: force_review, reason: t}
  - name: blamed
    when: "'tx_amount' in reasons and amount >= 100"
    action: force_review
    reason: the model blames the amount
  - {name: big, when: 'amount >= 150', action: route, queue: high-value, reason: big}
"""


def day(index: int) -> dt.date:
    return EPOCH + dt.timedelta(days=index)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> PerfWorld:
    return build_perf_world(tmp_path_factory.mktemp("backtest"))


@pytest.fixture()
def cli(world: PerfWorld, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """A throw-away policy group holding only ``backtest``, over the world's settings."""
    monkeypatch.setenv("FRAUDRISK_HOME", str(world.settings.home))
    monkeypatch.setenv("FRAUDRISK_LAKE__URI", world.settings.lake.uri)
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is called by its name
    policy_backtest.register(app)
    yield app
    get_settings.cache_clear()


@pytest.fixture()
def candidate_file(tmp_path: Path) -> Path:
    path = tmp_path / "candidate.yaml"
    path.write_text(CANDIDATE)
    return path


def invoke(cli: typer.Typer, world: PerfWorld, *args: str) -> Any:
    window = ["--start", str(day(FIRST)), "--end", str(day(LAST)), "--table", world.table_uri]
    return CliRunner().invoke(cli, ["backtest", *window, *args], terminal_width=200)


# ------------------------------------------------------------------------------ brute force


def brute_rows(world: PerfWorld) -> pd.DataFrame:
    """The window's feature rows, with the lake's amount, datetime and label, by id."""
    features = FeatureTable.open(world.table_uri).read().to_pandas()
    stamps = features["tx_datetime"]
    inside = (stamps >= pd.Timestamp(day(FIRST))) & (stamps < pd.Timestamp(day(LAST + 1)))
    lake = Lake.open(world.settings.lake.uri).read(day(FIRST), day(LAST), include_labels=True)
    lake_rows = lake.to_pandas()[["transaction_id", "tx_amount", "tx_fraud"]]
    merged = features[inside].drop(columns=["tx_amount"]).merge(lake_rows, on="transaction_id")
    return merged.sort_values("transaction_id").reset_index(drop=True)


def brute_decisions(world: PerfWorld, policy: Any, rows: pd.DataFrame) -> tuple[list, np.ndarray]:
    model = load_model(world.settings, "models:/fraud-risk@champion")
    names = model.feature_names
    matrix = rows[list(names)].to_numpy(np.float32)
    risk = model.probability(matrix)
    engine, review = PolicyEngine(policy), policy.document.thresholds.review
    decided = []
    for i in range(len(rows)):
        reasons = "[]"
        if risk[i] >= review:  # the live scorer explains the flagged rows only
            (reasons,) = reason_codes(
                model.contributions(matrix[i : i + 1]), matrix[i : i + 1], names, 3
            )
        tx = {"tx_amount": float(rows["tx_amount"][i]), "tx_datetime": rows["tx_datetime"][i]}
        features = dict(zip(names, matrix[i].tolist(), strict=True))
        decided.append(engine.decide_one(float(risk[i]), tx, features, reasons))
    return decided, risk


def brute_figures(decisions: list[str], rows: pd.DataFrame, costs: Any) -> dict[str, Any]:
    days = LAST - FIRST + 1
    return counted_figures(decisions, rows["tx_fraud"], rows["tx_amount"], costs, days)


def assert_same(found: dict[str, Any], expected: dict[str, Any]) -> None:
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert found[key] == (None if value is None else pytest.approx(value, abs=1e-6)), key


# ------------------------------------------------------------------------------------ tests


def test_json_equals_brute_force_and_plots_are_pngs(cli, world, candidate_file, tmp_path):
    plots = tmp_path / "plots"
    args = ["--policy", str(candidate_file), "--as-of", str(day(AS_OF)), "--json"]
    result = invoke(cli, world, *args, "--plot", str(plots))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and BacktestResult.model_validate(data)
    assert (data["start"], data["end"], data["days"]) == (str(day(FIRST)), str(day(LAST)), 10)
    rows = brute_rows(world)
    assert data["transactions"] == len(rows) and data["unlabelled"] == 0
    assert data["frauds"] == int(rows["tx_fraud"].sum()) > 0
    candidate, active = load_policy(candidate_file), load_default_policy()
    mine, _ = brute_decisions(world, candidate, rows)
    theirs, _ = brute_decisions(world, active, rows)
    costs = candidate.document.costs
    assert_same(
        data["candidate"]["figures"], brute_figures([d.decision for d in mine], rows, costs)
    )
    assert_same(data["active"]["figures"], brute_figures([d.decision for d in theirs], rows, costs))
    for rule in data["rules"]:
        hit = [rule["name"] in d.fired for d in mine]
        assert rule["hits"] == sum(hit)
        assert rule["frauds"] == sum(
            h and f == 1 for h, f in zip(hit, rows["tx_fraud"], strict=True)
        )
        assert rule["decided"] == sum(d.decided_by == rule["name"] for d in mine)
    blamed = next(r for r in data["rules"] if r["name"] == "blamed")
    assert blamed["hits"] > 0  # reasons were computed for the flagged rows
    sweep = data["review_sweep"]
    current = next(p for p in sweep["points"] if p["threshold"] == sweep["current"])
    assert_same(current["figures"], data["candidate"]["figures"])
    assert sorted(p.name for p in plots.iterdir()) == sorted(PLOTS)
    for name in PLOTS:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(plots / name).shape[0] > 100


def test_tables_for_people_and_the_window_clipped_to_known_labels(cli, world, candidate_file):
    result = invoke(cli, world, "--policy", str(candidate_file))  # as of --end: 7 days unknown
    assert result.exit_code == 0, result.output
    assert (
        f"labels known through {day(LAST - 7)} (window clipped from {day(LAST)})" in result.stdout
    )
    for text in (
        "Candidate vs active",
        "Rules of the candidate",
        "Review threshold",
        "cost-optimal",
    ):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "environment", "message"),
    [
        (["--as-of", str(day(FIRST + 2))], {}, "no label known yet"),
        ([], {"FRAUDRISK_SERVING__MODEL_URI": "models:/fraud-risk@nobody"}, "no champion"),
    ],
)
def test_errors_are_messages_not_tracebacks(cli, world, monkeypatch, args, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = invoke(cli, world, "--as-of", str(day(AS_OF)), *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_window_outside_the_lake_is_named(cli, world):
    args = ["backtest", "--start", "2019-01-01", "--end", "2019-01-31", "--as-of", "2019-03-01"]
    result = CliRunner().invoke(cli, args, terminal_width=200)
    assert result.exit_code == 2 and "holds no day of 2019-01-01..2019-01-31" in result.output
