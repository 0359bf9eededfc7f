"""A changing world: a handbook lake continued day by day, changed from a given day or not."""

import datetime as dt
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import ks_2samp
from typer.testing import CliRunner

from fraudrisk.cli.data import NewPatternOption
from fraudrisk.cli.main import app
from fraudrisk.data.handbook import HandbookConfig, build_profiles
from fraudrisk.data.simulate import handbook_days, write_days
from fraudrisk.data.summary import inspect_lake
from fraudrisk.data.world_changes import (
    CARD_TESTING_SCENARIO,
    DriftConfig,
    NewPattern,
    continue_days,
    continue_lake,
    lake_end,
)
from fraudrisk.io.lake import Lake

WORLD = HandbookConfig(n_customers=400, n_terminals=800, nb_days=30)
NEXT_DAY = dt.date(2018, 5, 1)  # day 30: the one after the small handbook lake
runner = CliRunner()


def plain(output: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def frame(days) -> pd.DataFrame:
    return pa.concat_tables(table for _, table in days).to_pandas()


@pytest.fixture(scope="module")
def handbook_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small handbook lake (400 customers, 30 days), written as the demo writes its own."""
    root = tmp_path_factory.mktemp("handbook") / "lake"
    lake = Lake.open(str(root))
    lake.init(WORLD.start_date)
    write_days(lake, handbook_days(WORLD))
    return root


@pytest.fixture()
def lake_copy(handbook_lake: Path, tmp_path: Path) -> Lake:
    shutil.copytree(handbook_lake, tmp_path / "lake")
    return Lake.open(str(tmp_path / "lake"))


@pytest.fixture(scope="module")
def handbook(handbook_lake: Path) -> pd.DataFrame:
    return Lake.open(str(handbook_lake)).read(include_labels=True).to_pandas()


def test_continuation_appends_days_with_ids_after_the_lakes_largest(lake_copy, handbook):
    result = continue_lake(lake_copy, WORLD, 14)
    assert result.days == 14 and result.rows > 0
    days = lake_copy.days()
    assert days == [WORLD.start_date + dt.timedelta(days=i) for i in range(44)]
    new = lake_copy.read(NEXT_DAY, include_labels=True).to_pandas()
    ids = new["transaction_id"].to_numpy()
    assert np.array_equal(ids, np.arange(handbook.transaction_id.max() + 1, ids[-1] + 1))
    assert np.all(np.diff(new["tx_time_seconds"].to_numpy()) >= 0)
    assert inspect_lake(lake_copy).ok  # epoch, day columns and unique ids across the lake
    assert lake_end(lake_copy).last_day == dt.date(2018, 5, 14)


def test_continuation_keeps_the_customer_and_terminal_profiles(handbook):
    new = frame(continue_days(WORLD, NEXT_DAY, 20, first_transaction_id=10**6))
    profiles = build_profiles(WORLD)
    genuine = new[new.tx_fraud_scenario == 0]
    reachable = [
        terminal in profiles.reachable(customer)
        for customer, terminal in zip(genuine.customer_id, genuine.terminal_id, strict=True)
    ]
    assert all(reachable)
    assert set(new.customer_id) <= set(handbook.customer_id)  # the same active customers
    per_customer = pd.DataFrame(
        {
            "handbook": handbook[handbook.tx_fraud_scenario == 0].groupby("customer_id").size()
            / 30,
            "continued": genuine.groupby("customer_id").size() / 20,
        }
    ).dropna()
    assert per_customer.corr().iloc[0, 1] > 0.85  # each customer keeps their daily volume


def test_without_a_change_amounts_and_volume_match_the_handbook(handbook):
    new = frame(continue_days(WORLD, NEXT_DAY, 20, first_transaction_id=10**6))
    old_amounts = handbook[handbook.tx_fraud_scenario == 0].tx_amount
    new_amounts = new[new.tx_fraud_scenario == 0].tx_amount
    assert ks_2samp(old_amounts, new_amounts).statistic < 0.03
    assert abs(new_amounts.mean() / old_amounts.mean() - 1) < 0.03
    per_day = new.groupby("tx_time_days").size().mean()
    assert abs(per_day / handbook.groupby("tx_time_days").size().mean() - 1) < 0.05
    assert CARD_TESTING_SCENARIO not in set(new.tx_fraud_scenario)


def test_the_handbooks_compromises_run_on_into_the_continuation(handbook):
    last_weeks = handbook[handbook.tx_time_days >= 2]
    compromised = set(last_weeks[last_weeks.tx_fraud_scenario == 2].terminal_id)
    new = frame(continue_days(WORLD, NEXT_DAY, 2, first_transaction_id=10**6))
    still = set(new[new.tx_fraud_scenario == 2].terminal_id)
    assert compromised and still
    # Terminals compromised in the lake's last 27 days go on; only the day's own are new.
    assert len(still & compromised) / len(still) > 0.85


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


def test_cli_continues_a_lake_with_a_change(lake_copy):
    uri = lake_copy.storage.uri
    args = ["simulate", "--continue", "--days", "7", "--customers", "400", "--terminals", "800"]
    change = [
        "--drift-from",
        "2018-05-04",
        "--amount-factor",
        "1.5",
        "--new-pattern",
        "card-testing",
        "--pattern-cards",
        "5",
    ]
    result = runner.invoke(app, [*args, *change, "--out", uri], terminal_width=150)
    assert result.exit_code == 0, result.output
    assert "from 2018-05-04: amounts ×1.5" in plain(result.output)
    assert lake_copy.days()[-1] == dt.date(2018, 5, 7)
    added = lake_copy.read(NEXT_DAY, include_labels=True).to_pandas()
    first_tested = added[added.tx_fraud_scenario == CARD_TESTING_SCENARIO].tx_datetime.min()
    assert first_tested.date() == dt.date(2018, 5, 4)
    report = runner.invoke(app, ["lake", "check", "--lake", uri], terminal_width=150)
    assert report.exit_code == 0 and "scenario 4" in report.output, report.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drift-from", "2018-05-03", "--amount-factor", "2"], "need --continue"),
        (["--continue", "--amount-factor", "2"], "need --drift-from"),
        (["--continue", "--drift-from", "2018-05-03"], "needs a change"),
        (["--continue", "--start-date", "2018-04-10"], "after the lake's last day"),
        (["--continue"], "not a handbook world"),  # with --customers 10, below its ids
    ],
)
def test_cli_refuses_what_cannot_be_continued(lake_copy, args, message):
    if message == "not a handbook world":
        args = [*args, "--customers", "10"]
    result = runner.invoke(
        app, ["simulate", *args, "--out", lake_copy.storage.uri], terminal_width=200
    )
    assert result.exit_code == 2 and message in plain(result.output), result.output
    assert lake_copy.days()[-1] == dt.date(2018, 4, 30)  # nothing written


def test_cli_refuses_to_continue_an_empty_lake(tmp_path):
    result = runner.invoke(
        app, ["simulate", "--continue", "--out", str(tmp_path)], terminal_width=200
    )
    assert result.exit_code == 2 and "nothing to continue" in plain(result.output)


def test_the_cli_offers_every_pattern_of_the_simulator():
    assert [p.value for p in NewPatternOption] == [p.value for p in NewPattern]
