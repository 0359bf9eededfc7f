"""ECharts options the pages draw (``static/app.js`` reads them from a ``data-chart`` attribute).

Options are plain data — no functions, no HTML formatters — so no script is ever inlined and
the tooltip is drawn on the canvas (``richText``), within the Content-Security-Policy.
"""

from __future__ import annotations

from typing import Any

from fraudrisk.cases.views import Reason


def reasons_chart(reasons: list[Reason]) -> dict[str, Any]:
    """The reason codes' values as bars beside the customer's own baseline of each feature."""
    features = [r.feature for r in reasons]
    return {
        "aria": {"enabled": True},
        "animation": False,
        "tooltip": {"trigger": "axis", "renderMode": "richText"},
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 24, "bottom": 8, "top": 36, "containLabel": True},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": features, "inverse": True},
        "series": [
            {
                "name": "this case",
                "type": "bar",
                "data": [round(r.value, 4) for r in reasons],
            },
            {
                "name": "customer's usual",
                "type": "bar",
                "data": [
                    None if r.customer_baseline is None else round(r.customer_baseline, 4)
                    for r in reasons
                ],
            },
        ],
    }
