"""References for versions registered without one: built from their training period.

The rows are the feature table's over the training period the version recorded in its
``training_data_ref`` tag (``train_period``, end exclusive, and ``table_uri``) unless given;
they are sampled and scored as at registration, logged to the version's run and the version
tagged, so the next report loads it like any other.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities.model_registry import ModelVersion

from fraudrisk.config import Settings
from fraudrisk.errors import MonitoringError
from fraudrisk.features.table_rows import read_feature_days
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.references import (
    ARTIFACT_DIR,
    REFERENCE_TAG,
    Reference,
    build_reference,
    load_reference,
    resolve_version,
    write_reference,
)
from fraudrisk.registry.versions import recorded_training_data
from fraudrisk.scoring.model import ModelLoadError, load_model


def ensure_reference(settings: Settings, model_uri: str) -> Reference:
    """The version's reference, built from its recorded training period when it has none."""
    version = resolve_version(settings, model_uri)
    if dict(version.tags).get(REFERENCE_TAG):
        return load_reference(settings, model_uri)
    try:
        return build_missing_reference(settings, model_uri)
    except MonitoringError as error:
        raise MonitoringError(
            f"{model_uri} has no reference and none can be built from what it recorded "
            f"({error}): build one with `fraudrisk monitor reference --model {model_uri} "
            "--start DAY --end DAY`"
        ) from None


def build_missing_reference(
    settings: Settings,
    model_uri: str,
    *,
    table_uri: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Reference:
    """Build the reference of a version registered without one, and log it to its run.

    The rows are the feature table's over the training period recorded in the version's
    ``training_data_ref`` tag (``train_period``, end exclusive, and ``table_uri``), unless
    ``table_uri`` / ``start`` / ``end`` (inclusive) are given.

    Raises:
        MonitoringError: If the period or the table is not recorded nor given, or the table
            has no rows there.
    """
    version = resolve_version(settings, model_uri)
    recorded = _recorded_training(dict(version.tags))
    table = table_uri or recorded.get("table_uri") or settings.feature_table_uri
    first, last = start or recorded.get("start"), end or recorded.get("end")
    if first is None or last is None:
        raise MonitoringError(
            f"{version.name} version {version.version} records no training period: give "
            "--start and --end (the days it was trained on)"
        )
    try:
        model = load_model(settings, f"models:/{version.name}/{version.version}")
    except ModelLoadError as error:
        raise MonitoringError(str(error)) from None
    rows = read_feature_days(settings, table, first, last, model.feature_names)
    if rows.empty:
        raise MonitoringError(f"the feature table at {table} has no rows in {first}..{last}")
    reference = build_reference(
        rows,
        model.feature_names,
        lambda frame: model.probability(frame.to_numpy(np.float32)),
        settings.monitoring.reference_rows,
        {"source": "feature table", "table_uri": table, "period": f"{first}..{last}"},
    )
    _log_to_version(settings, version, reference)
    return Reference(
        reference.feature_names,
        reference.rows,
        reference.meta | {"model_name": version.name, "version": str(version.version)},
    )


def _recorded_training(tags: dict[str, str]) -> dict[str, Any]:
    """``table_uri``, ``start`` and ``end`` (inclusive) of the recorded training period."""
    ref = recorded_training_data(tags)
    found: dict[str, Any] = {"table_uri": ref.get("table_uri")}
    if "train_start" in ref:
        found |= {"start": ref["train_start"], "end": ref["train_end"] - dt.timedelta(days=1)}
    return found


def _log_to_version(settings: Settings, version: ModelVersion, reference: Reference) -> None:
    """Log the reference to the version's run and tag the version with it."""
    if not version.run_id:
        raise MonitoringError(f"{version.name} version {version.version} has no run to log to")
    client = mlflow_client(settings)
    with tempfile.TemporaryDirectory() as staging:
        directory = write_reference(reference, Path(staging))
        client.log_artifacts(version.run_id, str(directory), ARTIFACT_DIR)
    location = f"runs:/{version.run_id}/{ARTIFACT_DIR}"
    client.set_model_version_tag(version.name, str(version.version), REFERENCE_TAG, location)
