"""A plain-pandas reference implementation of the feature definitions, written like the handbook.

It is deliberately independent of :mod:`fraudrisk.features.kernel`: the customer and terminal
features are computed the way the handbook's chapter 3 does it — ``groupby(entity).apply`` of a
function that puts the entity's transactions on a datetime index and takes time-based
``rolling(f"{n}d")`` windows; the terminal windows are ``rolling(d + n) - rolling(d)`` with the
label delay ``d``, and risk is ``fillna(0)``-ed where the window is empty. Our four extra
features use equally plain pandas (rolling sums minus the current row, ``diff`` within groups).

It serves two purposes: tests assert that the production kernel equals it on every feature, and
``benchmarks/features_throughput.py`` uses it as the single-process baseline of the Spark job.

Ties: rows are sorted by ``(tx_datetime, transaction_id)`` before grouping (groups keep that
order), and a time-based rolling window at a row covers the rows *up to that row*, so a
transaction sees the same-second transactions of its entity with a smaller id and none after —
exactly the arrival-order semantics of :mod:`fraudrisk.features.definitions`.
"""

from __future__ import annotations

import pandas as pd

from fraudrisk.features.definitions import (
    CUSTOMER_HORIZON_SECONDS,
    DAY,
    FEATURE_NAMES,
    LABEL_DELAY_DAYS,
    SECONDS_SINCE_PREV_CAP,
    VELOCITY_SECONDS,
    WINDOW_DAYS,
)

_INPUT = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud"]


def reference_features(
    transactions: pd.DataFrame, label_delay_days: int = LABEL_DELAY_DAYS
) -> pd.DataFrame:
    """Compute all feature columns of :data:`FEATURE_NAMES` with handbook-style pandas.

    Args:
        transactions: Lake columns, at least transaction_id, tx_datetime (naive UTC),
            customer_id, terminal_id, tx_amount and tx_fraud (1 fraud, 0 genuine, -1 unknown,
            which counts as not fraud). Any row order.
        label_delay_days: The label delay ``d`` of the terminal windows. Only tests change it
            (a shorter delay leaks labels that are not known yet).

    Returns:
        One row per transaction, sorted by transaction_id: ``transaction_id`` followed by the
        feature columns in :data:`FEATURE_NAMES` order (ints as int64, floats as float64).
    """
    df = _chronological(transactions)
    features = pd.concat(
        [
            df[["transaction_id", "tx_amount"]],
            _calendar_features(df["tx_datetime"]),
            df.groupby("customer_id", group_keys=False)[["tx_datetime", "tx_amount"]].apply(
                _customer_spending_features
            ),
            _new_terminal_feature(df),
            df.groupby("terminal_id", group_keys=False)[["tx_datetime", "tx_fraud"]].apply(
                _terminal_risk_features, delay_days=label_delay_days
            ),
        ],
        axis=1,
    )
    features = features.sort_values("transaction_id").reset_index(drop=True)
    return features[["transaction_id", *FEATURE_NAMES]]


def _chronological(transactions: pd.DataFrame) -> pd.DataFrame:
    """The input columns, sorted by (time, transaction id), with a fresh row index."""
    df = transactions[_INPUT].copy()
    df["tx_amount"] = df["tx_amount"].astype("float64")
    df["tx_fraud"] = (df["tx_fraud"] == 1).astype("float64")  # unknown (-1) is not a fraud
    df = df.sort_values(["tx_datetime", "transaction_id"], kind="stable")
    return df.reset_index(drop=True)


def _calendar_features(tx_datetime: pd.Series) -> pd.DataFrame:
    """``tx_during_weekend`` and ``tx_during_night`` as in the handbook."""
    return pd.DataFrame(
        {
            "tx_during_weekend": (tx_datetime.dt.weekday >= 5).astype("int64"),
            "tx_during_night": (tx_datetime.dt.hour <= 6).astype("int64"),
        },
        index=tx_datetime.index,
    )


def _customer_spending_features(customer_transactions: pd.DataFrame) -> pd.DataFrame:
    """Window features of one customer's chronologically ordered transactions.

    Args:
        customer_transactions: tx_datetime and tx_amount of one customer, in (time, id) order.

    Returns:
        The customer features (all but terminal novelty), on the input's index.
    """
    amount = pd.Series(
        customer_transactions["tx_amount"].to_numpy(),
        index=pd.DatetimeIndex(customer_transactions["tx_datetime"]),
    )
    out = {}
    for n in WINDOW_DAYS:
        window = amount.rolling(f"{n}d")
        total, count = window.sum(), window.count()
        out[f"customer_id_nb_tx_{n}day_window"] = count.astype("int64")
        out[f"customer_id_avg_amount_{n}day_window"] = total / count
        if n * DAY == CUSTOMER_HORIZON_SECONDS:
            out["customer_id_amount_ratio_30day_window"] = _amount_ratio(amount, total, count)
    out["customer_id_nb_tx_1hour_window"] = (
        amount.rolling(f"{VELOCITY_SECONDS}s").count().astype("int64")
    )
    gap = amount.index.to_series().diff().dt.total_seconds()
    out["customer_id_seconds_since_prev_tx"] = (
        gap.fillna(SECONDS_SINCE_PREV_CAP).clip(upper=SECONDS_SINCE_PREV_CAP).astype("int64")
    )
    return pd.DataFrame(
        {k: v.to_numpy() for k, v in out.items()}, index=customer_transactions.index
    )


def _amount_ratio(amount: pd.Series, total: pd.Series, count: pd.Series) -> pd.Series:
    """Amount / mean of the previous amounts of the 30-day window (1 without such a mean)."""
    previous_mean = ((total - amount) / (count - 1)).where(count > 1)  # NaN: no previous
    ratio = amount / previous_mean
    return ratio.where(previous_mean > 0, 1.0)


def _new_terminal_feature(df: pd.DataFrame) -> pd.Series:
    """1 where the customer did not use the terminal in the previous 30 days."""
    since_last_use = df.groupby(["customer_id", "terminal_id"])["tx_datetime"].diff()
    recent = since_last_use < pd.Timedelta(seconds=CUSTOMER_HORIZON_SECONDS)  # NaT: False
    return (~recent).astype("int64").rename("customer_id_new_terminal_30day_window")


def _terminal_risk_features(terminal_transactions: pd.DataFrame, delay_days: int) -> pd.DataFrame:
    """Count and risk windows of one terminal, shifted back by the label delay.

    Args:
        terminal_transactions: tx_datetime and tx_fraud (0/1) of one terminal, in (time, id)
            order.
        delay_days: The label delay ``d``; the window of size n is ``(t - (d + n), t - d]``.

    Returns:
        The terminal features, on the input's index.
    """
    fraud = pd.Series(
        terminal_transactions["tx_fraud"].to_numpy(),
        index=pd.DatetimeIndex(terminal_transactions["tx_datetime"]),
    )
    delayed = fraud.rolling(f"{delay_days}d")
    nb_fraud_delay, nb_tx_delay = delayed.sum(), delayed.count()
    out = {}
    for n in WINDOW_DAYS:
        delayed_window = fraud.rolling(f"{delay_days + n}d")
        nb_tx_window = delayed_window.count() - nb_tx_delay
        nb_fraud_window = delayed_window.sum() - nb_fraud_delay
        out[f"terminal_id_nb_tx_{n}day_window"] = nb_tx_window.astype("int64")
        out[f"terminal_id_risk_{n}day_window"] = (nb_fraud_window / nb_tx_window).fillna(0.0)
    return pd.DataFrame(
        {k: v.to_numpy() for k, v in out.items()}, index=terminal_transactions.index
    )
