"""Each registered model's reference: a sample of its training feature rows and their scores.

A drift report compares a window with the reference of the model that scores it. The
reference is a seeded sample of ``settings.monitoring.reference_rows`` training rows (the
model's feature columns, with ``transaction_id`` and ``tx_datetime`` when known) and the
model's calibrated risk score of each row. It is logged with the version's run as
``reference/features.parquet``, ``reference/scores.parquet`` and ``reference/meta.json``; the
version tag ``monitoring_reference`` points at it (``runs:/<run id>/reference``).

:func:`log_registration_reference` writes it while a version is registered; a version
registered before references existed gets one from :mod:`fraudrisk.monitoring.backfill`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from fraudrisk.config import MODEL_URI, Settings
from fraudrisk.errors import MonitoringError
from fraudrisk.features.table_rows import (
    as_feature_frame,
    sample_rows,
)
from fraudrisk.registry.mlflow_io import PROBABILITY_COLUMN, FraudProbabilityModel, mlflow_client

REFERENCE_TAG = "monitoring_reference"
ARTIFACT_DIR = "reference"
SCORE_COLUMN = "risk_score"
#: Seed of the reference sample: the same training rows give the same reference.
REFERENCE_SEED = 20180401
_FEATURES, _SCORES, _META = "features.parquet", "scores.parquet", "meta.json"
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"

Probability = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Reference:
    """A model's reference rows: ids (when known), its features and its risk score."""

    feature_names: tuple[str, ...]
    rows: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def scores(self) -> pd.Series:
        """The model's calibrated risk score of each reference row."""
        return self.rows[SCORE_COLUMN]


def build_reference(
    rows: pd.DataFrame,
    feature_names: tuple[str, ...],
    probability: Probability,
    size: int,
    provenance: dict[str, Any],
) -> Reference:
    """Sample ``size`` rows (fixed seed) and score them.

    Args:
        rows: Training rows holding every feature column.
        feature_names: The model's inputs, in order.
        probability: The model: feature frame (float32, that order) → calibrated P(fraud).
        size: Rows to keep (all of them when there are fewer).
        provenance: Where the rows came from (recorded in ``meta.json``).

    Raises:
        MonitoringError: If there are no rows or a feature column is missing.
    """
    missing = [name for name in feature_names if name not in rows.columns]
    if missing:
        raise MonitoringError(f"the reference rows lack the model's feature(s) {missing}")
    if rows.empty:
        raise MonitoringError("no training rows to build the reference from")
    sample = as_feature_frame(sample_rows(rows, size, REFERENCE_SEED), feature_names)
    inputs = sample[list(feature_names)].astype(np.float32)
    sample[SCORE_COLUMN] = np.asarray(probability(inputs), dtype=np.float64)
    meta = provenance | {
        "rows": len(sample),
        "source_rows": len(rows),
        "seed": REFERENCE_SEED,
        "feature_names": list(feature_names),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return Reference(feature_names, sample, meta)


def write_reference(reference: Reference, directory: Path) -> Path:
    """Write the three reference files into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = [name for name in ("transaction_id",) if name in reference.rows.columns]
    reference.rows.drop(columns=SCORE_COLUMN).to_parquet(directory / _FEATURES, index=False)
    reference.rows[[*ids, SCORE_COLUMN]].to_parquet(directory / _SCORES, index=False)
    (directory / _META).write_text(json.dumps(reference.meta, indent=2, default=str))
    return directory


def read_reference(directory: Path) -> Reference:
    """Read a reference written by :func:`write_reference`."""
    meta = json.loads((directory / _META).read_text())
    features = pd.read_parquet(directory / _FEATURES)
    scores = pd.read_parquet(directory / _SCORES)
    rows = features.assign(**{SCORE_COLUMN: scores[SCORE_COLUMN].to_numpy()})
    return Reference(tuple(meta["feature_names"]), rows, meta)


def log_registration_reference(
    settings: Settings, model: Any, feature_names: list[str], rows: pd.DataFrame
) -> str:
    """Build the reference of a model being registered and log it to the active MLflow run.

    Args:
        settings: Platform settings (``monitoring.reference_rows``).
        model: The calibrated classifier being registered (``predict_proba``).
        feature_names: Its inputs, in order.
        rows: Its training rows.

    Returns:
        The reference's URI, ``runs:/<run id>/reference`` (the version tag's value).
    """
    wrapper = FraudProbabilityModel(model, feature_names)

    def probability(frame: pd.DataFrame) -> np.ndarray:
        return wrapper.predict(None, frame)[PROBABILITY_COLUMN].to_numpy()

    reference = build_reference(
        rows,
        tuple(feature_names),
        probability,
        settings.monitoring.reference_rows,
        {"source": "registration", "period": _period_of(rows)},
    )
    run = mlflow.active_run()
    if run is None:
        raise MonitoringError("the reference is logged inside the registration run")
    with tempfile.TemporaryDirectory() as staging:
        mlflow.log_artifacts(str(write_reference(reference, Path(staging))), ARTIFACT_DIR)
    return f"runs:/{run.info.run_id}/{ARTIFACT_DIR}"


def _period_of(rows: pd.DataFrame) -> str:
    if "tx_datetime" not in rows.columns or rows.empty:
        return ""
    stamps = pd.to_datetime(rows["tx_datetime"])
    return f"{stamps.min().date()}..{stamps.max().date()}"


def resolve_version(settings: Settings, model_uri: str) -> ModelVersion:
    """The registry version behind ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    Raises:
        MonitoringError: If the URI is not a registry URI or names no registered version.
    """
    match = MODEL_URI.match(model_uri)
    if match is None:
        raise MonitoringError(
            f"not a registry model URI: {model_uri!r} (use models:/NAME/VERSION or "
            "models:/NAME@ALIAS)"
        )
    client = mlflow_client(settings)
    try:
        if match["version"]:
            return client.get_model_version(match["name"], match["version"])
        return client.get_model_version_by_alias(match["name"], match["alias"])
    except MlflowException as error:
        raise MonitoringError(f"no registered model {model_uri}: {error.message}") from None


def load_reference(settings: Settings, model_uri: str) -> Reference:
    """The reference logged with a registered version.

    Raises:
        MonitoringError: If the URI names no version, or the version has no reference (build
            one with ``fraudrisk monitor reference``, :mod:`fraudrisk.monitoring.backfill`).
    """
    version = resolve_version(settings, model_uri)
    location = dict(version.tags).get(REFERENCE_TAG)
    if not location or not version.run_id:
        raise MonitoringError(
            f"{version.name} version {version.version} has no reference: build one from its "
            f"training period with `fraudrisk monitor reference --model {model_uri}`"
        )
    with tempfile.TemporaryDirectory() as staging:
        client = mlflow_client(settings)
        try:
            with no_progress_bar():
                local = client.download_artifacts(version.run_id, ARTIFACT_DIR, staging)
        except (MlflowException, OSError) as error:
            raise MonitoringError(
                f"cannot read the reference of {version.name} version {version.version} "
                f"({location}): {error}"
            ) from None
        reference = read_reference(Path(local))
    meta = reference.meta | {"model_name": version.name, "version": str(version.version)}
    return Reference(reference.feature_names, reference.rows, meta)


@contextlib.contextmanager
def no_progress_bar() -> Iterator[None]:
    """MLflow's download progress bar off: small files, and stderr is for messages."""
    saved = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = saved
