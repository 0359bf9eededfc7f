"""Read the training results back from MLflow: versions, aliases, metrics and plots.

What a data scientist looks at after a run (``notebooks/01-launch-training.ipynb``) and what
``make demo`` prints: every registered version of ``fraud-risk`` with its aliases and gate
status, one version's test metrics beside the book's best, and its plots downloaded from the
registration run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from fraudrisk.config import Settings
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.versions import STATUS_TAG
from fraudrisk.training.steps import BOOK_BEST

#: Headline metrics: test-fold means under the handbook protocol (the gate's metrics).
HEADLINE = ("average_precision", "card_precision_at_100", "auc_roc")


def _versions(settings: Settings) -> list[ModelVersion]:
    name = settings.mlflow.model_name
    return list(mlflow_client(settings).search_model_versions(f"name = '{name}'"))


def latest_version(settings: Settings) -> str | None:
    """The highest registered version of the model, or None when none is registered."""
    numbers = [int(found.version) for found in _versions(settings)]
    return str(max(numbers)) if numbers else None


def _run_id(settings: Settings, version: str) -> str:
    """The registration run of a version.

    Raises:
        ValueError: If the version was registered without a run.
    """
    found = mlflow_client(settings).get_model_version(settings.mlflow.model_name, version)
    if not found.run_id:
        raise ValueError(f"version {version} has no registration run")
    return str(found.run_id)


def _run_metrics(settings: Settings, version: str) -> dict[str, float]:
    """The metrics of a version's registration run."""
    return dict(mlflow_client(settings).get_run(_run_id(settings, version)).data.metrics)


def aliases(settings: Settings, version: str) -> list[str]:
    """The aliases pointing at ``version`` now, sorted."""
    found = mlflow_client(settings).get_model_version(settings.mlflow.model_name, version)
    return sorted(found.aliases)


def registered_versions(settings: Settings) -> pd.DataFrame:
    """Every registered version, newest first: aliases, gate status, run and headline metrics."""
    client = mlflow_client(settings)
    found = _versions(settings)
    by_version: dict[str, list[str]] = {}
    if found:  # a search leaves ``aliases`` empty: the registered model holds them
        model = client.get_registered_model(settings.mlflow.model_name)
        for alias, version in sorted(model.aliases.items()):
            by_version.setdefault(str(version), []).append(alias)
    rows = [
        {
            "version": int(item.version),
            "aliases": ", ".join(by_version.get(str(item.version), [])),
            "status": item.tags.get(STATUS_TAG, ""),
            "registered": pd.to_datetime(item.creation_timestamp, unit="ms", utc=True),
            "run_id": item.run_id,
        }
        | _headline(client.get_run(item.run_id).data.metrics if item.run_id else {})
        for item in found
    ]
    columns = ["version", "aliases", "status", "registered", "run_id", *HEADLINE]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("version", ascending=False).set_index("version")


def _headline(metrics: dict[str, float]) -> dict[str, float | None]:
    return {name: metrics.get(name) for name in HEADLINE}


def version_metrics(settings: Settings, version: str) -> pd.DataFrame:
    """A version's headline metrics: test folds (mean, std), baseline fold, the book's best."""
    metrics = _run_metrics(settings, version)
    table = {
        "test folds (mean)": {name: metrics.get(name) for name in HEADLINE},
        "test folds (std)": {name: metrics.get(f"test_std_{name}") for name in HEADLINE},
        "baseline fold": {name: metrics.get(f"baseline_{name}") for name in HEADLINE},
        "book best": {name: BOOK_BEST[name] for name in HEADLINE},
    }
    return pd.DataFrame(table).rename_axis("metric")


def scenario_recall(settings: Settings, version: str) -> pd.Series:
    """Share of each scenario's frauds caught with analysts reviewing 100 cards a day."""
    metrics = _run_metrics(settings, version)
    recall = {k.removeprefix("recall_"): v for k, v in metrics.items() if k.startswith("recall_")}
    return pd.Series(recall, name="recall at 100 cards/day").sort_index()


def download_plots(settings: Settings, version: str, dest: Path) -> dict[str, Path]:
    """Download a version's ``plots/`` from its registration run into ``dest``.

    Returns:
        Each PNG by name without suffix (``pr_curve``, ``reliability``, ``shap_summary``, ...).
    """
    dest.mkdir(parents=True, exist_ok=True)
    client = mlflow_client(settings)
    local = Path(client.download_artifacts(_run_id(settings, version), "plots", str(dest)))
    return {png.stem: png for png in sorted(local.glob("*.png"))}
