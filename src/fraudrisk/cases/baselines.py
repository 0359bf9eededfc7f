"""The customer's own baseline for each reason-code feature, from the offline feature table.

The case view puts each of the model's reasons (feature, value, contribution) beside what is
usual *for this customer*: the mean of that feature over the customer's transactions in the
``days`` before the alert (strictly before it: the alert's own row never counts). The feature
table is partitioned by day, so a baseline reads at most ``days + 1`` partitions; a partition
read is kept (least recently used first out) because an analyst's cases share their days.
A rebuilt feature table is seen by a restarted service.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.features.table import FeatureTable

#: Day partitions kept in memory (each holds one day of every customer's features).
CACHED_DAYS = 96


class FeatureTableBaselines:
    """Baselines of the feature table (the :class:`~fraudrisk.cases.queries.Baselines` form)."""

    def __init__(self, table: FeatureTable, days: int = 30) -> None:
        """Baselines over the ``days`` before each alert."""
        self.table, self.days = table, days
        self._day = functools.lru_cache(maxsize=CACHED_DAYS)(self._read_day)

    def customer_baseline(
        self, customer_id: int, features: Sequence[str], before: dt.datetime
    ) -> dict[str, float]:
        """Mean of each known feature over the customer's transactions in the window.

        Returns:
            Feature → mean, for the features the table has; empty when the customer has no
            earlier transaction in the window.
        """
        known = [name for name in features if name in FEATURE_NAMES]
        if not known:
            return {}
        rows = self._customer_rows(customer_id, before)
        if not rows.num_rows:
            return {}
        return {name: float(pc.mean(rows[name]).as_py()) for name in known}

    def _customer_rows(self, customer_id: int, before: dt.datetime) -> pa.Table:
        start = before - dt.timedelta(days=self.days)
        tables = []
        for offset in range(self.days + 1):
            day = self._day(before.date() - dt.timedelta(days=offset))
            if day is None:
                continue
            mine = pc.and_(
                pc.equal(day["customer_id"], customer_id),
                pc.and_(
                    pc.less(day["tx_datetime"], pa.scalar(before, day["tx_datetime"].type)),
                    pc.greater_equal(day["tx_datetime"], pa.scalar(start, day["tx_datetime"].type)),
                ),
            )
            tables.append(day.filter(mine))
        return pa.concat_tables(tables) if tables else pa.table({})

    def _read_day(self, day: dt.date) -> pa.Table | None:
        columns = ["customer_id", "tx_datetime", *FEATURE_NAMES]
        parts = self.table.partitions.read_day(day, columns)
        return pa.concat_tables(parts) if parts else None
