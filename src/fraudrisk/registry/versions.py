"""The MLflow model registry of the ``fraud-risk`` model: register, alias, promote.

A registered version is a ``mlflow.pyfunc`` model that returns the calibrated P(fraud) in a
``fraud_probability`` column, with its signature and input example, the run's params, metrics
and plots, and version tags: the Feast feature service and feature set version, the training
data reference, the decision thresholds (JSON) and the validation gate's verdict. A version that
passed the gate gets the alias ``challenger``; a rejected one is tagged
``validation_status=rejected`` and never gets an alias. ``champion`` is set only by
:func:`promote` or, once, by :func:`bootstrap_champion`.

URIs come from the settings; every function talks through an explicit ``MlflowClient`` and the
fluent API (``log_model``) only inside :func:`mlflow_uris`, which restores the global URIs on
exit. Embedded default: SQLite under ``FRAUDRISK_HOME`` with artifacts in ``HOME/mlartifacts``
(set on the experiment: MLflow's own default would be ``./mlruns`` in the working directory).
The served model unpickles :class:`FraudProbabilityModel`, so the serving image needs
``fraudrisk`` installed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field

from fraudrisk.config import MODEL_URI, Settings
from fraudrisk.features.definitions import FEATURE_SET_VERSION
from fraudrisk.features.feast_repo import SCORING_SERVICE
from fraudrisk.registry.mlflow_io import (
    PROBABILITY_COLUMN,
    FraudProbabilityModel,
    load_pyfunc,
    log_pyfunc,
    mlflow_client,
    mlflow_uris,
    normalise_metric_name,
    registry_uri,
)
from fraudrisk.schemas import Thresholds
from fraudrisk.vocab import CHALLENGER_ALIAS, CHAMPION_ALIAS, MODEL_NAME

# Re-exported: callers address the registry module for all of the model's MLflow side.
__all__ = [
    "MODEL_URI",
    "PROBABILITY_COLUMN",
    "FraudProbabilityModel",
    "load_pyfunc",
    "mlflow_uris",
    "registry_uri",
]
#: The registry aliases (see :mod:`fraudrisk.vocab`: aliases, not served variant names).
CHAMPION = CHAMPION_ALIAS
CHALLENGER = CHALLENGER_ALIAS
STATUS_TAG = "validation_status"
PASSED = "passed"
REJECTED = "rejected"
FEATURE_SERVICE_TAG = "feature_service"
FEATURE_SET_VERSION_TAG = "feature_set_version"
TRAINING_DATA_TAG = "training_data_ref"


class GateVerdict(Protocol):
    """What the registry records of the validation gate's verdict (a pydantic model)."""

    passed: bool

    def model_dump_json(self) -> str:
        """The verdict as JSON (a version tag)."""

    def model_dump(self, *, mode: str) -> dict[str, Any]:
        """The verdict as a dict (a run artifact)."""


THRESHOLDS_TAG = "decision_thresholds"
GATE_TAG = "gate_result"
_TAG_MAX_CHARS = 5000
_PARAM_MAX_CHARS = 6000


class RegistryOptions(BaseModel):
    """Registry settings that :class:`fraudrisk.config.Settings` does not hold (yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_name: str = Field(MODEL_NAME, description="Experiment of registration runs.")
    artifact_location: str = Field(
        "",
        description="Artifact root of a new experiment; empty = HOME/mlartifacts for a "
        "database store, the server's choice (proxied artifacts) for an http(s) server.",
    )


class RegisteredVersion(BaseModel):
    """One registered version and what the registration did with it."""

    name: str = Field(description="Registered model name.")
    version: str = Field(description="Version number (MLflow keeps it as a string).")
    run_id: str = Field(description="The run that logged the model.")
    model_uri: str = Field(description="``models:/<name>/<version>``.")
    alias: str | None = Field(description="``challenger`` when the gate passed, else None.")
    passed: bool = Field(description="The gate's verdict.")


def register_model(
    settings: Settings,
    model: Any,
    *,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    artifacts: Mapping[str, Path],
    feature_names: list[str],
    input_example: pd.DataFrame,
    training_data_ref: str,
    thresholds: Thresholds,
    gate_result: GateVerdict,
    run_name: str | None = None,
    options: RegistryOptions | None = None,
    reference_rows: pd.DataFrame | None = None,
) -> RegisteredVersion:
    """Log a run with the model and register it as a new version of ``fraud-risk``.

    Args:
        settings: The platform settings (URIs, model name, HOME).
        model: The calibrated classifier (``predict_proba``; column 1 = fraud).
        metrics: Test metrics (``card_precision@100`` is logged as ``card_precision_at_100``).
        params: Hyperparameters and recipe (values are logged as strings).
        artifacts: Files or directories to log, keyed by their path in the run
            (e.g. ``{"plots/reliability.png": Path(...)}``).
        feature_names: Model inputs, in order (the signature's columns).
        input_example: A few rows of inputs (becomes the input example).
        training_data_ref: Where the training data is (lake URI and period, dataset hash...).
        thresholds: The decision thresholds chosen on held-out data.
        gate_result: The validation gate's verdict.
        run_name: Name of the MLflow run.
        options: Experiment name and artifact location.
        reference_rows: The model's training rows: a seeded sample of them and the model's
            scores on it are logged as the version's monitoring reference (``reference/``,
            version tag ``monitoring_reference``). None = no reference.

    Returns:
        The new version, with its alias (``challenger``) when the gate passed.
    """
    options = options or RegistryOptions()
    name = settings.mlflow.model_name
    tags = _version_tags(training_data_ref, thresholds, gate_result)
    with mlflow_uris(settings) as explicit:
        experiment_id = _experiment_id(explicit, settings, options)
        nested = mlflow.active_run() is not None
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, tags=tags, nested=nested
        ) as run:
            _log_run(metrics, params, artifacts, thresholds, gate_result)
            info = log_pyfunc(model, feature_names, input_example, name)
            if reference_rows is not None:  # lazy: the monitoring package only when needed
                from fraudrisk.registry.references import REFERENCE_TAG, log_registration_reference

                tags[REFERENCE_TAG] = log_registration_reference(
                    settings, model, feature_names, reference_rows
                )
        version = str(info.registered_model_version)
        for key, value in tags.items():
            explicit.set_model_version_tag(name, version, key, value)
        alias = CHALLENGER if gate_result.passed else None
        if alias:
            explicit.set_registered_model_alias(name, alias, version)
    return RegisteredVersion(
        name=name,
        version=version,
        run_id=run.info.run_id,
        model_uri=f"models:/{name}/{version}",
        alias=alias,
        passed=gate_result.passed,
    )


def get_alias_version(settings: Settings, alias: str) -> str | None:
    """The version an alias points to, or None (no such alias or no registered model yet)."""
    try:
        found = mlflow_client(settings).get_model_version_by_alias(
            settings.mlflow.model_name, alias
        )
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return str(found.version)


def promote(settings: Settings, version: str | int, alias: str = CHAMPION) -> None:
    """Point ``alias`` (``champion`` by default) at a version.

    Args:
        settings: The platform settings.
        version: The version to promote.
        alias: The alias to move.

    Raises:
        ValueError: If the version was rejected by the validation gate.
    """
    name = settings.mlflow.model_name
    explicit = mlflow_client(settings)
    found = explicit.get_model_version(name, str(version))
    if found.tags.get(STATUS_TAG) == REJECTED:
        raise ValueError(f"{name} version {version} was rejected by the validation gate")
    explicit.set_registered_model_alias(name, alias, str(version))


def bootstrap_champion(settings: Settings, version: str | int) -> None:
    """Make a version the first champion.

    Args:
        settings: The platform settings.
        version: The version to make champion.

    Raises:
        ValueError: If a champion already exists (use :func:`promote`) or the version was
            rejected.
    """
    current = get_alias_version(settings, CHAMPION)
    if current is not None:
        raise ValueError(f"a champion already exists (version {current}); promote instead")
    promote(settings, version, CHAMPION)


def recorded_training_data(tags: Mapping[str, str]) -> dict[str, Any]:
    """What a version's ``training_data_ref`` tag records, with ``train_period`` parsed.

    Args:
        tags: The version's tags.

    Returns:
        The recorded reference (``table_uri``, ``holdout``…) plus ``train_start`` and
        ``train_end`` (dates, end exclusive) when the period is recorded; ``{}`` when the tag
        is missing or unreadable (versions registered by hand).
    """
    try:
        ref = json.loads(tags.get(TRAINING_DATA_TAG, ""))
    except json.JSONDecodeError:
        return {}
    if not isinstance(ref, dict):
        return {}
    period = str(ref.get("train_period", ""))
    if ".." in period:
        first, end = (dt.date.fromisoformat(day) for day in period.split("..", 1))
        ref |= {"train_start": first, "train_end": end}
    return ref


def champion_metrics(settings: Settings) -> dict[str, float] | None:
    """The metrics of the champion's registration run, or None when there is no champion."""
    version = get_alias_version(settings, CHAMPION)
    if version is None:
        return None
    explicit = mlflow_client(settings)
    found = explicit.get_model_version(settings.mlflow.model_name, version)
    if not found.run_id:
        return {}
    return dict(explicit.get_run(found.run_id).data.metrics)


def _experiment_id(explicit: MlflowClient, settings: Settings, options: RegistryOptions) -> str:
    """The registration experiment, created with its artifact root under HOME if local."""
    found = explicit.get_experiment_by_name(options.experiment_name)
    if found is not None:
        return str(found.experiment_id)
    location: str | None = options.artifact_location or None
    if location is None and urlparse(settings.mlflow_tracking_uri).scheme not in ("http", "https"):
        location = settings.mlflow_artifacts_uri
    return str(explicit.create_experiment(options.experiment_name, artifact_location=location))


def _version_tags(ref: str, thresholds: Thresholds, gate_result: GateVerdict) -> dict[str, str]:
    return {
        FEATURE_SERVICE_TAG: SCORING_SERVICE,
        FEATURE_SET_VERSION_TAG: FEATURE_SET_VERSION,
        TRAINING_DATA_TAG: ref[:_TAG_MAX_CHARS],
        THRESHOLDS_TAG: thresholds.model_dump_json()[:_TAG_MAX_CHARS],
        GATE_TAG: gate_result.model_dump_json()[:_TAG_MAX_CHARS],
        STATUS_TAG: PASSED if gate_result.passed else REJECTED,
    }


def _log_run(
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    artifacts: Mapping[str, Path],
    thresholds: Thresholds,
    gate_result: GateVerdict,
) -> None:
    """Log params, metrics, the given files, the thresholds and the gate verdict to the run."""
    mlflow.log_params({key: str(value)[:_PARAM_MAX_CHARS] for key, value in params.items()})
    mlflow.log_metrics({normalise_metric_name(k): float(v) for k, v in metrics.items()})
    mlflow.log_dict(thresholds.model_dump(mode="json"), "decision/thresholds.json")
    mlflow.log_dict(gate_result.model_dump(mode="json"), "decision/gate.json")
    with tempfile.TemporaryDirectory() as staging:
        for run_path, local in artifacts.items():
            target = Path(staging, run_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if Path(local).is_dir():
                shutil.copytree(local, target)
            else:
                shutil.copyfile(local, target)
        if artifacts:
            mlflow.log_artifacts(staging)
