"""The training pipeline: dataset → tune → train → calibrate → evaluate → validate → register."""

from pathlib import Path

from fraudrisk.components.build_dataset import build_dataset
from fraudrisk.components.calibrate import calibrate
from fraudrisk.components.evaluate import evaluate
from fraudrisk.components.register import register
from fraudrisk.components.train import train
from fraudrisk.components.tune import tune
from fraudrisk.components.validate import validate
from kfp import compiler, dsl


@dsl.pipeline(name="training", description="Tune, train, calibrate, gate and register.")
def training_pipeline(
    table_uri: str,
    lake_uri: str,
    n_trials: int = 20,
    timeout_s: float = 0.0,
    window_days: int = 56,
    model: str = "xgboost",
    storage: str = "",
    bootstrap: bool = False,
    gate: dict = {},  # noqa: B006 -- KFP parameter default
    costs: dict = {},  # noqa: B006 -- KFP parameter default
) -> None:
    """Wire the stages; ``register`` runs only when ``validate`` passed."""
    dataset = build_dataset(table_uri=table_uri, lake_uri=lake_uri)
    tuned = tune(
        dataset=dataset.outputs["dataset"],
        n_trials=n_trials,
        timeout_s=timeout_s,
        window_days=window_days,
        model=model,
        storage=storage,
    )
    trained = train(dataset=dataset.outputs["dataset"], recipe=tuned.outputs["recipe"])
    calibrated = calibrate(
        dataset=dataset.outputs["dataset"],
        recipe=tuned.outputs["recipe"],
        model=trained.outputs["model"],
    )
    evaluated = evaluate(
        dataset=dataset.outputs["dataset"],
        recipe=tuned.outputs["recipe"],
        calibrated_model=calibrated.outputs["calibrated_model"],
        costs=costs,
    )
    verdict = validate(
        dataset=dataset.outputs["dataset"],
        recipe=tuned.outputs["recipe"],
        calibrated_model=calibrated.outputs["calibrated_model"],
        evaluation=evaluated.outputs["evaluation"],
        gate=gate,
    )
    with dsl.If(verdict.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
        register(
            dataset=dataset.outputs["dataset"],
            recipe=tuned.outputs["recipe"],
            calibrated_model=calibrated.outputs["calibrated_model"],
            reliability_plot=calibrated.outputs["reliability_plot"],
            evaluation=evaluated.outputs["evaluation"],
            gate_result=verdict.outputs["gate_result"],
            bootstrap=bootstrap,
        )


def compile_pipeline(out_path: Path | str) -> Path:
    """Write the KFP IR YAML of :func:`training_pipeline` to ``out_path``."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(training_pipeline, str(out))
    return out
