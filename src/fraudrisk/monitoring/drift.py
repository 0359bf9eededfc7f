"""Drift reports: a window of transactions against the reference of the model that scores it.

:func:`drift_report` loads the model and its reference (built from the recorded training
period if the version has none yet), reads the window (:mod:`~fraudrisk.monitoring.drift_windows`),
runs the Evidently report (:mod:`~fraudrisk.monitoring.evidently_drift`), writes it as HTML
for people and JSON for machines — one pair per model version, source and window, under
``settings.monitoring.reports_dir`` (default ``HOME/monitoring/reports``) — and adds the
snapshot to the Evidently workspace.

Input drift has two verdicts (:mod:`~fraudrisk.monitoring.drift_verdicts`): ``weighted`` —
the drifted features hold at least ``settings.monitoring.weighted_drift_share`` of the model's
importance (mean |SHAP| over its reference, :mod:`~fraudrisk.monitoring.drift_weights`) — and
``columns`` — at least ``settings.monitoring.drift_share`` of its features drifted.
``drift_detected`` follows ``settings.monitoring.drift_verdict`` (``weighted`` by default;
``columns`` for a model without per-feature contributions); the report shows both, with the
weight table. Score drift is a risk-score PSI above ``settings.monitoring.score_drift_psi``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from fraudrisk.config import MonitoringSettings, Settings
from fraudrisk.console import err_console
from fraudrisk.errors import MonitoringError
from fraudrisk.monitoring.backfill import ensure_reference
from fraudrisk.monitoring.drift_verdicts import input_verdicts, verdict_section, with_section
from fraudrisk.monitoring.drift_weights import FeatureWeights, reference_weights
from fraudrisk.monitoring.drift_windows import Window, read_window
from fraudrisk.monitoring.evidently_drift import DriftAnalysis, analyse
from fraudrisk.monitoring.results import DriftResult, Source
from fraudrisk.monitoring.workspace import add_snapshot, workspace_location
from fraudrisk.registry.references import Reference, resolve_version
from fraudrisk.scoring.model import LoadedModel, ModelLoadError, load_model

SOURCES: tuple[Source, ...] = ("lake", "scores")


def drift_report(
    settings: Settings,
    model_uri: str,
    source: Source,
    start: dt.date,
    end: dt.date,
    *,
    table_uri: str | None = None,
    workspace: bool = True,
) -> DriftResult:
    """Compare the window ``start..end`` (inclusive) with the model's reference.

    Args:
        settings: Platform settings (registry, store, thresholds, report folders).
        model_uri: ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
        source: ``lake`` (feature table, scored now) or ``scores`` (the alert store's records).
        start: First day of the window.
        end: Last day of the window.
        table_uri: Feature table (default ``HOME/features``).
        workspace: Also add the snapshot to the Evidently workspace.

    Returns:
        The verdicts, the figures and the paths of the HTML and JSON reports.

    Raises:
        MonitoringError: Bad input (unknown model or source, end before start) or an empty
            window, with what to do about it.
    """
    if source not in SOURCES:
        raise MonitoringError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
    if end < start:
        raise MonitoringError(f"the window ends ({end}) before it starts ({start})")
    model, reference = _model_and_reference(settings, model_uri)
    weights = reference_weights(settings, model, reference)
    window = read_window(
        settings, model, source, start, end, table_uri or settings.feature_table_uri
    )
    features = model.feature_names if window.with_features else ()
    stem = f"{model.card.name}_v{model.card.version}_{source}_{start}_{end}"
    analysis = analyse(
        reference.rows,
        window.rows,
        features,
        settings.monitoring,
        timestamp=dt.datetime.combine(end, dt.time()),
        metadata=_metadata(model_uri, model.card.version, window),
        tags=[source, f"version-{model.card.version}"],
    )
    result = _result(settings, model_uri, model.card.version, window, analysis, weights, stem)
    _write_reports(analysis, result, reference, weights, settings.monitoring)
    if workspace:
        _add_to_workspace(settings, model.card.name, analysis, stem)
    return result


def _model_and_reference(settings: Settings, model_uri: str) -> tuple[LoadedModel, Reference]:
    """The model and its reference, both of the version the URI names now (aliases move)."""
    version = resolve_version(settings, model_uri)
    pinned = f"models:/{version.name}/{version.version}"
    reference = ensure_reference(settings, pinned)
    try:
        model = load_model(settings, pinned)
    except ModelLoadError as error:
        raise MonitoringError(str(error)) from None
    missing = [name for name in model.feature_names if name not in reference.rows.columns]
    if missing:
        raise MonitoringError(
            f"the reference of {pinned} lacks the model's feature(s) {missing}: rebuild it "
            f"with `fraudrisk monitor reference --model {pinned} --force`"
        )
    return model, reference


def _add_to_workspace(settings: Settings, name: str, analysis: DriftAnalysis, stem: str) -> None:
    """Add the snapshot; a workspace that fails is reported, the written report stays."""
    try:
        add_snapshot(settings, name, analysis.snapshot, stem)
    except Exception as error:  # a remote service down, a locked folder: say it, keep going
        err_console.print(
            f"[yellow]warning:[/yellow] report not added to the Evidently workspace "
            f"{workspace_location(settings)}: {type(error).__name__}: {error}"
        )


def _metadata(model_uri: str, version: str, window: Window) -> dict[str, str]:
    return {
        "model_uri": model_uri,
        "model_version": version,
        "source": window.source,
        "start": str(window.start),
        "end": str(window.end),
        "rows": str(window.total_rows),
        "sampled_rows": str(window.sampled),
    }


def _result(
    settings: Settings,
    model_uri: str,
    version: str,
    window: Window,
    analysis: DriftAnalysis,
    weights: FeatureWeights | None,
    stem: str,
) -> DriftResult:
    folder = settings.monitoring_reports_dir
    quality = dict(analysis.quality)
    if window.rows_without_features:
        quality["rows_without_features"] = window.rows_without_features
    psi = analysis.score_psi
    decided = input_verdicts(settings.monitoring, analysis.drifted, analysis.drift_share, weights)
    return DriftResult(
        model_uri=model_uri,
        model_version=version,
        source=window.source,
        start=window.start,
        end=window.end,
        rows=window.total_rows,
        sampled_rows=window.sampled,
        drift_detected=decided.drift_detected,
        drift_share=analysis.drift_share,
        drifted_features=analysis.drifted,
        drift_verdict=decided.used,
        weighted_drift_share=decided.weighted_share,
        verdicts=decided.verdicts,
        feature_weights=weights.weights if weights is not None else {},
        feature_scores=analysis.feature_scores,
        score_drift=psi,
        score_drift_detected=psi is not None and psi > settings.monitoring.score_drift_psi,
        quality_issues=quality,
        report=str((folder / f"{stem}.html").resolve()),
        report_json=str((folder / f"{stem}.json").resolve()),
    )


def notes_of(result: DriftResult) -> list[str]:
    """What a reader of a result must know: sampling, records left without features, verdicts.

    The last: a verdict left to the column share because the model has no importance weights.
    """
    missing = result.quality_issues.get("rows_without_features", 0)
    scores_only = bool(missing) and not result.feature_scores
    drawn = result.sampled_rows + (0 if scores_only else missing)
    notes = []
    if drawn < result.rows:
        notes.append(f"sampled {drawn:,} of {result.rows:,} rows (fixed seed)")
    if result.weighted_drift_share is None and result.feature_scores:
        notes.append(
            "no importance weights (the model gives no per-feature contributions): the "
            "column share decided"
        )
    if scores_only:
        notes.append(
            "score drift only: no feature rows for these transactions in the feature table"
        )
    elif missing:
        notes.append(f"{missing:,} sampled score records have no feature row and are left out")
    return notes


def _write_reports(
    analysis: DriftAnalysis,
    result: DriftResult,
    reference: Reference,
    weights: FeatureWeights | None,
    options: MonitoringSettings,
) -> None:
    """The HTML and the JSON report.

    The HTML is Evidently's with both input verdicts and the weight table on top; the JSON
    holds our result, the notes, the verdicts and weights, and Evidently's metrics and tests.
    """
    page = Path(result.report)
    page.parent.mkdir(parents=True, exist_ok=True)
    staging = page.with_suffix(".html.tmp")
    evidently_html = analysis.snapshot.get_html_str(as_iframe=False)
    staging.write_text(with_section(evidently_html, verdict_section(result, options)), "utf-8")
    os.replace(staging, page)
    document: dict[str, Any] = {
        "result": result.summary(),
        "notes": notes_of(result),
        "importance": _importance(result, weights, options),
        "methods": analysis.methods,
        "prediction_drift": analysis.prediction_drift,
        "reference": reference.meta,
        "evidently": analysis.snapshot.dict(),
    }
    staging = page.with_suffix(".json.tmp")
    staging.write_text(json.dumps(document, indent=1, default=str))
    os.replace(staging, result.report_json)


def _importance(
    result: DriftResult, weights: FeatureWeights | None, options: MonitoringSettings
) -> dict[str, Any]:
    """The JSON report's verdicts, thresholds and weight table."""
    return {
        "verdict": result.drift_verdict,
        "verdicts": result.verdicts,
        "weighted_drift_share": result.weighted_drift_share,
        "thresholds": {"weighted": options.weighted_drift_share, "columns": options.drift_share},
        "method": weights.method if weights else None,
        "reference_rows": weights.rows if weights else None,
        "table": result.weight_table(),
    }
