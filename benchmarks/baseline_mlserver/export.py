"""Export the champion's XGBoost booster into an MLServer model repository.

The booster is the very one our scorer serves (``base_model`` of the registered
:class:`~fraudrisk.training.calibrate.CalibratedModel`), saved with XGBoost's own
``save_model`` (JSON, classifier metadata kept so ``mlserver_xgboost`` loads it as an
``XGBClassifier`` and answers ``predict_proba``). Beside it: ``model-settings.json``
(implementation ``mlserver_xgboost.XGBoostModel``) and ``feature_names.json`` (the model's
input order, which the feature-lookup hop follows). Run in the project's venv::

    python benchmarks/baseline_mlserver/export.py --out DIR [--model-uri URI]

``FRAUDRISK_HOME`` says where the registry is. Prints one JSON line: model name, version, path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fraudrisk.vocab import CHAMPION_URI

MODEL_NAME = "fraud-risk-xgb"
IMPLEMENTATION = "mlserver_xgboost.XGBoostModel"


def load_booster_model(model_uri: str) -> tuple[Any, list[str]]:
    """The champion's ``XGBClassifier`` and its feature names, from the registry.

    Raises:
        SystemExit: If the model is not a calibrated XGBoost of ours.
    """
    from fraudrisk.config import get_settings
    from fraudrisk.registry.mlflow_io import load_pyfunc

    wrapper = load_pyfunc(get_settings(), model_uri).unwrap_python_model()
    model = getattr(wrapper, "model", None)
    base = getattr(model, "base_model", model)
    if type(base).__module__.split(".")[0] != "xgboost":
        raise SystemExit(f"{model_uri} is not an XGBoost model ({type(base).__name__})")
    return base, list(wrapper.feature_names)


def registry_version(model_uri: str) -> str:
    """The registered version behind ``models:/name@alias`` or ``models:/name/N`` (else the URI)."""
    import re

    from fraudrisk.config import get_settings
    from fraudrisk.registry.mlflow_io import mlflow_client

    match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", model_uri)
    if match is None:
        return model_uri
    name, version, alias = match.groups()
    if version:
        return version
    return str(mlflow_client(get_settings()).get_model_version_by_alias(name, alias).version)


def write_repository(out: Path, classifier: Any, features: list[str], version: str) -> Path:
    """Write the MLServer model directory ``out/<MODEL_NAME>``; returns it."""
    folder = out / MODEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    classifier.save_model(str(folder / "model.json"))
    settings = {
        "name": MODEL_NAME,
        "implementation": IMPLEMENTATION,
        "parameters": {"uri": "./model.json", "version": version},
    }
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2))
    (folder / "feature_names.json").write_text(json.dumps(features))
    return folder


def main() -> None:
    """Export the booster named by ``--model-uri`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="MLServer repository root.")
    parser.add_argument("--model-uri", default=CHAMPION_URI)
    args = parser.parse_args()
    classifier, features = load_booster_model(args.model_uri)
    trees = len(classifier.get_booster().get_dump())
    folder = write_repository(args.out, classifier, features, registry_version(args.model_uri))
    print(json.dumps({"model": MODEL_NAME, "trees": trees, "path": str(folder)}))


if __name__ == "__main__":
    main()
