"""The retraining trigger: submit the training pipeline once per cause per cool-down.

A *cause* is a model name and a kind of check, ``drift`` or ``performance``. Every result a
check hands to :meth:`RetrainingTrigger.decide` becomes a row of the trigger ledger
(:mod:`fraudrisk.monitoring.ledger`: ``retraining_decisions`` in the platform database, SQLite
by default, PostgreSQL by setting) with its outcome — ``no_trigger``, ``suppressed``
(cool-down), ``fired`` or ``failed`` — the report that caused it, and the run and version the
launch produced.

Fire-once is the ledger's compare-and-set on the cause's row of ``retraining_claims``, in the
transaction that writes the decision: two watchers racing, or a watcher restarted, meet the
same row and exactly one wins. A failed submission releases its claim (the next check retries:
a failure must not silence a real drift for a week); a run that succeeded but whose model the
gate rejected keeps it. A watcher killed mid-launch leaves the claim ``launching``, which
counts as fired.

The launch is :func:`fraudrisk.training.launch.launch_training` (kfp.local, or a KFP host from
``KFP_HOST``) with ``bootstrap=False``: the new model goes through the gates to ``challenger``,
never straight to champion. Its registered version is tagged with the cause and the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudrisk.config import Settings
from fraudrisk.monitoring.ledger import (
    FAILED,
    FIRED,
    LAUNCHING,
    CheckResult,
    Decision,
    TriggerLedger,
    cause_of,
)

if TYPE_CHECKING:
    from fraudrisk.monitoring.prometheus import MonitoringMetrics
    from fraudrisk.training.launch import LaunchResult, PipelineConfig

log = logging.getLogger(__name__)
Launcher = Callable[["PipelineConfig"], "LaunchResult"]
#: Tags a registered version: (version, tags).
Tagger = Callable[[str, dict[str, str]], None]
CAUSE_TAG, REPORT_TAG, DECISION_TAG = "retraining_cause", "retraining_report", "retraining_decision"


@dataclass(frozen=True)
class TriggerOptions:
    """How the trigger launches: cool-down, training configuration and KFP host."""

    cooldown_hours: float
    training_config: Path | None = None
    host: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TriggerOptions:
        """Cool-down from the settings, host from ``KFP_HOST``; ``overrides`` replace fields."""
        # deferred: pulls mlflow, kfp, optuna (≈2 s) only to retrain
        from fraudrisk.training.launch import kfp_host

        return replace(cls(settings.monitoring.cooldown_hours, host=kfp_host()), **overrides)


class RetrainingTrigger:
    """Decide about each check result; fire the training pipeline when the ledger allows."""

    def __init__(
        self,
        settings: Settings,
        ledger: TriggerLedger,
        options: TriggerOptions | None = None,
        *,
        launcher: Launcher | None = None,
        tagger: Tagger | None = None,
        metrics: MonitoringMetrics | None = None,
    ) -> None:
        """Bind the trigger to a ledger; the launcher and tagger default to the real ones."""
        self.settings, self.ledger = settings, ledger
        self.options = options or TriggerOptions.from_settings(settings)
        self.launcher = launcher or self._launch
        self.tagger = tagger or self._tag
        self.metrics = metrics

    def decide(self, result: CheckResult, report: str) -> Decision:
        """Record the decision about ``result`` and, when its claim is granted, launch training.

        Args:
            result: A drift or labelled-performance result.
            report: Where its evidence is: the drift report, the performance JSON (a path or an
                artifact URI).

        Returns:
            The decision as the ledger holds it.
        """
        cause = cause_of(result)
        decision = self.ledger.record(cause, result, report, self.options.cooldown_hours)
        if decision.outcome == LAUNCHING:
            decision = self._fire(decision)
        log.info("retraining %s: %s %s", cause, decision.outcome, decision.detail)
        if self.metrics is not None:
            self.metrics.observe_decision(decision)
        return decision

    def _fire(self, decision: Decision) -> Decision:
        """Launch training for a granted claim; record the run, or the failure."""
        # deferred: pulls mlflow, kfp, optuna (≈2 s) only to retrain
        from fraudrisk.training.launch import training_config

        try:
            launched = self.launcher(training_config(self.options.training_config, bootstrap=False))
        except Exception as error:  # any failure: record it, release the claim, keep watching
            log.exception("retraining %s: launch failed", decision.cause)
            return self.ledger.finish(decision, FAILED, detail=f"{type(error).__name__}: {error}")
        if launched.state != "SUCCEEDED":
            return self.ledger.finish(decision, FAILED, launched, f"run ended {launched.state}")
        if launched.version is None:
            return self.ledger.finish(decision, FIRED, launched, "gate rejected: no new version")
        tags = {
            CAUSE_TAG: decision.cause.kind,
            REPORT_TAG: decision.report[:5000],
            DECISION_TAG: str(decision.id),
        }
        try:
            self.tagger(launched.version, tags)
        except Exception as error:  # the version exists: tagging is evidence, not the outcome
            log.warning("could not tag version %s: %s", launched.version, error)
            return self.ledger.finish(decision, FIRED, launched, f"version not tagged: {error}")
        return self.ledger.finish(decision, FIRED, launched)

    def _launch(self, config: PipelineConfig) -> LaunchResult:
        # deferred: pulls mlflow, kfp, optuna (≈2 s) only to retrain
        from fraudrisk.training.launch import launch_training

        return launch_training(config, host=self.options.host, settings=self.settings)

    def _tag(self, version: str, tags: dict[str, str]) -> None:
        # deferred: pulls mlflow (≈1 s) only to tag a version
        from fraudrisk.registry.mlflow_io import mlflow_client

        client = mlflow_client(self.settings)
        for key, value in tags.items():
            client.set_model_version_tag(self.settings.mlflow.model_name, version, key, value)
