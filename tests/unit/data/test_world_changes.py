"""A changing world: a handbook lake continued day by day, changed from a given day or not."""

import datetime as dt
import re
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from fraudrisk.cli.data import NewPatternOption
from fraudrisk.cli.main import app
from fraudrisk.data.handbook import HandbookConfig, build_profiles
from fraudrisk.data.world_changes import (
    CARD_TESTING_SCENARIO,
    DriftConfig,
    NewPattern,
    continue_days,
)

WORLD = HandbookConfig(n_customers=400, n_terminals=800, nb_days=30)
NEXT_DAY = dt.date(2018, 5, 1)  # day 30: the one after the small handbook lake
runner = CliRunner()


def plain(output: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def frame(days) -> pd.DataFrame:
    return pa.concat_tables(table for _, table in days).to_pandas()


def test_the_change_appears_from_its_day_and_not_before():
    change = DriftConfig(dt.date(2018, 5, 6), 2.0, NewPattern.card_testing, 15)
    changed = frame(continue_days(WORLD, NEXT_DAY, 12, change, first_transaction_id=10**6))
    control = frame(continue_days(WORLD, NEXT_DAY, 12, first_transaction_id=10**6))
    before = changed.tx_datetime < pd.Timestamp(change.start)
    assert changed[before].reset_index(drop=True).equals(control[control.index < before.sum()])
    assert CARD_TESTING_SCENARIO not in set(changed[before].tx_fraud_scenario)
    after, control_after = (
        changed[~before],
        control[control.tx_datetime >= pd.Timestamp(change.start)],
    )
    tested = after[after.tx_fraud_scenario == CARD_TESTING_SCENARIO]
    assert (tested.tx_fraud == 1).all() and tested.customer_id.nunique() >= 15
    assert tested.groupby("tx_time_days").customer_id.nunique().eq(15).all()
    genuine, control_genuine = after.tx_fraud_scenario == 0, control_after.tx_fraud_scenario == 0
    ratio = after[genuine].tx_amount.median() / control_after[control_genuine].tx_amount.median()
    assert 1.95 < ratio < 2.05
    # The same purchases are frauds: S1's threshold moved with the amounts.
    s1 = after[after.tx_fraud_scenario == 1]
    assert (s1.tx_amount > 440).all() and len(s1) == (control_after.tx_fraud_scenario == 1).sum()


def test_card_testing_is_night_bursts_of_tiny_tests_then_purchases_at_new_terminals():
    change = DriftConfig(NEXT_DAY, new_pattern=NewPattern.card_testing, pattern_cards_per_day=30)
    new = frame(continue_days(WORLD, NEXT_DAY, 3, change, first_transaction_id=0))
    tested = new[new.tx_fraud_scenario == CARD_TESTING_SCENARIO]
    profiles = build_profiles(WORLD)
    for (_, card), burst in tested.groupby(["tx_time_days", "customer_id"]):
        amounts = burst.sort_values("tx_time_seconds").tx_amount.to_numpy()
        tiny = amounts <= 5
        assert 3 <= tiny.sum() <= 6 and 1 <= (~tiny).sum() <= 2
        assert (
            tiny[: tiny.sum()].all() and ((amounts[~tiny] >= 100) & (amounts[~tiny] <= 200)).all()
        )
        assert burst.tx_datetime.dt.hour.min() <= 4
        home = set(profiles.reachable(card).tolist())
        assert sum(t in home for t in burst.terminal_id) <= 1  # anywhere but the usual places
    assert (tested.tx_amount < 220).all()  # the old >220 rule never sees them


def test_four_weeks_of_the_full_handbook_world_take_seconds():
    began = time.perf_counter()
    change = DriftConfig(dt.date(2018, 10, 8), 2.0, NewPattern.card_testing)
    rows = [
        t.num_rows
        for _, t in continue_days(HandbookConfig(), dt.date(2018, 10, 1), 28, change, 1_754_155)
    ]
    assert time.perf_counter() - began < 20
    assert len(rows) == 28 and 9_000 < np.mean(rows) < 10_200  # handbook: ~9,586 a day


def test_a_change_must_change_something():
    with pytest.raises(ValueError, match="nothing changes"):
        DriftConfig(NEXT_DAY)
    with pytest.raises(ValueError, match="amount factor"):
        DriftConfig(NEXT_DAY, amount_factor=0.0)
    with pytest.raises(ValueError, match="before the epoch"):
        continue_days(WORLD, dt.date(2018, 3, 1), 1)


def test_cli_refuses_to_continue_an_empty_lake(tmp_path):
    result = runner.invoke(
        app, ["simulate", "--continue", "--out", str(tmp_path)], terminal_width=200
    )
    assert result.exit_code == 2 and "nothing to continue" in plain(result.output)


def test_the_cli_offers_every_pattern_of_the_simulator():
    assert [p.value for p in NewPatternOption] == [p.value for p in NewPattern]
