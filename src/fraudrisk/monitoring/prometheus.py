"""Prometheus metrics of the monitoring checks and the retraining trigger.

One :class:`MonitoringMetrics` owns a dedicated ``CollectorRegistry`` (never the global one, so
tests, the serving metrics and the watcher never collide in one process). The watcher serves it
on ``monitoring.metrics_port``; a KFP monitoring run writes it to a textfile (node-exporter's
textfile collector format) instead. Every series carries a ``model`` label (the registered
model name); per-feature series add ``feature``, labelled performance adds ``variant``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.exposition import write_to_textfile

from fraudrisk.config import MODEL_URI
from fraudrisk.monitoring.results import DriftResult, PerformanceResult

if TYPE_CHECKING:
    from fraudrisk.monitoring.ledger import Decision

#: The check names of ``fraudrisk_monitoring_last_check_timestamp_seconds{check=...}``.
CHECKS = ("drift", "performance")


def model_name(model_uri: str) -> str:
    """The registered model name of a ``models:/`` URI, else the URI itself."""
    found = MODEL_URI.match(model_uri)
    return found.group("name") if found else model_uri


class MonitoringMetrics:
    """The monitoring metric families in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create the families in ``registry`` (default: a new one)."""
        self.registry = registry or CollectorRegistry()
        self._features: dict[str, set[str]] = {}  # per model: the feature series exported
        model, feature, variant = ("model",), ("model", "feature"), ("model", "variant")

        def gauge(name: str, text: str, labels: tuple[str, ...] = model) -> Gauge:
            return Gauge(name, text, labels, registry=self.registry)

        self.drift_share = gauge("fraudrisk_drift_share", "Share of the model's features drifted.")
        self.weighted_drift_share = gauge(
            "fraudrisk_weighted_drift_share",
            "Share of the model's mean |SHAP| held by the drifted features.",
        )
        self.drift_detected = gauge("fraudrisk_drift_detected", "1 when dataset drift is detected.")
        self.feature_drift = gauge(
            "fraudrisk_feature_drift_score",
            "Drift score of each feature (the method's statistic).",
            feature,
        )
        self.feature_drifted = gauge(
            "fraudrisk_feature_drifted", "1 when the feature drifted.", feature
        )
        self.score_psi = gauge("fraudrisk_score_drift_psi", "PSI of the risk-score distribution.")
        self.window_rows = gauge("fraudrisk_drift_window_rows", "Rows of the checked window.")
        self.quality = gauge(
            "fraudrisk_data_quality_issues",
            "Data-quality issues of the window.",
            ("model", "issue"),
        )
        self.labelled_ap = gauge(
            "fraudrisk_labelled_average_precision", "Average precision, last labelled day.", variant
        )
        self.labelled_cp = gauge(
            "fraudrisk_labelled_card_precision_at_100",
            "Card precision@100, last labelled day.",
            variant,
        )
        self.labelled_recall = gauge(
            "fraudrisk_labelled_recall_at_budget",
            "Recall at the alert budget on the last labelled day.",
            variant,
        )
        self.window_ap = gauge(
            "fraudrisk_labelled_window_average_precision",
            "Champion's average precision over the labelled window.",
        )
        self.expected_ap = gauge(
            "fraudrisk_expected_average_precision",
            "The model's own test-fold average precision (the yardstick).",
        )
        self.performance_drop = gauge(
            "fraudrisk_performance_drop", "Relative AP drop versus the yardstick (> 0 = worse)."
        )
        self.calibration_error = gauge(
            "fraudrisk_calibration_error",
            "Expected calibration error of the model over the labelled window.",
        )
        self.relative_calibration_error = gauge(
            "fraudrisk_relative_calibration_error",
            "The calibration error as a share of the labelled window's fraud rate.",
        )
        self.last_check = gauge(
            "fraudrisk_monitoring_last_check_timestamp_seconds",
            "Unix time of the last completed check.",
            ("model", "check"),
        )
        self.check_errors = Counter(
            "fraudrisk_monitoring_check_errors",
            "Checks that raised an error.",
            ("model", "check"),
            registry=self.registry,
        )
        self.triggers = Counter(
            "fraudrisk_retraining_triggers",
            "Retraining decisions by cause and outcome.",
            ("model", "cause", "outcome"),
            registry=self.registry,
        )
        self.last_fired = gauge(
            "fraudrisk_retraining_last_fired_timestamp_seconds",
            "Unix time retraining last fired.",
            ("model", "cause"),
        )

    def observe_drift(self, result: DriftResult) -> None:
        """Export one drift result (features absent from it keep no stale series)."""
        name = model_name(result.model_uri)
        self.drift_share.labels(name).set(result.drift_share)
        if result.weighted_drift_share is not None:
            self.weighted_drift_share.labels(name).set(result.weighted_drift_share)
        self.drift_detected.labels(name).set(int(result.drift_detected))
        self.window_rows.labels(name).set(result.rows)
        drifted = set(result.drifted_features)
        features = set(result.feature_scores) | drifted
        for stale in self._features.get(name, set()) - features:  # no longer in the report
            for family in (self.feature_drift, self.feature_drifted):
                with contextlib.suppress(KeyError):
                    family.remove(name, stale)
        self._features[name] = features
        for feature in features:
            if feature in result.feature_scores:
                self.feature_drift.labels(name, feature).set(result.feature_scores[feature])
            self.feature_drifted.labels(name, feature).set(int(feature in drifted))
        if result.score_drift is not None:
            self.score_psi.labels(name).set(result.score_drift)
        for issue, count in result.quality_issues.items():
            self.quality.labels(name, issue).set(count)
        self.checked(name, "drift")

    def observe_performance(self, result: PerformanceResult) -> None:
        """Export one labelled-performance result: each variant's last labelled day."""
        name = model_name(result.model_uri)
        latest = {day.variant: day for day in sorted(result.days, key=lambda d: d.day)}
        for variant, day in latest.items():
            for family, value in (
                (self.labelled_ap, day.average_precision),
                (self.labelled_cp, day.card_precision_at_k),
                (self.labelled_recall, day.recall_at_budget),
            ):
                if value is not None:
                    family.labels(name, variant).set(value)
        for family, value in (
            (self.window_ap, result.average_precision),
            (self.expected_ap, result.expected_average_precision),
            (self.performance_drop, result.drop),
            (self.calibration_error, result.calibration_error),
            (self.relative_calibration_error, result.relative_calibration_error),
        ):
            if value is not None:
                family.labels(name).set(value)
        self.checked(name, "performance")

    def observe_decision(self, decision: Decision) -> None:
        """Count one trigger decision; stamp the firing time."""
        cause = decision.cause
        self.triggers.labels(cause.model_name, cause.kind, decision.outcome).inc()
        if decision.outcome == "fired":
            self.last_fired.labels(cause.model_name, cause.kind).set(
                decision.decided_at.timestamp()
            )

    def checked(self, name: str, check: str) -> None:
        """Stamp a completed check (the watcher-stale alert reads it)."""
        self.last_check.labels(name, check).set(time.time())

    def check_failed(self, name: str, check: str) -> None:
        """Count a check that raised."""
        self.check_errors.labels(name, check).inc()

    def serve(self, port: int, addr: str = "127.0.0.1") -> tuple[Any, Thread]:
        """Serve ``/metrics`` on ``addr:port`` in a daemon thread.

        Returns:
            The HTTP server (``shutdown()`` stops it) and its thread.
        """
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return server, thread

    def write_textfile(self, path: Path) -> Path:
        """Write the metrics atomically in the textfile-collector format (a ``.prom`` file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)
        return path


#: The sample names each metric type exports beside (or instead of) the family name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name the families of ``registry`` export, labelled or not.

    Labelled families have no samples until a label set is used, so the names come from the
    family types (``_total`` of a counter, ``_bucket`` of a histogram...), not from samples.
    """
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }
