"""Component ``trigger_retraining``: launch training once per cause per cool-down."""

from typing import NamedTuple

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Input


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def trigger_retraining(
    check: str,
    result: Input[Artifact],
    kfp_host: str = "",
    metrics_dir: str = "",
) -> NamedTuple("Outputs", [("outcome", str), ("version", str)]):  # type: ignore[valid-type]
    """Record the decision in the trigger ledger; submit the training pipeline if it fires.

    The training run registers a model that passes the gates as ``challenger`` (bootstrap off:
    never champion); the version is tagged with the cause and the report.

    Args:
        check: ``drift`` or ``performance``: the cause's kind.
        result: Output of ``check_drift`` or ``check_performance``.
        kfp_host: KFP endpoint the training run is submitted to; empty = ``KFP_HOST``, else
            kfp.local.
        metrics_dir: Folder of the Prometheus textfile (empty = HOME/monitoring/metrics).

    Returns:
        ``outcome`` (``fired``, ``suppressed``, ``failed``...) and the registered ``version``
        ("" when none).
    """
    from collections import namedtuple
    from pathlib import Path

    from fraudrisk.config import get_settings
    from fraudrisk.monitoring import pipeline_steps

    settings = get_settings()
    decision = pipeline_steps.trigger_step(
        settings,
        check,
        Path(result.path),
        pipeline_steps.textfile_path(settings, metrics_dir, f"trigger_retraining_{check}"),
        host=kfp_host or None,
    )
    outputs = namedtuple("Outputs", ["outcome", "version"])
    return outputs(decision.outcome, decision.registered_version or "")
