"""The monitoring pipeline's steps: one check, or one trigger decision, per KFP component.

A check step runs one check of a round (:mod:`fraudrisk.monitoring.checks`) and writes its
result as JSON for the next step, and its metrics as a Prometheus textfile; a trigger step reads
that result back and lets the retraining trigger decide about it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fraudrisk.config import Settings, get_settings
from fraudrisk.errors import MonitoringError
from fraudrisk.monitoring.checks import (
    WatchOptions,
    default_checks,
    evidence_path,
    run_drift_check,
    run_performance_check,
)
from fraudrisk.monitoring.ledger import Decision, TriggerLedger
from fraudrisk.monitoring.prometheus import MonitoringMetrics
from fraudrisk.monitoring.results import DriftResult, PerformanceResult
from fraudrisk.monitoring.trigger import RetrainingTrigger, TriggerOptions


def check_component(
    check: str,
    result_path: str,
    model_uri: str,
    source: str,
    window_days: int,
    end: str,
    metrics_dir: str,
) -> DriftResult | PerformanceResult:
    """The body of the ``check_<check>`` components: their parameters in, the result out.

    Args:
        check: ``drift`` or ``performance``.
        result_path: Where the result is written as JSON (the component's output artifact).
        model_uri: The monitored model (``models:/<name>@<alias>`` or a version).
        source: ``lake`` or ``scores``.
        window_days: Days of the window.
        end: Last day of the window, ``YYYY-MM-DD``; empty = the source's latest day.
        metrics_dir: Folder of the Prometheus textfile (empty = HOME/monitoring/metrics).

    Returns:
        The check's result, also written to ``result_path``.

    Raises:
        MonitoringError: If a parameter is invalid (source, ``end``, ``check``).
    """
    settings = get_settings()
    options = WatchOptions.parse(model_uri, source, window_days, end)
    textfile = textfile_path(settings, metrics_dir, f"check_{check}")
    return check_step(settings, check, options, Path(result_path), textfile)


def check_step(
    settings: Settings, check: str, options: WatchOptions, result_path: Path, textfile: Path | None
) -> DriftResult | PerformanceResult:
    """One check as a pipeline step: run it, write its result (JSON) and metrics (textfile).

    Raises:
        MonitoringError: If ``check`` is neither ``drift`` nor ``performance``.
    """
    runs: dict[str, Callable[..., DriftResult | PerformanceResult]] = {
        "drift": run_drift_check,
        "performance": run_performance_check,
    }
    if check not in runs:
        raise MonitoringError(f"unknown check {check!r}: use drift or performance")
    metrics = MonitoringMetrics()
    result = runs[check](settings, options, default_checks(), metrics)
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(result.model_dump_json())
    if textfile is not None:
        metrics.write_textfile(textfile)
    return result


def trigger_step(
    settings: Settings,
    check: str,
    result_path: Path,
    textfile: Path | None,
    host: str | None = None,
) -> Decision:
    """Let the trigger decide about a check step's result (the KFP monitoring pipeline).

    Raises:
        MonitoringError: If ``check`` is neither ``drift`` nor ``performance``.
    """
    kinds: dict[str, type[DriftResult | PerformanceResult]] = {
        "drift": DriftResult,
        "performance": PerformanceResult,
    }
    if check not in kinds:
        raise MonitoringError(f"unknown check {check!r}: use drift or performance")
    result = kinds[check].model_validate_json(result_path.read_text())
    metrics, ledger = MonitoringMetrics(), TriggerLedger(settings.db_url)
    options = TriggerOptions.from_settings(settings, **({"host": host} if host else {}))
    try:
        trigger = RetrainingTrigger(settings, ledger, options, metrics=metrics)
        decision = trigger.decide(result, evidence_path(settings, result))
    finally:
        ledger.close()
    if textfile is not None:
        metrics.write_textfile(textfile)
    return decision


def textfile_path(settings: Settings, metrics_dir: str, step: str) -> Path:
    """The step's ``.prom`` file for node-exporter's textfile collector (empty dir = HOME)."""
    folder = Path(metrics_dir) if metrics_dir else settings.monitoring_metrics_dir
    return folder / f"{step}.prom"
