"""Component ``validate``: the gate (floors, no regression against the champion)."""

from fraudrisk.components import FRAUDRISK_IMAGE, PACKAGES
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output


@dsl.component(base_image=FRAUDRISK_IMAGE, packages_to_install=PACKAGES, install_kfp_package=False)
def validate(
    dataset: Input[Dataset],
    recipe: Input[Artifact],
    calibrated_model: Input[Model],
    evaluation: Input[Artifact],
    gate_result: Output[Artifact],
    gate: dict = {},  # noqa: B006 -- KFP parameter default, never mutated
) -> bool:
    """Gate the evaluation; write the verdict as JSON and return whether it passed.

    The regression checks score the champion on the candidate's hold-out beside the candidate
    (head-to-head), or compare recorded metrics when that is not possible (the verdict says).

    Args:
        dataset: Output of ``build_dataset``.
        recipe: Output of ``tune``.
        calibrated_model: Output of ``calibrate``: the candidate.
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
    from fraudrisk.training.head_to_head import CandidateFiles

    metrics = json.loads((Path(evaluation.path) / "metrics.json").read_text())
    candidate = CandidateFiles(
        Path(dataset.path) / "dataset.parquet", Path(recipe.path), Path(calibrated_model.path)
    )
    verdict = steps.validate_step(
        metrics, get_settings(), GateConfig.model_validate(gate), candidate
    )
    Path(gate_result.path).write_text(verdict.model_dump_json(indent=2))
    return verdict.passed
