"""Canary measurement and judgement: champion against canary, by the gates.

* **Measure.** :func:`scrape` reads the scorer's ``/metrics`` into a :class:`Snapshot` — the
  per-variant counters and histograms, summed over every other label, so a Prometheus
  ``/federate`` endpoint over several pods works too. Counters are cumulative since the server
  started; :meth:`Snapshot.since` subtracts the baseline taken by ``canary start`` (a restarted
  server, seen by its ``process_start_time_seconds``, counts from zero).
* **Judge.** :func:`evaluate` turns a window into :class:`VariantStats` per side (error rate,
  p50/p99 interpolated in the latency buckets, review/decline/fallback shares), the distance
  between the score histograms (PSI and KS over the buckets), and a verdict per gate of
  :class:`~fraudrisk.config.CanarySettings`: pass, breach, or insufficient (too few requests).
"""

from __future__ import annotations

import logging
import math
import urllib.parse
import urllib.request
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from fraudrisk.config import CanarySettings
from fraudrisk.vocab import DECLINE, REVIEW, STABLE

log = logging.getLogger(__name__)
Verdict = Literal["pass", "breach", "insufficient"]
CanaryGates = CanarySettings  # the gates are a settings group: FRAUDRISK_CANARY__<GATE>
PROCESS_START = "process_start_time_seconds"
_COUNTERS = {
    "fraudrisk_requests_total": "requests",
    "fraudrisk_request_errors_total": "errors",
    "fraudrisk_fallback_decisions_total": "fallbacks",
}
_KEYED = {
    "fraudrisk_decisions_total": ("decisions", "decision"),
    "fraudrisk_request_latency_seconds_bucket": ("latency", "le"),
    "fraudrisk_risk_score_bucket": ("scores", "le"),
}
_NOT_AN_ERROR = "shadow_skipped"  # a shadow batch dropped under load: no answer failed
_PSI_FLOOR = 1e-4  # share given to an empty bucket, so that PSI stays finite


class CanaryError(RuntimeError):
    """The canary command cannot do what was asked; the message says why and what to do."""


class ServiceUnreachableError(CanaryError):
    """The service's ``/metrics`` could not be read."""


# ---------------------------------------------------------------- measure


class VariantCounts(BaseModel):
    """Counters of one variant; histograms as cumulative counts by bucket bound (``le``)."""

    requests: float = Field(0.0, description="Requests (or sub-batches) answered.")
    errors: float = Field(0.0, description="Failed requests.")
    fallbacks: float = Field(0.0, description="Transactions decided by the fallback rules.")
    decisions: dict[str, float] = Field(default_factory=dict, description="By decision.")
    latency: dict[str, float] = Field(default_factory=dict, description="Seconds, cumulative.")
    scores: dict[str, float] = Field(default_factory=dict, description="Risk, cumulative.")

    def minus(self, base: VariantCounts) -> VariantCounts:
        """The counts since ``base`` (all of them when a counter went down: a reset)."""
        if self.requests < base.requests or self.errors < base.errors:
            return self

        def sub(now: dict[str, float], then: dict[str, float]) -> dict[str, float]:
            return {key: value - then.get(key, 0.0) for key, value in now.items()}

        return VariantCounts(
            requests=self.requests - base.requests,
            errors=self.errors - base.errors,
            fallbacks=self.fallbacks - base.fallbacks,
            decisions=sub(self.decisions, base.decisions),
            latency=sub(self.latency, base.latency),
            scores=sub(self.scores, base.scores),
        )


class Snapshot(BaseModel):
    """The scorer's metrics at one moment, by variant."""

    process_start: float | None = Field(None, description="The server's start (epoch s).")
    variants: dict[str, VariantCounts] = Field(default_factory=dict)

    def since(self, baseline: Snapshot | None) -> Snapshot:
        """The window from ``baseline`` to this snapshot (everything without a baseline)."""
        restarted = baseline is not None and baseline.process_start != self.process_start
        if baseline is None or restarted:
            return self
        return Snapshot(
            process_start=self.process_start,
            variants={
                name: counts.minus(baseline.variants.get(name, VariantCounts()))
                for name, counts in self.variants.items()
            },
        )


def parse_metrics(text: str, model: str | None = None) -> Snapshot:
    """A :class:`Snapshot` of Prometheus text, keeping the series of ``model`` (None = all)."""
    # deferred: prometheus_client (monitoring extra) only here
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, dict[str, Any]] = {}
    start = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == PROCESS_START and not labels:  # one process, not a federation
                start = sample.value
            variant = labels.get("variant")
            if variant is None or (model is not None and labels.get("model") != model):
                continue
            if labels.get("kind") == _NOT_AN_ERROR:
                continue
            data = found.setdefault(variant, {})
            if sample.name in _COUNTERS:
                key = _COUNTERS[sample.name]
                data[key] = data.get(key, 0.0) + sample.value
            elif sample.name in _KEYED:
                field, label = _KEYED[sample.name]
                key = str(float(labels[label])) if label == "le" else labels[label]
                data.setdefault(field, {})
                data[field][key] = data[field].get(key, 0.0) + sample.value
    variants = {name: VariantCounts.model_validate(data) for name, data in found.items()}
    return Snapshot(process_start=start, variants=variants)


def scrape(endpoint: str, model: str | None = None, timeout_s: float = 5.0) -> Snapshot:
    """Read ``<endpoint>/metrics``.

    Raises:
        ServiceUnreachableError: Nothing answered, or not with metrics.
    """
    url = endpoint.rstrip("/") + "/metrics"
    host = urllib.parse.urlsplit(url).hostname or ""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    handlers = [urllib.request.ProxyHandler({})] if loopback else []  # never via a proxy
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout_s) as response:
            text = response.read().decode("utf-8")
    except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors
        reason = getattr(error, "reason", error)
        raise ServiceUnreachableError(f"service not reachable at {endpoint} ({reason})") from None
    return parse_metrics(text, model)


# ---------------------------------------------------------------- judge


class VariantStats(BaseModel):
    """What one variant did over the window."""

    requests: float
    errors: float
    transactions: float = Field(description="Scored transactions (score histogram count).")
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    review_rate: float | None
    decline_rate: float | None
    fallback_rate: float | None

    @classmethod
    def of(cls, counts: VariantCounts) -> VariantStats:
        """The statistics of a window's counts (None where there is nothing to measure)."""
        decided = sum(counts.decisions.values())
        attempts = counts.requests + counts.errors

        def share(part: float, whole: float) -> float | None:
            return part / whole if whole > 0 else None

        p50, p99 = (histogram_quantile(q, counts.latency) for q in (0.5, 0.99))
        return cls(
            requests=counts.requests,
            errors=counts.errors,
            transactions=_cumulative(counts.scores)[1][-1] if counts.scores else 0.0,
            error_rate=share(counts.errors, attempts),
            p50_ms=None if p50 is None else p50 * 1000,
            p99_ms=None if p99 is None else p99 * 1000,
            review_rate=share(counts.decisions.get(REVIEW, 0.0), decided),
            decline_rate=share(counts.decisions.get(DECLINE, 0.0), decided),
            fallback_rate=share(counts.fallbacks, decided),
        )


class GateCheck(BaseModel):
    """One gate's verdict."""

    gate: str = Field(description="The CanarySettings field (env FRAUDRISK_CANARY__<GATE>).")
    value: float | None = Field(description="The measured value (None: nothing to measure).")
    limit: float
    verdict: Verdict


class Evaluation(BaseModel):
    """Champion against canary over the window, with the gates' verdicts."""

    variant: str = Field(description="The candidate's variant name (canary, challenger…).")
    champion: VariantStats
    canary: VariantStats
    score_psi: float | None
    score_ks: float | None
    gates: list[GateCheck]

    @property
    def verdict(self) -> Verdict:
        """Breach if any gate is breached, else insufficient if any lacks data, else pass."""
        verdicts = {check.verdict for check in self.gates}
        for verdict in ("breach", "insufficient"):
            if verdict in verdicts:
                return verdict
        return "pass"

    @property
    def breaches(self) -> list[str]:
        """``gate=value>limit`` for each breached gate."""
        return [f"{c.gate}={c.value:.4g}>{c.limit:g}" for c in self.gates if c.verdict == "breach"]


def histogram_quantile(q: float, cumulative: dict[str, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated linearly in its bucket.

    As Prometheus's ``histogram_quantile``: the first bucket starts at 0, and a quantile in the
    ``+Inf`` bucket is the highest finite bound. None when the histogram is empty.
    """
    bounds, counts = _cumulative(cumulative)
    if not len(counts) or counts[-1] <= 0:
        return None
    rank = q * float(counts[-1])
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds.tolist(), counts.tolist(), strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            return float(lower + (bound - lower) * (rank - below) / (count - below))
        lower, below = bound, count
    return lower


def score_psi(expected: dict[str, float], actual: dict[str, float]) -> float | None:
    """Population stability index between two cumulative histograms (same buckets).

    ``sum((a - e) * ln(a / e))`` over the buckets' shares, an empty bucket counting as
    ``1e-4``; None when either histogram is empty.
    """
    shares = _shares(expected, actual)
    if shares is None:
        return None
    e, a = (np.clip(s, _PSI_FLOOR, None) for s in shares)
    return float(np.sum((a - e) * np.log(a / e)))


def score_ks(expected: dict[str, float], actual: dict[str, float]) -> float | None:
    """Largest distance between the two distribution functions at the bucket bounds."""
    shares = _shares(expected, actual)
    if shares is None:
        return None
    e, a = (np.cumsum(s) for s in shares)
    return float(np.max(np.abs(e - a)))


def evaluate(window: Snapshot, variant: str, gates: CanaryGates) -> Evaluation:
    """Judge the candidate ``variant`` against the champion over a window."""
    none = VariantCounts()
    champion_counts = window.variants.get(STABLE, none)
    canary_counts = window.variants.get(variant, none)
    champion, canary = VariantStats.of(champion_counts), VariantStats.of(canary_counts)
    psi = score_psi(champion_counts.scores, canary_counts.scores)
    fewest = min(champion.requests, canary.requests)
    enough = fewest >= gates.min_requests
    checks = [
        GateCheck(
            gate="min_requests",
            value=fewest,
            limit=gates.min_requests,
            verdict="pass" if enough else "insufficient",
        )
    ]
    measured = {
        "max_error_rate": canary.error_rate,
        "max_p99_latency_ms": canary.p99_ms,
        "max_score_psi": psi,
        "max_review_rate_change": _change(champion.review_rate, canary.review_rate, absolute=True),
        "max_decline_rate_change": _change(champion.decline_rate, canary.decline_rate, True),
        "max_fallback_rate_change": _change(champion.fallback_rate, canary.fallback_rate, False),
    }
    for gate, value in measured.items():
        limit = float(getattr(gates, gate))
        verdict: Verdict = "pass" if value is not None and value <= limit else "breach"
        if not enough or value is None:
            verdict = "insufficient"
        checks.append(GateCheck(gate=gate, value=value, limit=limit, verdict=verdict))
    return Evaluation(
        variant=variant,
        champion=champion,
        canary=canary,
        score_psi=psi,
        score_ks=score_ks(champion_counts.scores, canary_counts.scores),
        gates=checks,
    )


def _change(before: float | None, after: float | None, absolute: bool) -> float | None:
    if before is None or after is None:
        return None
    return abs(after - before) if absolute else after - before


def _cumulative(histogram: dict[str, float]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    pairs = sorted((float(bound), count) for bound, count in histogram.items())
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.float64)


def _shares(
    first: dict[str, float], second: dict[str, float]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
    """Per-bucket shares of two cumulative histograms over the union of their bounds."""
    bounds = np.array(sorted({float(b) for b in (*first, *second)}))
    out = []
    for histogram in (first, second):
        own, counts = _cumulative(histogram)
        if not len(counts) or counts[-1] <= 0:
            return None
        at = np.searchsorted(own, bounds, side="right") - 1  # carry the last known count
        filled = np.where(at >= 0, counts[np.clip(at, 0, None)], 0.0)
        out.append(np.diff(filled, prepend=0.0) / filled[-1])
    return out[0], out[1]
