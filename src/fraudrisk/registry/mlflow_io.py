"""MLflow plumbing: clients on the configured URIs, and the served ``fraud_probability`` model.

URIs come from the settings; the fluent API is pointed at them only inside :func:`mlflow_uris`,
which restores the global URIs (and their environment variables) on exit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

from fraudrisk.config import Settings

PROBABILITY_COLUMN = "fraud_probability"
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class FraudProbabilityModel(PythonModel):
    """The served model: feature columns in, one ``fraud_probability`` column out."""

    def __init__(self, model: Any, feature_names: list[str]) -> None:
        self.model = model
        self.feature_names = list(feature_names)

    # ``pd.DataFrame`` is a hint MLflow 3 accepts without inferring a signature from it (the
    # explicit signature rules); ``Any`` or no hint at all make it warn at every log/load.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Calibrated P(fraud) of each row.

        Args:
            context: MLflow's model context (unused).
            model_input: A DataFrame with the feature columns (any order, extra ones ignored).
            params: Unused inference parameters.

        Returns:
            A DataFrame with one ``fraud_probability`` column, aligned with the input.
        """
        frame = pd.DataFrame(model_input)[self.feature_names]
        proba = self.model.predict_proba(frame)[:, 1]
        return pd.DataFrame({PROBABILITY_COLUMN: proba}, index=frame.index)


def registry_uri(settings: Settings) -> str:
    """The registry URI: ``mlflow.registry_uri`` or else the tracking URI."""
    return settings.mlflow.registry_uri or settings.mlflow_tracking_uri


def mlflow_client(settings: Settings) -> MlflowClient:
    """An explicit client on the configured URIs (the SQLite directory is created if needed)."""
    tracking = settings.mlflow_tracking_uri
    for uri in {tracking, registry_uri(settings)}:
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=tracking, registry_uri=registry_uri(settings))


@contextlib.contextmanager
def mlflow_uris(settings: Settings) -> Iterator[MlflowClient]:
    """Point the fluent MLflow API at the settings' URIs for the block, then restore them.

    Args:
        settings: The platform settings.

    Yields:
        A client on the same URIs.
    """
    explicit = mlflow_client(settings)
    saved_env = {name: os.environ.get(name) for name in _URI_ENV}
    saved_tracking, saved_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(registry_uri(settings))
    try:
        yield explicit
    finally:
        tracking_utils.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]  # None = unset
        registry_utils._registry_uri = saved_registry
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_pyfunc(settings: Settings, model_uri: str) -> Any:
    """Load a model (e.g. ``models:/fraud-risk@champion``) through the configured URIs."""
    with mlflow_uris(settings):
        return mlflow.pyfunc.load_model(model_uri)


def log_pyfunc(
    model: Any, feature_names: list[str], input_example: pd.DataFrame, name: str
) -> ModelInfo:
    """Log the pyfunc wrapper with its signature and input example, registered as ``name``."""
    wrapper = FraudProbabilityModel(model, feature_names)
    example = input_example[list(feature_names)]
    signature = infer_signature(example, wrapper.predict(None, example))
    info: ModelInfo = mlflow.pyfunc.log_model(
        name="model",
        python_model=wrapper,
        signature=signature,
        input_example=example,
        registered_model_name=name,
        pip_requirements=_pip_requirements(model),
    )
    return info


def _pip_requirements(model: Any) -> list[str]:
    """Pinned requirements of the served model (explicit: inference would load it again)."""
    packages = ["mlflow", "scikit-learn", "pandas", "numpy", "cloudpickle"]
    inner = getattr(model, "base_model", model)
    if type(inner).__module__.split(".")[0] == "xgboost":
        packages.append("xgboost")
    return [f"{package}=={version(package)}" for package in packages]


def normalise_metric_name(name: str) -> str:
    """The MLflow-safe form of a metric name (``@`` becomes ``_at_``).

    Args:
        name: A metric name, e.g. ``card_precision@100``.

    Returns:
        The name with ``@`` replaced, e.g. ``card_precision_at_100``.
    """
    return name.replace("@", "_at_")
