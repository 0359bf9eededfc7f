"""How much of a model's decisions each feature carries: the weights of the weighted drift verdict.

A drifted feature matters as much as the model leans on it. The weight of a feature is its
mean |contribution| — XGBoost's TreeSHAP (``pred_contribs``, log-odds), the values behind the
reason codes — over the model's reference rows (the sample a drift report compares a window
with), normalised to sum to 1. The weighted drift share of a window is the sum of the weights
of its drifted features: the share of the model's decision mass that moved.

The weights are computed once per reference and cached beside it, as
``reference/importance.json`` in the version's MLflow run, stamped with the reference they were
computed on (its creation time, rows, seed, period and features): a reference rebuilt with
``fraudrisk monitor reference --force`` gets new weights on its next report. A model without
per-feature contributions (not XGBoost) has no weights, and its verdict is the column share.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudrisk.config import Settings
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.references import (
    ARTIFACT_DIR,
    REFERENCE_TAG,
    Reference,
    no_progress_bar,
)
from fraudrisk.scoring.model import LoadedModel

log = logging.getLogger(__name__)

WEIGHTS_FILE = "importance.json"
#: What the weights are the mean of.
METHOD = "mean |TreeSHAP contribution| (XGBoost pred_contribs, log-odds) over the reference rows"
#: The reference's ``meta.json`` keys that identify it: new values, new weights.
_STAMP_KEYS = ("created_at", "rows", "seed", "period", "source_rows", "feature_names")


@dataclass(frozen=True)
class FeatureWeights:
    """A model's importance weights over its reference.

    Attributes:
        weights: Feature → share of the model's mean |contribution| (sums to 1), in the
            model's feature order.
        mean_abs: Feature → mean |contribution| itself (log-odds).
        rows: Reference rows the means are over.
        stamp: The reference they were computed on (keys of its ``meta.json``).
        method: What the weights are.
    """

    weights: dict[str, float]
    mean_abs: dict[str, float]
    rows: int
    stamp: dict[str, Any] = field(default_factory=dict)
    method: str = METHOD

    def as_json(self) -> dict[str, Any]:
        """The cached document (``reference/importance.json``)."""
        return {
            "method": self.method,
            "rows": self.rows,
            "reference": self.stamp,
            "weights": self.weights,
            "mean_abs": self.mean_abs,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> FeatureWeights:
        """Read a document written by :meth:`as_json`."""
        return cls(
            weights={str(k): float(v) for k, v in document["weights"].items()},
            mean_abs={str(k): float(v) for k, v in document["mean_abs"].items()},
            rows=int(document["rows"]),
            stamp=dict(document.get("reference", {})),
            method=str(document.get("method", METHOD)),
        )


def importance_weights(
    contributions: npt.NDArray[np.float64], feature_names: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Normalised mean |contribution| per feature, and the means themselves.

    Args:
        contributions: Per-row contributions, shape ``(rows, features)`` or ``(rows,
            features + 1)`` with the bias last (XGBoost's layout; the bias is no feature).
        feature_names: The model's features, in column order.

    Returns:
        ``(weights, mean_abs)``: weights sum to 1 (equal when the model uses no feature).

    Raises:
        ValueError: If there are no rows or the columns do not match the features.
    """
    count = len(feature_names)
    if contributions.ndim != 2 or contributions.shape[1] not in (count, count + 1):
        raise ValueError(f"contributions of shape {contributions.shape} for {count} features")
    if not len(contributions):
        raise ValueError("no rows to average contributions over")
    mean_abs = np.abs(contributions[:, :count]).mean(axis=0)
    total = float(mean_abs.sum())
    shares = mean_abs / total if total > 0 else np.full(count, 1.0 / count)
    return (
        dict(zip(feature_names, shares.tolist(), strict=True)),
        dict(zip(feature_names, mean_abs.tolist(), strict=True)),
    )


def weighted_share(drifted: Iterable[str], weights: dict[str, float]) -> float:
    """The share of the model's importance held by the ``drifted`` features."""
    return float(sum(weights.get(name, 0.0) for name in set(drifted)))


def compute_weights(model: LoadedModel, reference: Reference) -> FeatureWeights | None:
    """The model's weights over its reference rows; None without per-feature contributions."""
    if model.contributions is None:
        return None
    names = model.feature_names
    matrix = reference.rows[list(names)].to_numpy(np.float32)
    weights, mean_abs = importance_weights(np.asarray(model.contributions(matrix)), names)
    return FeatureWeights(weights, mean_abs, len(matrix), stamp_of(reference))


def stamp_of(reference: Reference) -> dict[str, Any]:
    """What identifies a reference (from its ``meta.json``), JSON-ready."""
    meta = reference.meta
    return {key: _plain(meta[key]) for key in _STAMP_KEYS if key in meta}


def reference_weights(
    settings: Settings, model: LoadedModel, reference: Reference
) -> FeatureWeights | None:
    """The weights cached with the reference; computed (and cached) when it has none yet.

    Args:
        settings: Platform settings (the MLflow registry holding the reference).
        model: The registered version the reference belongs to.
        reference: Its reference.

    Returns:
        The weights, or None when the model gives no per-feature contributions.
    """
    if model.contributions is None:
        return None
    run_id = _reference_run(model)
    stamp = stamp_of(reference)
    cached = _read_cached(settings, run_id) if run_id else None
    if (
        cached is not None
        and cached.stamp == stamp
        and set(cached.weights) == set(model.feature_names)
    ):
        return cached
    weights = compute_weights(model, reference)
    if weights is not None and run_id:
        _write_cached(settings, run_id, weights)
    return weights


def _reference_run(model: LoadedModel) -> str:
    """The run the reference is logged to (its tag ``runs:/<run id>/reference``)."""
    location = model.card.tags.get(REFERENCE_TAG, "")
    if location.startswith("runs:/"):
        return location.removeprefix("runs:/").split("/", 1)[0]
    return model.card.run_id


def _read_cached(settings: Settings, run_id: str) -> FeatureWeights | None:
    """The cached weights of the run, or None (none yet, unreadable: computed again)."""
    client = mlflow_client(settings)
    try:
        listed = {Path(item.path).name for item in client.list_artifacts(run_id, ARTIFACT_DIR)}
        if WEIGHTS_FILE not in listed:
            return None
        with tempfile.TemporaryDirectory() as staging, no_progress_bar():
            local = client.download_artifacts(run_id, f"{ARTIFACT_DIR}/{WEIGHTS_FILE}", staging)
            return FeatureWeights.from_json(json.loads(Path(local).read_text()))
    except Exception as error:  # an unreadable cache is recomputed, never fatal
        log.warning("cached importance weights of run %s unreadable: %s", run_id, error)
        return None


def _write_cached(settings: Settings, run_id: str, weights: FeatureWeights) -> None:
    """Log the weights beside the reference; a registry that refuses keeps the report going."""
    try:
        with tempfile.TemporaryDirectory() as staging:
            path = Path(staging) / WEIGHTS_FILE
            path.write_text(json.dumps(weights.as_json(), indent=1))
            mlflow_client(settings).log_artifact(run_id, str(path), ARTIFACT_DIR)
    except Exception as error:  # read-only registry, storage down: recomputed next time
        log.warning("importance weights not cached with the reference of run %s: %s", run_id, error)


def _plain(value: Any) -> Any:
    """A meta value as JSON gives it back (lists for tuples, text for dates)."""
    return json.loads(json.dumps(value, default=str))
