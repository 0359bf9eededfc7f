"""The importance weights of the weighted drift verdict: computed, cached, deciding."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from tests.unit.monitoring.monitored import QUIET_DAYS, Monitored, day

from fraudrisk.config import MonitoringSettings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.monitoring.drift import drift_report, notes_of
from fraudrisk.monitoring.drift_verdicts import input_verdicts, verdict_section, with_section
from fraudrisk.monitoring.drift_weights import (
    WEIGHTS_FILE,
    FeatureWeights,
    importance_weights,
    reference_weights,
    weighted_share,
)
from fraudrisk.monitoring.results import DriftResult
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.references import ARTIFACT_DIR, Reference, load_reference, resolve_version
from fraudrisk.scoring.model import LoadedModel, load_model

CHAMPION = "models:/fraud-risk@champion"
NAMES = tuple(FEATURE_NAMES)
#: The issue's week: the amount, two customer mean amounts and the amount ratio drifted.
AMOUNT_FEATURES = [
    "tx_amount",
    "customer_id_avg_amount_1day_window",
    "customer_id_avg_amount_7day_window",
    "customer_id_amount_ratio_30day_window",
]


def brute_force_weights(rows: list[list[float]]) -> list[float]:
    """Mean |value| per column and its share of the total, with plain Python loops."""
    sums = [0.0] * len(rows[0])
    for row in rows:
        for column, value in enumerate(row):
            sums[column] += abs(value)
    means = [total / len(rows) for total in sums]
    return [mean / sum(means) for mean in means]


def weights_of(shares: dict[str, float]) -> FeatureWeights:
    """Weights for every feature: ``shares`` as given, the rest shared equally."""
    rest = (1.0 - sum(shares.values())) / (len(NAMES) - len(shares))
    weights = {name: shares.get(name, rest) for name in NAMES}
    return FeatureWeights(weights, weights, rows=100)


def test_weights_are_the_normalised_mean_absolute_contributions() -> None:
    rng = np.random.default_rng(3)
    contributions = rng.normal(size=(200, len(NAMES) + 1)) * np.arange(1, len(NAMES) + 2)
    weights, mean_abs = importance_weights(contributions, NAMES)
    expected = brute_force_weights(contributions[:, :-1].tolist())  # the bias is no feature
    assert list(weights) == list(NAMES)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert list(weights.values()) == pytest.approx(expected)
    assert mean_abs["tx_amount"] == pytest.approx(np.abs(contributions[:, 0]).mean())


def test_a_model_that_uses_no_feature_weighs_them_equally() -> None:
    weights, _ = importance_weights(np.zeros((10, len(NAMES) + 1)), NAMES)
    assert list(weights.values()) == pytest.approx([1 / len(NAMES)] * len(NAMES))


def test_contributions_that_do_not_match_the_features_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        importance_weights(np.zeros((10, 3)), NAMES)
    with pytest.raises(ValueError, match="no rows"):
        importance_weights(np.zeros((0, len(NAMES))), NAMES)


def test_heavy_features_drifting_trigger_the_weighted_verdict_not_the_columns() -> None:
    """4 of 19 features (21 %, under the 30 % column share) holding 60 % of the importance."""
    options = MonitoringSettings()
    weights = weights_of(dict.fromkeys(AMOUNT_FEATURES, 0.15))
    share = len(AMOUNT_FEATURES) / len(NAMES)
    decided = input_verdicts(options, AMOUNT_FEATURES, share, weights)
    assert decided.weighted_share == pytest.approx(0.6)
    assert decided.verdicts == {"columns": False, "weighted": True}
    assert decided.used == "weighted" and decided.drift_detected
    columns = input_verdicts(
        options.model_copy(update={"drift_verdict": "columns"}), AMOUNT_FEATURES, share, weights
    )
    assert columns.used == "columns" and not columns.drift_detected


def test_many_light_features_drifting_do_not_trigger_the_weighted_verdict() -> None:
    light = [name for name in NAMES if name not in AMOUNT_FEATURES][:8]
    weights = weights_of(dict.fromkeys(AMOUNT_FEATURES, 0.2375))  # 95 % on the other four
    decided = input_verdicts(MonitoringSettings(), light, len(light) / len(NAMES), weights)
    assert decided.weighted_share == pytest.approx(0.05 * 8 / 15)
    assert decided.verdicts == {"columns": True, "weighted": False}
    assert not decided.drift_detected


def test_without_weights_the_columns_decide() -> None:
    decided = input_verdicts(MonitoringSettings(), AMOUNT_FEATURES, 0.4, None)
    assert (decided.used, decided.weighted_share, decided.drift_detected) == ("columns", None, True)


def test_weighted_share_counts_a_feature_once() -> None:
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    assert weighted_share(["a", "c", "a"], weights) == pytest.approx(0.7)
    assert weighted_share([], weights) == 0.0


def result_with(weights: dict[str, float], drifted: list[str], *, share: float) -> DriftResult:
    return DriftResult(
        model_uri=CHAMPION,
        model_version="1",
        source="lake",
        start=dt.date(2018, 9, 1),
        end=dt.date(2018, 9, 7),
        rows=10,
        sampled_rows=10,
        drift_detected=True,
        drift_share=len(drifted) / 3,
        drifted_features=drifted,
        drift_verdict="weighted",
        weighted_drift_share=share,
        verdicts={"columns": False, "weighted": True},
        feature_weights=weights,
        feature_scores={"a": 0.01, "b": 0.5, "c": 0.3},
        report="/r.html",
        report_json="/r.json",
    )


def test_the_weight_table_comes_heaviest_first_with_scores_and_verdicts() -> None:
    result = result_with({"a": 0.2, "b": 0.7, "c": 0.1}, ["b"], share=0.7)
    assert result.weight_table() == [
        {"feature": "b", "weight": 0.7, "drifted": True, "score": 0.5},
        {"feature": "a", "weight": 0.2, "drifted": False, "score": 0.01},
        {"feature": "c", "weight": 0.1, "drifted": False, "score": 0.3},
    ]
    assert result.summary()["weight_table"] == result.weight_table()
    unweighted = result.model_copy(update={"feature_weights": {}, "weighted_drift_share": None})
    assert [row["feature"] for row in unweighted.weight_table()] == ["b", "c", "a"]
    assert any("column share decided" in note for note in notes_of(unweighted))
    assert not any("column share decided" in note for note in notes_of(result))


def test_the_html_section_goes_on_top_of_the_body() -> None:
    result = result_with({"a": 0.2, "b": 0.7, "c": 0.1}, ["b"], share=0.7)
    section = verdict_section(result, MonitoringSettings())
    page = with_section(
        "<html><head></head><body class='x'><div id='root'></div></body></html>", section
    )
    assert page.index("<body class='x'>") < page.index(section) < page.index("<div id='root'>")
    assert "weighted: <b>drift</b> <b>(decides)</b> — 70.0%" in section
    assert "columns: <b>no drift</b> — 33.3%" in section
    assert "<tr><td>b</td><td>70.0%</td><td>drifted</td><td>0.5</td></tr>" in section


# --- on the registered champion of the monitored world ------------------------------------


@pytest.fixture(scope="module")
def champion(monitored: Monitored) -> tuple[LoadedModel, Reference]:
    version = resolve_version(monitored.settings, CHAMPION)
    pinned = f"models:/{version.name}/{version.version}"
    return load_model(monitored.settings, pinned), load_reference(monitored.settings, pinned)


def test_the_champions_weights_match_a_brute_force_mean_absolute_contribution(
    monitored: Monitored, champion: tuple[LoadedModel, Reference]
) -> None:
    model, reference = champion
    assert model.contributions is not None
    result = drift_report(
        monitored.settings, CHAMPION, "lake", day(QUIET_DAYS[0]), day(QUIET_DAYS[1])
    )
    matrix = reference.rows[list(model.feature_names)].to_numpy(np.float32)
    per_row = [model.contributions(matrix[i : i + 1])[0, :-1].tolist() for i in range(len(matrix))]
    expected = dict(zip(model.feature_names, brute_force_weights(per_row), strict=True))
    assert sum(result.feature_weights.values()) == pytest.approx(1.0)
    assert result.feature_weights == pytest.approx(expected, rel=1e-5, abs=1e-9)
    assert result.weighted_drift_share == pytest.approx(
        sum(expected[name] for name in result.drifted_features)
    )


def test_the_weights_are_cached_with_the_reference(
    monitored: Monitored, champion: tuple[LoadedModel, Reference]
) -> None:
    model, reference = champion
    first = reference_weights(monitored.settings, model, reference)
    run_id = resolve_version(monitored.settings, CHAMPION).run_id
    client = mlflow_client(monitored.settings)
    listed = [Path(item.path).name for item in client.list_artifacts(run_id, ARTIFACT_DIR)]
    assert WEIGHTS_FILE in listed

    def refused(_matrix: np.ndarray) -> np.ndarray:
        raise AssertionError("the cached weights should have been used")

    cached = reference_weights(
        monitored.settings, dataclasses.replace(model, contributions=refused), reference
    )
    assert first is not None and cached is not None
    assert cached.weights == pytest.approx(first.weights)
    assert cached.rows == len(reference.rows)


def test_a_rebuilt_reference_gets_new_weights(
    monitored: Monitored, champion: tuple[LoadedModel, Reference]
) -> None:
    model, reference = champion
    assert model.contributions is not None
    calls: list[int] = []

    def counted(matrix: np.ndarray) -> np.ndarray:
        calls.append(len(matrix))
        assert model.contributions is not None
        return model.contributions(matrix)

    counting = dataclasses.replace(model, contributions=counted)
    rebuilt = dataclasses.replace(
        reference,
        rows=reference.rows.head(200),
        meta=reference.meta | {"rows": 200, "created_at": "2030-01-01T00:00:00+00:00"},
    )
    try:
        weights = reference_weights(monitored.settings, counting, rebuilt)
        assert calls == [200] and weights is not None and weights.rows == 200
        assert reference_weights(monitored.settings, counting, rebuilt) == weights
        assert calls == [200]  # the second time from the cache
    finally:
        reference_weights(monitored.settings, model, reference)  # the real reference's again


def test_the_quiet_window_is_no_weighted_false_alarm_and_the_json_holds_the_table(
    monitored: Monitored,
) -> None:
    result = drift_report(
        monitored.settings,
        CHAMPION,
        "lake",
        day(QUIET_DAYS[0]),
        day(QUIET_DAYS[1]),
        workspace=False,
    )
    assert result.drift_verdict == "weighted"
    assert result.weighted_drift_share is not None
    assert result.weighted_drift_share < monitored.settings.monitoring.weighted_drift_share
    assert not result.drift_detected and result.verdicts == {"columns": False, "weighted": False}
    document = json.loads(Path(result.report_json).read_text())
    importance = document["importance"]
    assert importance["verdict"] == "weighted"
    assert {row["feature"] for row in importance["table"]} == set(FEATURE_NAMES)
    assert importance["table"] == document["result"]["weight_table"]
    html = Path(result.report).read_text()
    assert 'id="fraudrisk-drift-verdicts"' in html and html.rstrip().endswith("</html>")
