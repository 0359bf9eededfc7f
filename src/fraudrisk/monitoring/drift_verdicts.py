"""The two input-drift verdicts of a drift report, and how the HTML report shows them.

* ``columns`` — the share of the model's features that drifted reaches
  ``monitoring.drift_share`` (what Evidently's dataset-drift test counts);
* ``weighted`` — the share of the model's importance (mean |SHAP| over its reference,
  :mod:`~fraudrisk.monitoring.drift_weights`) held by the drifted features reaches
  ``monitoring.weighted_drift_share``: a few features the decisions lean on weigh more than
  many they ignore.

``monitoring.drift_verdict`` names the one that decides (``weighted`` by default); a model
without weights is decided by the columns. The HTML report puts both, with the weight table
(feature, weight, drifted, drift score), above Evidently's own report.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from fraudrisk.config import MonitoringSettings
from fraudrisk.monitoring.drift_weights import FeatureWeights, weighted_share
from fraudrisk.monitoring.results import DriftResult, DriftVerdict

_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class InputVerdicts:
    """The two input-drift verdicts of a window and the one that decides."""

    used: DriftVerdict
    weighted_share: float | None
    verdicts: dict[str, bool]

    @property
    def drift_detected(self) -> bool:
        """The deciding verdict's answer."""
        return self.verdicts[self.used]


def input_verdicts(
    options: MonitoringSettings,
    drifted: list[str],
    column_share: float,
    weights: FeatureWeights | None,
) -> InputVerdicts:
    """The column and the weighted verdicts; the configured one decides (columns without weights).

    Args:
        options: ``settings.monitoring``: ``drift_verdict`` and both thresholds.
        drifted: The drifted features.
        column_share: Their share of the model's features.
        weights: The model's importance weights, or None when it has none.
    """
    verdicts = {"columns": column_share >= options.drift_share}
    share = None
    if weights is not None:
        share = weighted_share(drifted, weights.weights)
        verdicts["weighted"] = share >= options.weighted_drift_share
    used: DriftVerdict = options.drift_verdict if options.drift_verdict in verdicts else "columns"
    return InputVerdicts(used, share, verdicts)


def with_section(page: str, section: str) -> str:
    """``section`` at the top of the page's body (at its start when it has no ``<body>``)."""
    body = _BODY.search(page)
    cut = body.end() if body else 0
    return page[:cut] + section + page[cut:]


def verdict_section(result: DriftResult, options: MonitoringSettings) -> str:
    """The HTML of both input verdicts and the weight table (feature, weight, drifted, score)."""
    thresholds = {"weighted": options.weighted_drift_share, "columns": options.drift_share}
    shares = {"weighted": result.weighted_drift_share, "columns": result.drift_share}
    meaning = {
        "weighted": "of the model's importance (mean |SHAP| over its reference) drifted",
        "columns": "of the model's features drifted",
    }
    lines = []
    for name in ("weighted", "columns"):
        share = shares[name]
        if share is None:
            lines.append(f"<li>{name}: n/a (the model gives no per-feature contributions)</li>")
            continue
        answer = "drift" if result.verdicts.get(name) else "no drift"
        used = " <b>(decides)</b>" if name == result.drift_verdict else ""
        lines.append(
            f"<li>{name}: <b>{answer}</b>{used} — {share:.1%} {meaning[name]}, threshold "
            f"{thresholds[name]:.0%}</li>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(str(row['feature']))}</td><td>{_cell(row['weight'], '.1%')}</td>"
        f"<td>{'drifted' if row['drifted'] else ''}</td><td>{_cell(row['score'], '.4g')}</td></tr>"
        for row in result.weight_table()
    )
    return (
        '<section id="fraudrisk-drift-verdicts" style="font-family:sans-serif;margin:16px">'
        f"<h2>Input drift: {'drift' if result.drift_detected else 'no drift'} "
        f"({result.drift_verdict} verdict)</h2><ul>{''.join(lines)}</ul>"
        "<p>Evidently's dataset-drift summary below counts columns.</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        "<tr><th>feature</th><th>weight</th><th>drifted</th><th>drift score</th></tr>"
        f"{rows}</table></section>"
    )


def _cell(value: object, spec: str) -> str:
    return "" if not isinstance(value, int | float) else format(value, spec)
