"""``fraudrisk policy lint | show`` through Typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fraudrisk.cli.main import app

runner = CliRunner()
GOOD = """\
name: good
thresholds: {review: 0.1, decline: 0.9}
alert_budget: 20
rules:
  - {name: big, when: amount >= 250, action: route, queue: high-value, reason: Big amount}
"""
BAD = """\
name: bad
thresholds: {review: 0.1, decline: 0.9}
alert_budget: 20
rules:
  - name: typo
    when: tx_amout > 100
    action: route
    queue: nowhere
    reason: x
"""


def files(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    return good, bad


def test_lint_a_clean_file_prints_a_summary(tmp_path):
    good, _ = files(tmp_path)
    result = runner.invoke(app, ["policy", "lint", str(good)], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert f"ok {good}: policy 'good'" in result.stdout
    assert "1 rules (1 route)" in result.stdout and "route → high-value" in result.stdout


def test_lint_reports_every_problem_on_stderr_and_exits_1(tmp_path):
    good, bad = files(tmp_path)
    result = runner.invoke(app, ["policy", "lint", str(good), str(bad)], terminal_width=160)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:6:11: unknown field 'tx_amout' (did you mean 'tx_amount'?)",
        f"{bad}:8:12: rule 'typo': queue: unknown queue 'nowhere' (queues: declines, general, "
        "high-value, missed-fraud)",
    ]
    assert f"ok {good}" in result.stdout


def test_lint_json(tmp_path):
    good, bad = files(tmp_path)
    result = runner.invoke(app, ["policy", "lint", "--json", str(good), str(bad)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    first, second = report["files"]
    assert first["ok"] and first["policy"]["rules"][0]["queue"] == "high-value"
    assert first["policy"]["reads"] == ["amount"]
    assert not second["ok"] and second["policy"] is None
    assert [(p["line"], p["column"]) for p in second["problems"]] == [(6, 11), (8, 12)]


def test_lint_without_files_checks_the_bundled_default():
    result = runner.invoke(app, ["policy", "lint"], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "policy 'default'" in result.stdout and "default.yaml" in result.stdout


def test_the_routing_file_setting_picks_the_queues(tmp_path, monkeypatch):
    from fraudrisk.config import get_settings

    good, _ = files(tmp_path)
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        "version: 1\ndefault_queue: only\nqueues:\n  - {name: only, sla_minutes: 5}\n"
    )
    monkeypatch.setenv("FRAUDRISK_CASES__ROUTING_FILE", str(routing))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["policy", "lint", str(good)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "unknown queue 'high-value' (queues: only)" in result.stderr


def test_show_prints_the_policy_as_tables(tmp_path):
    good, bad = files(tmp_path)
    result = runner.invoke(app, ["policy", "show", str(good)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for text in ("policy 'good'", "review at risk ≥", "0.1", "20 reviews/day", "Big amount"):
        assert text in result.stdout
    result = runner.invoke(app, ["policy", "show", str(bad)])
    assert result.exit_code == 1 and "unknown field 'tx_amout'" in result.stderr


def test_show_default_lists_its_costs():
    result = runner.invoke(app, ["policy", "show"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "loss of a missed fraud" in result.stdout and "large-at-night" in result.stdout


def test_names_lists_every_name_and_function():
    from fraudrisk.policy.types import FUNCTIONS, Environment

    result = runner.invoke(app, ["policy", "names", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [n["name"] for n in listed["names"]] == list(Environment.standard().symbols)
    assert [f["name"] for f in listed["functions"]] == list(FUNCTIONS)
    table = runner.invoke(app, ["policy", "names"], terminal_width=200)
    assert "hour(datetime)" in table.stdout and "tx_datetime" in table.stdout


def test_the_reference_names_every_name_and_function():
    from pathlib import Path

    from fraudrisk.policy.document import ACTIONS
    from fraudrisk.policy.types import FUNCTIONS, Environment

    reference = (Path(__file__).resolve().parents[3] / "docs" / "policy.md").read_text()
    missing = [
        name
        for name in [*Environment.standard().symbols, *FUNCTIONS, *ACTIONS]
        if f"`{name}" not in reference and name not in reference
    ]
    assert missing == []
