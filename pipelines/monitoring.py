"""The monitoring pipeline: check drift and labelled performance → retrain on a trigger.

Each check's ``trigger_retraining`` runs only when that check triggered (``dsl.If``); the
trigger's ledger still fires at most once per cause per cool-down, whatever the schedule.
Caching is off: the same arguments must check the newest data on every scheduled run.
"""

from pathlib import Path

from fraudrisk.components.check_drift import check_drift
from fraudrisk.components.check_performance import check_performance
from fraudrisk.components.trigger_retraining import trigger_retraining
from kfp import compiler, dsl

from fraudrisk.vocab import CHAMPION_URI


@dsl.pipeline(
    name="monitoring", description="Drift and labelled performance; retrain on a trigger."
)
def monitoring_pipeline(
    model_uri: str = CHAMPION_URI,
    source: str = "lake",
    window_days: int = 7,
    end: str = "",
    kfp_host: str = "",
    metrics_dir: str = "",
) -> None:
    """Wire the two checks and their conditional triggers."""
    window = {"model_uri": model_uri, "source": source, "window_days": window_days, "end": end}
    drift = check_drift(metrics_dir=metrics_dir, **window)
    performance = check_performance(metrics_dir=metrics_dir, **window)
    triggers = []
    with dsl.If(drift.outputs["triggered"] == True, name="drift-detected"):  # noqa: E712
        triggers.append(
            trigger_retraining(
                check="drift",
                result=drift.outputs["result"],
                kfp_host=kfp_host,
                metrics_dir=metrics_dir,
            )
        )
    with dsl.If(performance.outputs["triggered"] == True, name="performance-dropped"):  # noqa: E712
        triggers.append(
            trigger_retraining(
                check="performance",
                result=performance.outputs["result"],
                kfp_host=kfp_host,
                metrics_dir=metrics_dir,
            )
        )
    for task in (drift, performance, *triggers):
        task.set_caching_options(enable_caching=False)


def compile_pipeline(out_path: Path | str) -> Path:
    """Write the KFP IR YAML of :func:`monitoring_pipeline` to ``out_path``."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(monitoring_pipeline, str(out))
    return out
