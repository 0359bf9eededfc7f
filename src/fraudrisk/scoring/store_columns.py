"""A scored batch as the alert store's bulk columns: the one builder every writer shares.

The stream scorer, batch scoring, Kinesis, Lambda (through :mod:`fraudrisk.jobs.runtime`) and
the Transaction API's sync mode (:mod:`fraudrisk.api.store_sink`) all store what the served
variants scored in the same form, :class:`~fraudrisk.alerts.records.ScoreColumns`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fraudrisk.alerts.records import ScoreColumns
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.vectors import TransactionBatch


def store_columns(
    batch: TransactionBatch, scores: RowScores, tx_datetime: Sequence[dt.datetime]
) -> ScoreColumns:
    """The store columns of a scored batch.

    Args:
        batch: The transactions as a scoring batch.
        scores: The served variants' scores of ``batch``, row by row.
        tx_datetime: The transactions' times, naive UTC, in batch order (the batch holds only
            whole seconds).

    Returns:
        One row per transaction, in batch order.
    """
    return ScoreColumns(
        transaction_id=batch.transaction_id.tolist(),
        customer_id=batch.customer_id.tolist(),
        terminal_id=batch.terminal_id.tolist(),
        tx_datetime=list(tx_datetime),
        tx_amount=batch.tx_amount.tolist(),
        risk_score=scores.risk_score.tolist(),
        decision=list(scores.decision),
        reason_codes=list(scores.reason_codes),
        model_version=list(scores.model_version),
        variant=list(scores.variant),
        fallback=[bool(flag) for flag in scores.fallback],
        policy_version=list(scores.policy_version or []),
        route=list(scores.route or []),
        priority_factor=[float(f) for f in scores.priority_factor or []],
        policy_rules=list(scores.policy_rules or []),
    )
