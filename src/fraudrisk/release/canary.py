"""The canary workflow: measure champion against canary, judge by the gates, then act.

Measurement and judgement live in :mod:`fraudrisk.release.canary_judgement`.
:func:`start`, :func:`promote`, :func:`rollback` and :func:`watch` change the manifest (a file,
or the cluster's InferenceService — :mod:`fraudrisk.release.cluster`) and the MLflow alias
``champion``; the running canary is kept in ``HOME/serving/canary.json`` and every promotion or
rollback, with its reason, in ``HOME/serving/canary-history.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from fraudrisk.config import MODEL_URI, Settings
from fraudrisk.release import manifest_edits as edits
from fraudrisk.release.canary_judgement import (
    CanaryError,
    CanaryGates,
    Evaluation,
    ServiceUnreachableError,
    Snapshot,
    evaluate,
    scrape,
)
from fraudrisk.release.cluster import ClusterTarget, FileTarget, ManifestTarget, kubeconfig_from_env
from fraudrisk.serving import manifest as mf
from fraudrisk.vocab import SHADOW, VARIANT_NAMES, TrafficMode

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- act

#: ``manifests/local/inferenceservice.yaml`` as the package carries it: package data of
#: ``fraudrisk.release`` (``local-manifest/``, a copy ``tests/integration/test_wheel.py`` pins
#: equal to the committed file), so an installed wheel has it too.
COMMITTED_MANIFEST = Path(
    str(resources.files("fraudrisk.release") / "local-manifest" / "inferenceservice.yaml")
)


class CanaryState(BaseModel):
    """The running canary, as ``canary start`` recorded it (``HOME/serving/canary.json``)."""

    version: str = Field(description="The candidate's registry version.")
    model_uri: str = Field(description="The candidate's model URI in the manifest.")
    stable_model_uri: str = Field(description="The model the rest of the traffic goes to.")
    percent: int = Field(description="The candidate's share (0 in shadow mode).")
    mode: TrafficMode
    target: str = Field(description="The manifest file or cluster object updated.")
    endpoint: str = Field(description="The service whose /metrics are compared.")
    started_at: dt.datetime
    baseline: Snapshot | None = Field(description="Metrics at start; None = service was down.")


@dataclass(frozen=True)
class Workspace:
    """What a canary command works on: settings, manifest target, service endpoint."""

    settings: Settings
    target: ManifestTarget
    endpoint: str
    serve_hint: str  # what to do when the service does not answer, for error messages

    @property
    def state_path(self) -> Path:
        """``HOME/serving/canary.json``."""
        return _state_path(self.settings)


@dataclass(frozen=True)
class Change:
    """What a canary command did."""

    before: mf.ServingPlan
    after: mf.ServingPlan
    version: str
    champion_before: str | None = None
    champion_after: str | None = None
    evaluation: Evaluation | None = None
    state: CanaryState | None = None


def workspace(
    settings: Settings,
    manifest: Path | None = None,
    endpoint: str | None = None,
    kubeconfig: str | None = None,
    local: bool = False,
) -> Workspace:
    """Where a command acts: the manifest file, or the cluster when a kubeconfig is set.

    Args:
        settings: The platform settings (HOME, registry, gates).
        manifest: The manifest file (default :func:`default_manifest`); on a cluster it only
            names the InferenceService (metadata.name and namespace).
        endpoint: The service URL; default: the one the running canary recorded, else
            ``settings.serving.endpoint`` (on a cluster only when set explicitly).
        kubeconfig: Patch the cluster with this kubeconfig; default ``$KUBECONFIG`` if set.
        local: Ignore ``$KUBECONFIG``: change the manifest file only.
    """
    path = manifest or default_manifest(settings)
    config = None if local else kubeconfig or kubeconfig_from_env()
    state = load_state(settings)
    fallback = settings.serving.endpoint
    if config and "endpoint" not in settings.serving.model_fields_set:
        fallback = ""  # the loopback default means nothing on a cluster
    url = endpoint or (state.endpoint if state else "") or fallback
    if config is None:
        hint = f"start it with `fraudrisk serve --manifest {path}`"
        return Workspace(settings, FileTarget(path), url, hint)
    plan = mf.load_plan(path)
    target = ClusterTarget.connect(config, plan.name, plan.namespace)
    hint = f"check `kubectl get inferenceservice -n {plan.namespace} {plan.name}` and --endpoint"
    return Workspace(settings, target, url, hint)


def default_manifest(settings: Settings) -> Path:
    """``HOME/serving/inferenceservice.yaml``, copied from :data:`COMMITTED_MANIFEST` if absent.

    Raises:
        CanaryError: Neither exists (pass ``--manifest``).
    """
    path = settings.serving_dir / "inferenceservice.yaml"
    if not path.exists():
        if not COMMITTED_MANIFEST.is_file():
            raise CanaryError(f"no manifest at {path} and none to copy: pass --manifest FILE")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(COMMITTED_MANIFEST.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def _state_path(settings: Settings) -> Path:
    return settings.serving_dir / "canary.json"


def load_state(settings: Settings) -> CanaryState | None:
    """The recorded canary, None when none is recorded."""
    path = _state_path(settings)
    return CanaryState.model_validate_json(path.read_text()) if path.is_file() else None


def registry_version(settings: Settings, uri: str) -> str | None:
    """The registry version a ``models:/NAME/N`` or ``models:/NAME@ALIAS`` URI means now."""
    # deferred: pulls mlflow (≈1 s) only for a registry URI
    from fraudrisk.registry.versions import get_alias_version

    match = MODEL_URI.match(uri)
    if match is None or match["name"] != settings.mlflow.model_name:
        return None
    return match["version"] or get_alias_version(settings, match["alias"])


def start(
    ws: Workspace, version: int, percent: int | None, mode: TrafficMode | None = None
) -> Change:
    """Send ``percent`` % of the traffic to a registered version; the stable model keeps the rest.

    Raises:
        CanaryError: The version does not exist, was rejected, is the stable model, or the
            percent is missing (canary, ab) or not 0 (shadow).
    """
    text = ws.target.read()
    plan = mf.plan_from_text(text, ws.target.where)
    candidate = _candidate_uri(ws.settings, version)
    stable = plan.stable_model_uri or plan.model_uri
    if candidate == stable or str(version) == registry_version(ws.settings, stable):
        raise CanaryError(f"version {version} is the stable model ({stable}): nothing to canary")
    share = _share(mode or plan.mode, percent)
    after = edits.set_canary(text, candidate, share, mode=mode)
    previous = load_state(ws.settings) if plan.candidate_uri == candidate else None
    if previous is not None and previous.model_uri != candidate:
        previous = None
    baseline = previous.baseline if previous else _baseline(ws, plan.name)
    ws.target.write(text, after)
    state = CanaryState(
        version=str(version),
        model_uri=candidate,
        stable_model_uri=stable,
        percent=share,
        mode=mf.plan_from_text(after).mode,
        target=ws.target.where,
        endpoint=ws.endpoint,
        started_at=previous.started_at if previous else dt.datetime.now(dt.UTC),
        baseline=baseline,
    )
    ws.state_path.parent.mkdir(parents=True, exist_ok=True)
    ws.state_path.write_text(state.model_dump_json(indent=2))
    return Change(plan, mf.plan_from_text(after), str(version), state=state)


def current(ws: Workspace) -> tuple[mf.ServingPlan, CanaryState | None]:
    """The running canary's plan and recorded state (None when not started by ``start``).

    Raises:
        CanaryError: No canary runs.
    """
    _, plan, state = _running(ws)
    return plan, state


def measure(ws: Workspace) -> Evaluation:
    """Champion against canary since the canary started, judged by the settings' gates.

    Raises:
        CanaryError: No canary runs; ServiceUnreachableError: the endpoint does not answer.
    """
    _, plan, state = _running(ws)
    snapshot = _scrape(ws, plan.name)
    window = snapshot.since(state.baseline if state else None)
    return evaluate(window, VARIANT_NAMES[plan.mode], ws.settings.canary)


def promote(ws: Workspace, force: bool = False) -> Change:
    """Make the canary the champion: MLflow alias ``champion``, then 100 % of the traffic.

    Raises:
        CanaryError: No canary runs, a gate is breached or data is insufficient (unless
            ``force``), or the registry refuses the version.
    """
    # deferred: pulls mlflow (≈1 s) only to promote
    from fraudrisk.registry.versions import CHAMPION, get_alias_version
    from fraudrisk.registry.versions import promote as set_alias

    text, plan, state = _running(ws)
    version = state.version if state else registry_version(ws.settings, plan.candidate_uri or "")
    if version is None:
        raise CanaryError(f"cannot tell the registry version of {plan.candidate_uri}")
    evaluation = _promotable(ws, force)
    after = edits.promote(text)
    before = get_alias_version(ws.settings, CHAMPION)
    try:
        set_alias(ws.settings, version, CHAMPION)
    except ValueError as error:
        raise CanaryError(str(error)) from None
    ws.target.write(text, after)
    _end(ws, "promote", version, "forced" if force else "gates passed", evaluation)
    return Change(plan, mf.plan_from_text(after), version, before, version, evaluation)


def rollback(ws: Workspace, reason: str, evaluation: Evaluation | None = None) -> Change:
    """Send all the traffic back to the stable model; the MLflow aliases do not change.

    Raises:
        CanaryError: No canary runs.
    """
    text, plan, state = _running(ws)
    after = edits.rollback(text)
    ws.target.write(text, after)
    version = state.version if state else plan.candidate_uri or "?"
    _end(ws, "rollback", version, reason, evaluation)
    return Change(plan, mf.plan_from_text(after), version, evaluation=evaluation)


def watch(
    ws: Workspace,
    interval_s: float,
    max_seconds: float | None,
    report: Callable[[Evaluation | None, str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Change | None:
    """Evaluate every ``interval_s`` and roll back on the first breach (not on missing data).

    Returns:
        The rollback, or None when ``max_seconds`` passed without a breach.
    """
    deadline = None if max_seconds is None else clock() + max_seconds
    while True:
        try:
            evaluation = measure(ws)
        except ServiceUnreachableError as error:
            report(None, str(error))
        else:
            report(evaluation, "")
            if evaluation.verdict == "breach":
                reason = "automatic: " + ", ".join(evaluation.breaches)
                return rollback(ws, reason, evaluation)
        if deadline is not None and clock() + interval_s > deadline:
            return None
        sleep(interval_s)


def _candidate_uri(settings: Settings, version: int) -> str:
    # deferred: mlflow (≈1 s) only to find a candidate
    from mlflow.exceptions import MlflowException

    from fraudrisk.registry.mlflow_io import mlflow_client
    from fraudrisk.registry.versions import REJECTED, STATUS_TAG

    name = settings.mlflow.model_name
    try:
        found = mlflow_client(settings).get_model_version(name, str(version))
    except MlflowException:
        raise CanaryError(f"{name} has no version {version} in the registry") from None
    if found.tags.get(STATUS_TAG) == REJECTED:
        raise CanaryError(f"{name} version {version} was rejected by the validation gate")
    return f"models:/{name}/{version}"


def _share(mode: TrafficMode, percent: int | None) -> int:
    if mode == SHADOW:
        if percent:
            raise CanaryError("shadow mode answers nothing with the candidate: leave --percent out")
        return 0
    if percent is None:
        raise CanaryError(f"mode {mode} needs --percent (the candidate's share, 1-100)")
    return percent


def _running(ws: Workspace) -> tuple[str, mf.ServingPlan, CanaryState | None]:
    text = ws.target.read()
    plan = mf.plan_from_text(text, ws.target.where)
    if plan.candidate_uri is None:
        raise CanaryError(
            f"no canary running: {ws.target.where} serves {plan.model_uri} alone; start one "
            "with `fraudrisk canary start --version N --percent P`"
        )
    return text, plan, _matching_state(ws, plan.candidate_uri)


def _matching_state(ws: Workspace, candidate: str) -> CanaryState | None:
    state = load_state(ws.settings)
    if state is not None and state.model_uri != candidate:
        log.warning(
            "ignoring %s: it records %s, the manifest runs %s",
            ws.state_path,
            state.model_uri,
            candidate,
        )
        return None
    return state


def _scrape(ws: Workspace, model: str) -> Snapshot:
    if not ws.endpoint:
        raise CanaryError("no endpoint: give --endpoint URL (the InferenceService's URL)")
    try:
        return scrape(ws.endpoint, model)
    except ServiceUnreachableError as error:
        raise ServiceUnreachableError(f"{error}; {ws.serve_hint}") from None


def _baseline(ws: Workspace, model: str) -> Snapshot | None:
    try:
        return _scrape(ws, model)
    except CanaryError as error:
        log.warning("%s: the canary window starts when the service does", error)
        return None


def _promotable(ws: Workspace, force: bool) -> Evaluation | None:
    try:
        evaluation = measure(ws)
    except ServiceUnreachableError:
        if not force:
            raise
        log.warning("promotion forced without an evaluation: the service is not reachable")
        return None
    if evaluation.verdict != "pass":
        why = ", ".join(evaluation.breaches) or _lacking(evaluation, ws.settings.canary)
        if not force:
            raise CanaryError(f"not promoted: {evaluation.verdict} ({why}); --force overrides")
        log.warning("promotion forced despite verdict %s (%s)", evaluation.verdict, why)
    return evaluation


def _lacking(evaluation: Evaluation, gates: CanaryGates) -> str:
    return (
        f"champion {evaluation.champion.requests:.0f} and {evaluation.variant} "
        f"{evaluation.canary.requests:.0f} requests, {gates.min_requests} needed each"
    )


def _end(
    ws: Workspace, action: str, version: str, reason: str, evaluation: Evaluation | None
) -> None:
    """Forget the running canary and append what happened and why to the history."""
    ws.state_path.unlink(missing_ok=True)
    record = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "action": action,
        "version": version,
        "reason": reason,
        "target": ws.target.where,
        "verdict": evaluation.verdict if evaluation else None,
        "gates": [c.model_dump() for c in evaluation.gates] if evaluation else None,
    }
    history = ws.state_path.with_name("canary-history.jsonl")
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    log.info("canary %s of version %s: %s", action, version, reason)
