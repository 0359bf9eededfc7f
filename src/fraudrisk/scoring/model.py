"""A served model: loaded once from the registry or a storage URI, then scored in-process fast.

:func:`load_model` resolves ``models:/fraud-risk@champion`` (or ``/<version>``, or a storage URI
of an MLflow model directory), reads what the registration recorded — the feature service, the
decision thresholds — and unwraps the calibrated classifier. For XGBoost the hot path skips the
scikit-learn wrappers: the trees walked in numpy (:mod:`fraudrisk.scoring.trees`, checked
equal to ``Booster.inplace_predict`` at load) give the raw probability and the fitted
calibration mapping turns it into the served one; :meth:`LoadedModel.contributions` gives the
per-feature SHAP values (XGBoost's TreeSHAP) behind the reason codes. Other model kinds are
served through ``predict_proba`` and have no reason codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudrisk.config import MODEL_URI, Settings
from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.schemas import Thresholds
from fraudrisk.scoring.trees import walked_probability
from fraudrisk.vocab import MODEL_NAME

Matrix = npt.NDArray[np.float32]
Vector = npt.NDArray[np.float64]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which model and why."""


@dataclass(frozen=True)
class ModelCard:
    """What the registry recorded with a version: identity, inputs and decision policy."""

    name: str
    version: str
    uri: str
    feature_names: tuple[str, ...]
    feature_service: str
    thresholds: Thresholds | None
    run_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score feature matrices (columns in ``card.feature_names`` order)."""

    card: ModelCard
    probability: Callable[[Matrix], Vector]
    contributions: Callable[[Matrix], Vector] | None
    kind: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model inputs, in the order of the matrix columns."""
        return self.card.feature_names


def load_model(settings: Settings, uri: str) -> LoadedModel:
    """Load a model for serving.

    Args:
        settings: Platform settings (MLflow URIs).
        uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, or the path/URI of an
            MLflow model directory (``s3://…/artifacts/model``).

    Returns:
        The loaded model with its card.

    Raises:
        ModelLoadError: If the URI is not found, the alias is not set, or the model is not one
            of ours (no ``fraud_probability`` pyfunc inside).
    """
    try:
        card, inner = _load(settings, uri)
    except ModelLoadError:
        raise
    except Exception as error:  # MLflow, storage and unpickling errors: one clear message
        raise ModelLoadError(f"cannot load {uri}: {type(error).__name__}: {error}") from error
    return _fast_model(card, inner)


def _load(settings: Settings, uri: str) -> tuple[ModelCard, Any]:
    # deferred: pulls mlflow (≈1 s) only when a model loads
    from fraudrisk.registry.mlflow_io import load_pyfunc

    match = MODEL_URI.match(uri)
    card = _registry_card(settings, match) if match else None
    target = f"models:/{card.name}/{card.version}" if card else uri
    pyfunc = load_pyfunc(settings, target)
    wrapper = pyfunc.unwrap_python_model()
    model, names = getattr(wrapper, "model", None), getattr(wrapper, "feature_names", None)
    if model is None or not names:
        raise ModelLoadError(f"{uri} is not a fraud-risk model (no fraud_probability wrapper)")
    if card is None:
        card = _storage_card(uri, pyfunc.metadata)
    return _with_features(card, tuple(names)), model


def _registry_card(settings: Settings, match: re.Match[str]) -> ModelCard:
    from mlflow.exceptions import MlflowException  # deferred: mlflow (≈1 s) only for a registry URI

    from fraudrisk.registry import versions as registry
    from fraudrisk.registry.mlflow_io import mlflow_client

    client = mlflow_client(settings)
    name = match["name"]
    try:
        if match["version"]:
            found = client.get_model_version(name, match["version"])
        else:
            found = client.get_model_version_by_alias(name, match["alias"])
    except MlflowException as error:
        what = f"version {match['version']}" if match["version"] else f"alias @{match['alias']}"
        raise ModelLoadError(f"registered model {name} has no {what}: {error.message}") from error
    tags = dict(found.tags)
    if tags.get(registry.STATUS_TAG) == registry.REJECTED:
        raise ModelLoadError(f"{name} version {found.version} was rejected by the validation gate")
    return ModelCard(
        name=name,
        version=str(found.version),
        uri=f"models:/{name}/{found.version}",
        feature_names=(),
        feature_service=tags.get(registry.FEATURE_SERVICE_TAG, ""),
        thresholds=_thresholds(tags.get(registry.THRESHOLDS_TAG)),
        run_id=found.run_id or "",
        tags=tags,
    )


def _storage_card(uri: str, metadata: Any) -> ModelCard:
    """The card of a model loaded by storage URI: from the MLflow model's own metadata."""
    recorded = dict(getattr(metadata, "metadata", None) or {})
    return ModelCard(
        name=str(recorded.get("registered_model_name", MODEL_NAME)),
        version=str(recorded.get("version", "storage")),
        uri=uri,
        feature_names=(),
        feature_service=str(recorded.get("feature_service", "")),
        thresholds=_thresholds(recorded.get("decision_thresholds")),
        run_id=str(getattr(metadata, "run_id", "") or ""),
    )


def _thresholds(recorded: Any) -> Thresholds | None:
    if not recorded:
        return None
    data = json.loads(recorded) if isinstance(recorded, str) else recorded
    return Thresholds.model_validate(data)


def _with_features(card: ModelCard, names: tuple[str, ...]) -> ModelCard:
    """The card with the model's inputs, checked against the definitions of the feature set."""
    unknown = [name for name in names if name not in FEATURE_NAMES]
    if unknown:
        raise ModelLoadError(
            f"{card.uri} needs features this feature set does not define: {unknown}"
        )
    return replace(card, feature_names=names)


def _fast_model(card: ModelCard, model: Any) -> LoadedModel:
    """The XGBoost fast path when the model is a calibrated booster, else ``predict_proba``."""
    base = getattr(model, "base_model", model)
    mapping = _calibration_mapping(model)
    if type(base).__module__.split(".")[0] == "xgboost" and mapping is not None:
        booster = base.get_booster()
        booster.set_param({"nthread": 1})  # single requests: threads cost more than they give
        return LoadedModel(
            card=card,
            probability=_booster_probability(booster, mapping),
            contributions=_booster_contributions(booster),
            kind="xgboost",
        )

    def probability(matrix: Matrix) -> Vector:
        return np.asarray(model.predict_proba(matrix)[:, 1], dtype=np.float64)

    return LoadedModel(card=card, probability=probability, contributions=None, kind="sklearn")


def _calibration_mapping(model: Any) -> Callable[[Vector], Vector] | None:
    """The fitted score→probability mapping of a :class:`CalibratedModel` as plain numpy.

    Equal to scikit-learn's ``predict`` of the fitted isotonic regression (clipped linear
    interpolation) or sigmoid (``expit(-(a·s + b))``) without its per-call input checks.
    """
    estimator = getattr(model, "estimator", None)
    fitted = getattr(estimator, "calibrated_classifiers_", None)
    if not fitted or len(fitted) != 1 or len(fitted[0].calibrators) != 1:
        return None
    calibrator = fitted[0].calibrators[0]
    if hasattr(calibrator, "X_thresholds_"):
        xs = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
        ys = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
        return lambda raw: np.interp(raw, xs, ys)
    if hasattr(calibrator, "a_"):
        a, b = float(calibrator.a_), float(calibrator.b_)
        return lambda raw: 1.0 / (1.0 + np.exp(a * raw + b))
    return None


def _booster_probability(
    booster: Any, mapping: Callable[[Vector], Vector]
) -> Callable[[Matrix], Vector]:
    """Calibrated probabilities: the trees walked in numpy when that equals the booster."""
    walked = walked_probability(booster, booster.num_features())

    def raw_probability(matrix: Matrix) -> Vector:
        # inplace_predict: no DMatrix per call (~0.1 ms less); nthread=1 set on the booster.
        return np.asarray(booster.inplace_predict(matrix), dtype=np.float64)

    raw = walked or raw_probability

    def probability(matrix: Matrix) -> Vector:
        return np.clip(mapping(raw(matrix)), 0.0, 1.0)

    return probability


def _booster_contributions(booster: Any) -> Callable[[Matrix], Vector]:
    from xgboost import DMatrix  # deferred: xgboost (≈1 s) only for reason codes

    def contributions(matrix: Matrix) -> Vector:
        values = booster.predict(DMatrix(matrix, nthread=1), pred_contribs=True)
        return np.asarray(values, dtype=np.float64)

    return contributions
