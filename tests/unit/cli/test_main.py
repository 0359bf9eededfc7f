"""The fraudrisk CLI: help with examples everywhere, clear errors, simulate → lake check."""

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.io.lake import Lake

runner = CliRunner()


def all_commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command (not group) of the Click tree Typer builds, as its argv path."""
    found: list[tuple[str, ...]] = []
    for name, sub in group.commands.items():
        path = (*prefix, name)
        found += all_commands(sub, path) if hasattr(sub, "commands") else [path]
    return found


@pytest.mark.parametrize("command", all_commands(typer.main.get_command(app)), ids=" ".join)
def test_every_command_has_help_with_examples(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "Examples" in result.output and "$ fraudrisk" in result.output.replace(
        "$ make", "$ fraudrisk"
    )


def test_preset_conflicts_with_population_options(tmp_path):
    result = runner.invoke(
        app, ["simulate", "--preset", "handbook", "--customers", "10", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "fixes the population" in result.output
    assert not any(tmp_path.iterdir())


def test_bad_start_date_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["simulate", "--start-date", "2018-31-01", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not a date" in result.output


def test_simulate_then_check_the_lake_and_plot(tmp_path):
    lake = tmp_path / "lake"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--customers",
            "300",
            "--terminals",
            "600",
            "--days",
            "12",
            "--out",
            str(lake),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list(lake.glob("dt=*"))) == 12
    plot = tmp_path / "daily.png"
    result = runner.invoke(
        app, ["lake", "check", "--lake", str(lake), "--plot", str(plot)], terminal_width=120
    )
    assert result.exit_code == 0, result.output
    assert "all lake checks passed" in result.output and "scenario 2" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000


def test_lake_check_fails_on_a_row_in_the_wrong_partition(tmp_path):
    lake = Lake.open(str(tmp_path))
    lake.init(dt.date(2018, 4, 1))
    row = pa.table(
        {
            "transaction_id": [1],
            "tx_datetime": pa.array([dt.datetime(2018, 4, 2, 1)], pa.timestamp("us")),
            "customer_id": [1],
            "terminal_id": [1],
            "tx_amount": [3.0],
            "tx_time_seconds": [90_000],
            "tx_time_days": [1],
            "tx_fraud": [0],
            "tx_fraud_scenario": [0],
        }
    )
    lake.write_day(dt.date(2018, 4, 1), row)
    result = runner.invoke(app, ["lake", "check", "--lake", str(tmp_path)])
    assert result.exit_code == 1 and "dated another day" in result.output


def test_config_show_json_masks_secrets(monkeypatch):
    from fraudrisk.config import get_settings

    monkeypatch.setenv("FRAUDRISK_KAFKA__SASL_PASSWORD", "hunter2")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config", "show", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["kafka"]["sasl_password"] == "********" and "hunter2" not in result.output
