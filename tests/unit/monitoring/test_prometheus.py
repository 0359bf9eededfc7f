"""Monitoring metrics: drift, labelled performance and trigger decisions, served and written."""

from __future__ import annotations

import datetime as dt
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from tests.unit.monitoring.trigger_fixtures import drift, performance

from fraudrisk.monitoring.ledger import Cause, Decision
from fraudrisk.monitoring.prometheus import MonitoringMetrics, sample_names
from fraudrisk.monitoring.results import DayPerformance

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition text, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exposition(metrics: MonitoringMetrics, tmp_path: Path) -> Samples:
    return samples(metrics.write_textfile(tmp_path / "monitoring.prom").read_text())


M = (("model", "fraud-risk"),)


def test_a_drift_result_is_exported_and_stale_features_are_dropped(tmp_path: Path) -> None:
    metrics = MonitoringMetrics()
    update = {"score_drift": 0.31, "quality_issues": {"missing": 4}, "weighted_drift_share": 0.62}
    metrics.observe_drift(drift(True).model_copy(update=update))
    found = exposition(metrics, tmp_path)
    assert found[("fraudrisk_drift_share", M)] == 0.5
    assert found[("fraudrisk_weighted_drift_share", M)] == 0.62
    assert found[("fraudrisk_drift_detected", M)] == 1
    assert found[("fraudrisk_score_drift_psi", M)] == 0.31
    assert found[("fraudrisk_drift_window_rows", M)] == 10_000
    assert found[("fraudrisk_data_quality_issues", (("issue", "missing"), *M))] == 4
    feature = (("feature", "amount_mean_1d"), *M)
    assert found[("fraudrisk_feature_drift_score", feature)] == 0.3
    assert found[("fraudrisk_feature_drifted", feature)] == 1
    assert found[("fraudrisk_feature_drifted", (("feature", "terminal_risk_7d"), *M))] == 1
    last = found[("fraudrisk_monitoring_last_check_timestamp_seconds", (("check", "drift"), *M))]
    assert last == pytest.approx(dt.datetime.now(dt.UTC).timestamp(), abs=60)

    metrics.observe_drift(drift(False))  # terminal_risk_7d is no longer in the report
    found = exposition(metrics, tmp_path)
    assert found[("fraudrisk_drift_share", M)] == 0.05
    assert found[("fraudrisk_feature_drifted", feature)] == 0
    assert ("fraudrisk_feature_drifted", (("feature", "terminal_risk_7d"), *M)) not in found


def test_labelled_performance_is_exported_per_variant_from_the_last_labelled_day(
    tmp_path: Path,
) -> None:
    result = performance(True)
    older = DayPerformance(
        day=dt.date(2018, 8, 30),
        variant="canary",
        model_version="4",
        transactions=900,
        frauds=6,
        average_precision=0.9,
        card_precision_at_k=0.3,
        recall_at_budget=0.6,
    )
    newer = older.model_copy(update={"day": dt.date(2018, 8, 31), "average_precision": 0.7})
    calibration = {"calibration_error": 0.004, "relative_calibration_error": 0.5}
    result = result.model_copy(update={"days": [*result.days, newer, older], **calibration})
    metrics = MonitoringMetrics()
    metrics.observe_performance(result)
    found = exposition(metrics, tmp_path)
    champion, canary = (
        (("model", "fraud-risk"), ("variant", "champion")),
        (("model", "fraud-risk"), ("variant", "canary")),
    )
    assert found[("fraudrisk_labelled_average_precision", champion)] == 0.36
    assert found[("fraudrisk_labelled_average_precision", canary)] == 0.7  # the newer day
    assert found[("fraudrisk_labelled_card_precision_at_100", canary)] == 0.3
    assert found[("fraudrisk_labelled_recall_at_budget", champion)] == 0.5
    assert found[("fraudrisk_performance_drop", M)] == pytest.approx(0.4)
    assert found[("fraudrisk_expected_average_precision", M)] == 0.6
    assert found[("fraudrisk_labelled_window_average_precision", M)] == 0.36
    assert found[("fraudrisk_calibration_error", M)] == 0.004
    assert found[("fraudrisk_relative_calibration_error", M)] == 0.5


def test_decisions_are_counted_by_cause_and_outcome(tmp_path: Path) -> None:
    metrics = MonitoringMetrics()
    fired_at = dt.datetime(2024, 6, 3, 12, tzinfo=dt.UTC)

    def decision(kind: str, outcome: str) -> Decision:
        return Decision(
            id=1,
            cause=Cause("fraud-risk", kind),
            outcome=outcome,  # type: ignore[arg-type]
            decided_at=fired_at,
            model_uri="m",
            report="r",
            evidence={},
        )

    for kind, outcome in [
        ("drift", "fired"),
        ("drift", "suppressed"),
        ("drift", "suppressed"),
        ("performance", "no_trigger"),
    ]:
        metrics.observe_decision(decision(kind, outcome))
    found = exposition(metrics, tmp_path)

    def count(kind: str, outcome: str) -> float:
        labels = (("cause", kind), ("model", "fraud-risk"), ("outcome", outcome))
        return found[("fraudrisk_retraining_triggers_total", labels)]

    assert count("drift", "fired") == 1 and count("drift", "suppressed") == 2
    assert count("performance", "no_trigger") == 1
    fired = found[
        (
            "fraudrisk_retraining_last_fired_timestamp_seconds",
            (("cause", "drift"), ("model", "fraud-risk")),
        )
    ]
    assert fired == fired_at.timestamp()


def test_the_registry_is_dedicated_and_served_over_http() -> None:
    first, second = MonitoringMetrics(), MonitoringMetrics()  # no duplicate-series clash
    first.observe_drift(drift(True))
    assert "fraudrisk_drift_share" not in sample_names(REGISTRY)
    assert "fraudrisk_retraining_triggers_total" in sample_names(second.registry)
    server, thread = first.serve(0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            found = samples(response.read().decode())
        assert found[("fraudrisk_drift_share", M)] == 0.5
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert (
        second.registry.get_sample_value("fraudrisk_drift_share", {"model": "fraud-risk"}) is None
    )
