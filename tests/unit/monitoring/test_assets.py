"""monitoring/: every PromQL expression parses and names only metrics fraudrisk exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from fraudrisk.api.prometheus import ApiMetrics
from fraudrisk.jobs.prometheus import StreamMetrics
from fraudrisk.monitoring.prometheus import MonitoringMetrics, sample_names
from fraudrisk.serving.prometheus import scorer_metrics

ASSETS = Path(__file__).resolve().parents[3] / "monitoring"
RULES = ASSETS / "prometheus" / "rules.yaml"
DASHBOARD = ASSETS / "grafana" / "fraudrisk-monitoring.json"
#: Grafana's built-in interval variables, replaced as Grafana does before the query is sent.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}


def exported() -> set[str]:
    """Every sample name the monitoring, scorer, stream and API metrics can export."""
    scorer, stream = CollectorRegistry(), CollectorRegistry()
    scorer_metrics(scorer)
    StreamMetrics(stream)
    registries = [MonitoringMetrics().registry, scorer, stream, ApiMetrics.create().registry]
    return set().union(*(sample_names(registry) for registry in registries))


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (parsed by a PromQL parser, not by regex)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    targets = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    return targets + [a["expr"] for a in board["annotations"]["list"] if "expr" in a]


def test_the_name_collector_can_fail() -> None:
    assert metric_names("rate(fraudrisk_no_such_metric_total[5m]) > 0") - exported() == {
        "fraudrisk_no_such_metric_total"
    }
    assert "fraudrisk_requests" not in exported()  # counters are exported with _total
    with pytest.raises(ValueError):
        metric_names("sum(rate(fraudrisk_requests_total[5m])")


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_alert_rule_parses_and_uses_exported_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names and names <= exported(), names - exported()
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert rule["annotations"]["summary"]
    if "for" in rule:
        promql_parser.parse_duration(rule["for"])


def test_alert_names_are_unique_and_cover_the_monitoring_cases() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for required in ("DriftDetected", "PerformanceDrop", "MonitoringStale", "RetrainingFired"):
        assert f"Fraudrisk{required}" in names
    used = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert any(name.startswith("fraudrisk_stream_") for name in used)
    assert "fraudrisk_request_latency_seconds_bucket" in used


def test_every_dashboard_query_parses_and_uses_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for expr in exprs:
        names = metric_names(expr)
        assert names and names <= exported(), (expr, names - exported())


def test_the_dashboard_shows_every_monitoring_metric_and_is_laid_out() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    monitoring = sample_names(MonitoringMetrics().registry)
    families = {re.sub(r"_(total|created)$", "", name) for name in monitoring}
    assert all(any(name.startswith(family) for name in used) for family in families)
    board = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    variable = next(v for v in board["templating"]["list"] if v["name"] == "model")
    (metric,) = re.findall(r"label_values\((\w+),", variable["definition"])
    assert metric in exported()
