"""Drift reports with real Evidently on a real (sqlite) MLflow registry and feature table."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.monitoring.monitored import (
    ORPHAN_DAYS,
    QUIET_DAYS,
    SHIFT_OFFSET,
    SHIFTED_FEATURES,
    Monitored,
    day,
)
from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.config import get_settings
from fraudrisk.errors import MonitoringError
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.monitoring.drift import drift_report
from fraudrisk.monitoring.results import DriftResult
from fraudrisk.monitoring.workspace import open_workspace, ui_command, workspace_location

QUIET = (day(QUIET_DAYS[0]), day(QUIET_DAYS[1]))
SHIFTED = (day(QUIET_DAYS[0] + SHIFT_OFFSET), day(QUIET_DAYS[1] + SHIFT_OFFSET))
CHAMPION = "models:/fraud-risk@champion"


@pytest.fixture(scope="module")
def quiet(monitored: Monitored) -> DriftResult:
    return drift_report(monitored.settings, CHAMPION, "lake", *QUIET)


@pytest.fixture(scope="module")
def shifted(monitored: Monitored) -> DriftResult:
    return drift_report(monitored.settings, CHAMPION, "lake", *SHIFTED)


def quiet_rows(monitored: Monitored) -> int:
    days = monitored.frame["tx_time_days"]
    return int(days.between(*QUIET_DAYS).sum())


def test_an_undrifted_window_reports_no_drift(monitored: Monitored, quiet: DriftResult) -> None:
    assert not quiet.drift_detected
    assert quiet.drift_share < monitored.settings.monitoring.drift_share
    assert not quiet.score_drift_detected
    assert quiet.rows == quiet.sampled_rows == quiet_rows(monitored)
    assert set(quiet.feature_scores) == set(FEATURE_NAMES)
    assert quiet.model_version == monitored.version.version
    assert quiet.quality_issues["missing"] == 0
    assert quiet.quality_issues["new_category"] == 0


def test_a_shifted_window_reports_drift_and_names_the_features(
    quiet: DriftResult, shifted: DriftResult
) -> None:
    assert shifted.drift_detected
    assert shifted.drift_share >= 0.3
    assert set(shifted.drifted_features) >= set(SHIFTED_FEATURES[:4])
    assert len(set(shifted.drifted_features) & set(SHIFTED_FEATURES)) >= 6
    assert shifted.drifted_features[0] == "tx_amount"  # in the model's feature order
    for name in SHIFTED_FEATURES[:4]:
        assert shifted.feature_scores[name] > 5 * quiet.feature_scores[name]
    assert shifted.score_drift is not None and quiet.score_drift is not None
    assert shifted.score_drift > quiet.score_drift
    assert shifted.quality_issues["out_of_range:tx_amount"] > 0


def test_html_and_json_reports_are_written_one_per_window_and_model(
    quiet: DriftResult, shifted: DriftResult
) -> None:
    assert Path(quiet.report).name == f"fraud-risk_v1_lake_{QUIET[0]}_{QUIET[1]}.html"
    assert quiet.report != shifted.report
    for result in (quiet, shifted):
        html = Path(result.report).read_text()
        assert html.lstrip().lower().startswith("<!doctype html")
        assert html.rstrip().endswith("</html>")
        document = json.loads(Path(result.report_json).read_text())
        assert document["result"]["drifted_features"] == result.drifted_features
        assert set(document["methods"]) == set(FEATURE_NAMES)
        assert document["evidently"]["metrics"] and document["evidently"]["tests"]
        assert document["reference"]["rows"] > 0


def test_reports_go_to_the_workspace_one_project_per_model(
    monitored: Monitored, quiet: DriftResult, shifted: DriftResult
) -> None:
    workspace = open_workspace(monitored.settings)
    projects = workspace.search_project("fraud-risk")
    assert len(projects) == 1
    assert len(workspace.list_runs(projects[0].id)) >= 2


def test_the_scores_source_joins_the_records_to_their_feature_rows(
    monitored: Monitored, quiet: DriftResult
) -> None:
    result = drift_report(monitored.settings, CHAMPION, "scores", *QUIET)
    assert result.source == "scores"
    assert result.rows == result.sampled_rows == quiet_rows(monitored)
    assert "rows_without_features" not in result.quality_issues
    assert not result.drift_detected
    assert result.feature_scores == pytest.approx(quiet.feature_scores)
    assert result.score_drift == pytest.approx(quiet.score_drift, rel=1e-3)


def test_score_records_without_feature_rows_give_score_drift_only(monitored: Monitored) -> None:
    result = drift_report(
        monitored.settings, CHAMPION, "scores", day(ORPHAN_DAYS[0]), day(ORPHAN_DAYS[1])
    )
    assert result.rows == 300
    assert result.quality_issues["rows_without_features"] == 300
    assert (result.drift_share, result.drifted_features, result.feature_scores) == (0.0, [], {})
    assert result.score_drift is not None
    notes = json.loads(Path(result.report_json).read_text())["notes"]
    assert any("score drift only" in note for note in notes)


def test_a_large_window_is_sampled_with_a_fixed_seed(monitored: Monitored) -> None:
    settings = monitored.settings.model_copy(
        update={
            "monitoring": monitored.settings.monitoring.model_copy(update={"max_window_rows": 1000})
        },
    )
    first, second = (
        drift_report(settings, CHAMPION, "lake", *QUIET, workspace=False) for _ in range(2)
    )
    assert first.sampled_rows == 1000 < first.rows == quiet_rows(monitored)
    assert first.feature_scores == second.feature_scores
    notes = json.loads(Path(first.report_json).read_text())["notes"]
    assert f"sampled 1,000 of {first.rows:,} rows (fixed seed)" in notes


def test_a_configured_stattest_replaces_evidentlys_defaults(monitored: Monitored) -> None:
    settings = monitored.settings.model_copy(
        update={
            "monitoring": monitored.settings.monitoring.model_copy(
                update={"stattest": "psi", "stattest_threshold": 0.2}
            )
        },
    )
    result = drift_report(settings, CHAMPION, "lake", *SHIFTED, workspace=False)
    methods = json.loads(Path(result.report_json).read_text())["methods"]
    assert set(methods.values()) == {"psi"}
    assert "tx_amount" in result.drifted_features


@pytest.mark.parametrize(
    ("uri", "source", "window", "message"),
    [
        ("models:/fraud-risk/99", "lake", QUIET, "no registered model models:/fraud-risk/99"),
        ("fraud-risk", "lake", QUIET, "not a registry model URI"),
        (CHAMPION, "lake", (QUIET[1], QUIET[0]), "ends .* before it starts"),
        (CHAMPION, "lake", (dt.date(2019, 1, 1), dt.date(2019, 1, 7)), "no feature rows in"),
        (CHAMPION, "scores", SHIFTED, "scored no transaction in"),
        (CHAMPION, "kafka", QUIET, "unknown source 'kafka'"),
    ],
)
def test_bad_input_is_a_clear_error(
    monitored: Monitored,
    uri: str,
    source: str,
    window: tuple[dt.date, dt.date],
    message: str,
) -> None:
    with pytest.raises(MonitoringError, match=message):
        drift_report(monitored.settings, uri, source, *window)  # type: ignore[arg-type]


@pytest.fixture
def cli_home(monitored: Monitored) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("FRAUDRISK_HOME", str(monitored.settings.home))
    patch.setenv("FRAUDRISK_MONITORING__REFERENCE_ROWS", "1500")
    get_settings.cache_clear()
    yield
    patch.undo()
    get_settings.cache_clear()


def drift_args(*extra: str, window: tuple[dt.date, dt.date] = SHIFTED) -> list[str]:
    dates = ["--start", str(window[0]), "--end", str(window[1])]
    return ["monitor", "drift", "--model", CHAMPION, *dates, "--no-workspace", *extra]


def test_cli_json_prints_the_four_keys_first(cli_home: None) -> None:
    outcome = CliRunner().invoke(app, drift_args("--json"))
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.stdout)
    assert list(printed)[:4] == ["drift_detected", "drift_share", "drifted_features", "report"]
    assert printed["drift_detected"] is True and "tx_amount" in printed["drifted_features"]
    assert Path(printed["report"]).is_file()


def test_cli_prints_a_table_by_default(cli_home: None) -> None:
    outcome = CliRunner().invoke(app, drift_args("--source", "scores", window=QUIET))
    assert outcome.exit_code == 0, outcome.output
    assert "no drift" in outcome.stdout and "risk-score PSI" in outcome.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "models:/fraud-risk/99"], "no registered model"),
        (["--source", "kafka"], "--source must be one of lake, scores"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(cli_home: None, args: list[str], message: str) -> None:
    outcome = CliRunner().invoke(app, [*drift_args(), *args])
    assert outcome.exit_code == 2
    assert message in outcome.output and "Traceback" not in outcome.output


def test_cli_rejects_a_malformed_date(cli_home: None) -> None:
    outcome = CliRunner().invoke(app, drift_args(window=(QUIET[0], "2018-13-40")))  # type: ignore[arg-type]
    assert outcome.exit_code == 2
    assert "Invalid value for '--end'" in outcome.output


def test_ui_command_serves_the_local_workspace_only(monitored: Monitored) -> None:
    command = ui_command(monitored.settings, "127.0.0.1", 8123)
    assert Path(command[0]).name == "evidently" and command[1] == "ui"
    assert command[command.index("--workspace") + 1] == workspace_location(monitored.settings)
    assert command[command.index("--port") + 1] == "8123"
    remote = monitored.settings.model_copy(
        update={
            "monitoring": monitored.settings.monitoring.model_copy(
                update={"workspace": "http://127.0.0.1:9"}
            )
        },
    )
    with pytest.raises(MonitoringError, match="the workspace is the Evidently service"):
        ui_command(remote, "127.0.0.1", 8123)
