"""Per-variant Prometheus metrics of the scorer (served on the ModelServer's ``/metrics``).

Every series carries ``model`` and ``variant`` labels (``champion``, ``canary``, ``shadow``…), so
the canary workflow and dashboards compare variants side by side: requests, errors, latency,
the score distribution, decision counts and fallback decisions.
"""

from __future__ import annotations

import weakref
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
SCORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


@dataclass(frozen=True)
class ScorerMetrics:
    """The metric families; create once per registry (:func:`scorer_metrics`)."""

    requests: Counter
    errors: Counter
    latency: Histogram
    scores: Histogram
    decisions: Counter
    fallbacks: Counter
    _children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def observe(
        self,
        model: str,
        variant: str,
        seconds: float,
        risk: npt.NDArray[np.float64],
        decisions: npt.NDArray[np.str_],
        fallback: bool,
    ) -> None:
        """Record one scored request (or sub-batch) of a variant."""
        requests, latency, histogram, fallbacks = self._series(model, variant)
        requests.inc()
        latency.observe(seconds)
        for value in risk.tolist():
            histogram.observe(value)
        for name, count in Tally(decisions.tolist()).items():
            self.decisions.labels(model, variant, name).inc(count)
        if fallback:
            fallbacks.inc(len(risk))

    def _series(self, model: str, variant: str) -> tuple[Any, Any, Any, Any]:
        """The labelled series of a variant, looked up once (``labels`` costs µs per call)."""
        key = (model, variant)
        if key not in self._children:
            self._children[key] = (
                self.requests.labels(model, variant),
                self.latency.labels(model, variant),
                self.scores.labels(model, variant),
                self.fallbacks.labels(model, variant),
            )
        return self._children[key]

    def error(self, model: str, variant: str, kind: str) -> None:
        """Record a failed request (``kind``: ``invalid`` = 4xx, ``internal`` = 5xx)."""
        self.errors.labels(model, variant, kind).inc()


#: Families per registry, dropped with their registry (an id() key could be reused by a new one).
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ScorerMetrics] = (
    weakref.WeakKeyDictionary()
)


def scorer_metrics(registry: CollectorRegistry = REGISTRY) -> ScorerMetrics:
    """The scorer's metric families in ``registry`` (created on first use)."""
    key = registry
    if key not in _BY_REGISTRY:
        labels = ("model", "variant")
        _BY_REGISTRY[key] = ScorerMetrics(
            requests=Counter("fraudrisk_requests", "Scored requests.", labels, registry=registry),
            errors=Counter(
                "fraudrisk_request_errors",
                "Failed requests by kind.",
                (*labels, "kind"),
                registry=registry,
            ),
            latency=Histogram(
                "fraudrisk_request_latency_seconds",
                "Scoring latency.",
                labels,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            scores=Histogram(
                "fraudrisk_risk_score",
                "Calibrated risk scores.",
                labels,
                buckets=SCORE_BUCKETS,
                registry=registry,
            ),
            decisions=Counter(
                "fraudrisk_decisions",
                "Decisions by kind.",
                (*labels, "decision"),
                registry=registry,
            ),
            fallbacks=Counter(
                "fraudrisk_fallback_decisions", "Rules-only decisions.", labels, registry=registry
            ),
        )
    return _BY_REGISTRY[key]
