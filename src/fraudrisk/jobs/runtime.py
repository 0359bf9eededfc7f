"""From scores to store records, shared by every source: Kafka, Kinesis, Lambda, batch files.

:func:`score_columns` turns a scored batch into the alert store's bulk :class:`ScoreColumns`
(:func:`score_records`: one :class:`ScoreRecord` per row);
:func:`score_rows` runs the whole step (features from the state cache, the served variants,
the state update); :func:`records_table` is the Arrow form of records (Parquet outputs);
:func:`build_runtime` wires variants, state cache and store from the settings as the stream
scorer does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from fraudrisk.alerts.store import AlertStore, ScoreColumns, ScoreRecord
from fraudrisk.config import Settings
from fraudrisk.jobs.decode import Decoded
from fraudrisk.jobs.state_cache import StateCache
from fraudrisk.policy.live import live_policy
from fraudrisk.schemas import OPTIONAL_COLUMNS
from fraudrisk.scoring.scorer import RowScores
from fraudrisk.scoring.state_reader import FeastStateReader, StateReader
from fraudrisk.scoring.store_columns import store_columns
from fraudrisk.scoring.vectors import TransactionBatch
from fraudrisk.serving.variants import ServedVariants, ServiceSpec

RECORDS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("terminal_id", pa.int64()),
        ("tx_datetime", pa.timestamp("us")),
        ("tx_amount", pa.float64()),
        ("risk_score", pa.float64()),
        ("decision", pa.string()),
        ("reason_codes", pa.string()),
        ("model_version", pa.string()),
        ("variant", pa.string()),
        ("fallback", pa.bool_()),
        ("policy_version", pa.int64()),
        ("route", pa.string()),
        ("priority_factor", pa.float64()),
        ("policy_rules", pa.string()),
    ]
)


def score_columns(rows: pa.Table, batch: TransactionBatch, scores: RowScores) -> ScoreColumns:
    """The store columns of a scored batch.

    Args:
        rows: The batch's validated rows (lake schema), for their timestamps.
        batch: The same rows as a scoring batch.
        scores: The served variants' scores of ``batch``, row by row.

    Returns:
        One row per transaction, in batch order (built by
        :func:`~fraudrisk.scoring.store_columns.store_columns`, as the API's are).
    """
    return store_columns(batch, scores, rows["tx_datetime"].to_pylist())


def policy_fields(rows: pa.Table) -> dict[str, Any]:
    """The optional transaction fields of validated rows, for the policy's rules."""
    return {
        name: rows[name].to_numpy(zero_copy_only=False)
        for name in OPTIONAL_COLUMNS
        if name in rows.column_names
    }


def score_records(rows: pa.Table, batch: TransactionBatch, scores: RowScores) -> list[ScoreRecord]:
    """The store records of a scored batch (:func:`score_columns`, one record per row)."""
    return score_columns(rows, batch, scores).records()


def score_rows(variants: ServedVariants, cache: StateCache, rows: pa.Table) -> list[ScoreRecord]:
    """Score validated rows (lake schema) and merge them into the entity state.

    Rows must come in event-time order across calls: each transaction's features see the
    state of the transactions scored before it (and the earlier rows of the same call).
    """
    if rows.num_rows == 0:
        return []
    batch = Decoded(rows, list(range(rows.num_rows)), []).batch()
    scores = variants.score(batch, policy_fields(rows))
    cache.apply(batch)
    return score_records(rows, batch, scores)


def records_table(records: Sequence[ScoreRecord]) -> pa.Table:
    """Records as an Arrow table (:data:`RECORDS_SCHEMA`), e.g. for a Parquet output."""
    columns = {name: [getattr(r, name) for r in records] for name in RECORDS_SCHEMA.names}
    return pa.table(columns, schema=RECORDS_SCHEMA)


@dataclass
class Runtime:
    """What scores a source: the served variants, their entity-state cache, the store."""

    settings: Settings
    variants: ServedVariants
    cache: StateCache
    store: AlertStore


def build_runtime(
    settings: Settings,
    *,
    online_state: bool,
    explain: Literal["all", "flagged"] = "flagged",
    require_model: bool = False,
) -> Runtime:
    """The variants of the serving settings over a state cache, and the alert store.

    Args:
        settings: The platform settings.
        online_state: Read entity state through from the Feast online store (else empty).
        explain: Reason codes for every transaction or only for alerts.
        require_model: Raise if the model cannot load (a batch job must not write rule
            decisions); otherwise decide by the fallback rules while retrying, as the stream
            scorer does.

    Raises:
        RuntimeError: If the online store cannot be opened, or with ``require_model`` when the
            stable model cannot be loaded.
    """
    serving = settings.serving.model_copy(update={"reason_codes_for": explain})
    settings = settings.model_copy(update={"serving": serving})
    cache = StateCache(_online_store(settings) if online_state else None)
    variants = ServedVariants(
        ServiceSpec.from_settings(settings),
        settings,
        states=lambda _settings: cache,
        policy=live_policy(settings),
    )
    if not variants.load():
        if require_model:
            raise RuntimeError(f"cannot load {settings.serving.model_uri}: {variants.load_error}")
        variants.serve_rules_only()
        variants.keep_loading(settings.api.model_retry_s)
    return Runtime(settings, variants, cache, AlertStore(settings.db_url))


def _online_store(settings: Settings) -> StateReader:
    try:
        return FeastStateReader.from_settings(settings)
    except Exception as error:  # Feast raises many types: one clear message
        raise RuntimeError(
            f"cannot open the online store at {settings.feast_repo_path} "
            f"({type(error).__name__}: {error})"
        ) from error


@dataclass
class StreamTotals:
    """Counts of a source (Kafka, Kinesis) since start."""

    consumed: int = 0
    scored: int = 0
    rejected: int = 0
    new_scores: int = 0
    new_alerts: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Records consumed per second since start."""
        return self.consumed / max(time.monotonic() - self.started, 1e-9)
