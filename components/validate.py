"""Component ``validate``: the gate (floors, no regression against the champion)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from components import FRAUDRISK_IMAGE, PACKAGES


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def validate(
    evaluation: Input[Artifact],
    gate_result: Output[Artifact],
    gate: dict = {},  # noqa: B006 -- KFP parameter default, never mutated
) -> bool:
    """Gate the evaluation; write the verdict as JSON and return whether it passed.

    Args:
        evaluation: Output of ``evaluate`` (reads its ``metrics.json``).
        gate_result: The verdict (:class:`~fraudrisk.training.gate.GateResult` JSON).
        gate: Floors and tolerances (:class:`~fraudrisk.training.gate.GateConfig` fields).

    Returns:
        True when every check passed (a single ``Output``: kfp.local resolves conditions on it,
        not on a NamedTuple field).
    """
    import json
    from pathlib import Path

    from fraudrisk.config import get_settings
    from fraudrisk.training import steps
    from fraudrisk.training.gate import GateConfig

    metrics = json.loads((Path(evaluation.path) / "metrics.json").read_text())
    verdict = steps.validate_step(metrics, get_settings(), GateConfig.model_validate(gate))
    Path(gate_result.path).write_text(verdict.model_dump_json(indent=2))
    return verdict.passed
