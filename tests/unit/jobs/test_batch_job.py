"""Batch scoring: a lake day range or files into the alert store, idempotent, with quarantine.

Negative controls: a store that appends instead of upserting double counts under the same
re-run check; scoring without the state rebuild gives other scores than the full replay.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from tests.unit.jobs.helpers import Platform
from typer.testing import CliRunner

from fraudrisk.alerts.store import ALERTS, SCORES, AlertStore, ScoreRecord, WriteResult
from fraudrisk.io.lake import Lake
from fraudrisk.io.storage import open_storage
from fraudrisk.jobs.batch_job import BatchOptions, BatchTotals, chunks, rebuild_state, run_batch
from fraudrisk.jobs.batch_sources import file_source, lake_source, quarantine_storage
from fraudrisk.jobs.runtime import Runtime, build_runtime

pytestmark = pytest.mark.timeout(300)
PAN = "4111111111111111"


def runtime(platform: Platform, db: Path) -> Runtime:
    return build_runtime(platform.settings(db), online_state=False, require_model=True)


def score_lake(
    rt: Runtime,
    lake: Lake,
    start: dt.date,
    end: dt.date,
    *,
    rebuild: bool = True,
    out: Path | None = None,
) -> BatchTotals:
    if rebuild:
        rebuild_state(rt.cache, lake, start, 1000)
    options = BatchOptions(
        chunk_size=300, out=open_storage(str(out)) if out else None, replay_labels=rebuild
    )
    return run_batch(rt, lake_source(lake, start, end), options)


def stored(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every score and alert row (write times left out), in id order."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        scores = connection.execute(
            sa.select(*[c for c in SCORES.c if c.name != "scored_at"]).order_by(
                SCORES.c.transaction_id
            )
        ).all()
        alerts = connection.execute(
            sa.select(*[c for c in ALERTS.c if c.name != "created_at"]).order_by(
                ALERTS.c.transaction_id
            )
        ).all()
    engine.dispose()
    return [tuple(r) for r in scores], [tuple(r) for r in alerts]


def risk_by_id(db: Path) -> dict[int, float]:
    return {int(r[0]): float(r[5]) for r in stored(db)[0]}


# ----------------------------------------------------------------------------- idempotence
class AppendingStore(AlertStore):
    """A sink that appends every record (no upsert): what an idempotent job must not be."""

    def __init__(self, url: str, rows: list[ScoreRecord]) -> None:
        super().__init__(url)
        self.rows = rows

    def write(self, records: Sequence[ScoreRecord]) -> WriteResult:
        self.rows.extend(records)
        alerts = sum(r.is_alert for r in records)
        return WriteResult(len(records), alerts, tuple(records))

    def count(self, table: str = "scores") -> int:
        return len([r for r in self.rows if table == "scores" or r.is_alert])


def assert_rerun_changes_nothing(
    make: Callable[[], Runtime], run: Callable[[Runtime], BatchTotals]
):
    first_rt = make()
    first = run(first_rt)
    before = (first_rt.store.count(), first_rt.store.count("alerts"))
    second_rt = make()  # a new job: fresh state and model, same store
    second = run(second_rt)
    after = (second_rt.store.count(), second_rt.store.count("alerts"))
    assert first.new_scores == first.scored > 0
    assert (second.new_scores, second.new_alerts) == (0, 0), "the re-run wrote new rows"
    assert after == before, f"the re-run changed the store: {before} -> {after}"
    assert second.alerts == first.alerts


def test_a_lake_range_is_scored_once_and_a_rerun_changes_nothing(platform, tmp_path):
    lake = Lake.open(platform.lake_uri)
    days = lake.days()
    start, end = days[10], days[13]
    expected = lake.read_days(start, end, ["transaction_id"])["transaction_id"].to_pylist()
    db, out = tmp_path / "alerts.db", tmp_path / "scores"
    totals: list[BatchTotals] = []

    def run(rt: Runtime) -> BatchTotals:
        totals.append(score_lake(rt, lake, start, end, out=out))
        return totals[-1]

    assert_rerun_changes_nothing(lambda: runtime(platform, db), run)
    scores, alerts = stored(db)
    assert sorted(r[0] for r in scores) == sorted(expected)
    assert totals[0].alerts == len(alerts) > 0
    assert totals[0].rows == len(expected) and totals[0].rejected == 0
    written = pq.read_table(out).sort_by("transaction_id")
    assert written["transaction_id"].to_pylist() == sorted(expected)
    assert sorted(p.parent.name for p in out.rglob("*.parquet"))[0] == f"dt={start}"


def test_negative_control_an_appending_store_double_counts(platform, tmp_path):
    lake = Lake.open(platform.lake_uri)
    day = lake.days()[10]
    rows: list[ScoreRecord] = []

    def make() -> Runtime:
        rt = runtime(platform, tmp_path / "unused.db")
        rt.store = AppendingStore(f"sqlite:///{tmp_path / 'unused.db'}", rows)
        return rt

    with pytest.raises(AssertionError, match="re-run wrote new rows"):
        assert_rerun_changes_nothing(make, lambda rt: score_lake(rt, lake, day, day))
    assert len(rows) == 2 * len(set(r.transaction_id for r in rows))  # every one twice


# -------------------------------------------------------------------------- entity state
def test_state_rebuilt_from_the_lake_scores_as_a_replay_from_the_start(platform, tmp_path):
    lake = Lake.open(platform.lake_uri)
    days = lake.days()
    start, end = days[12], days[14]
    score_lake(runtime(platform, tmp_path / "full.db"), lake, days[0], end)
    score_lake(runtime(platform, tmp_path / "rebuilt.db"), lake, start, end)
    score_lake(runtime(platform, tmp_path / "cold.db"), lake, start, end, rebuild=False)
    full, rebuilt = risk_by_id(tmp_path / "full.db"), risk_by_id(tmp_path / "rebuilt.db")
    cold = risk_by_id(tmp_path / "cold.db")
    ids = sorted(rebuilt)
    assert len(ids) > 100 and set(ids) <= set(full)
    assert [rebuilt[i] for i in ids] == [full[i] for i in ids]
    # negative control: without the history the features, hence the scores, differ
    assert not np.allclose([cold[i] for i in ids], [full[i] for i in ids])


def test_chunks_never_cross_a_day_and_keep_every_row(platform):
    lake = Lake.open(platform.lake_uri)
    days = lake.days()
    rows = lake.read_days(days[0], days[3], ["transaction_id", "tx_datetime"])
    rows = rows.sort_by([("tx_datetime", "ascending"), ("transaction_id", "ascending")])
    pieces = list(chunks(rows, 50))
    assert sum(p.num_rows for p in pieces) == rows.num_rows
    assert all(p.num_rows <= 50 for p in pieces)
    assert all(len({d.date() for d in p["tx_datetime"].to_pylist()}) == 1 for p in pieces)
    assert pa.concat_tables(pieces).equals(rows)


# ---------------------------------------------------------------------------------- files
def write_inputs(platform: Platform, root: Path) -> tuple[set[int], int]:
    """Good and bad rows in CSV and Parquet files, a hidden and a corrupt file."""
    lake = Lake.open(platform.lake_uri)
    day = lake.days()[5]
    table = lake.read_days(
        day, day, ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    ).slice(0, 30)
    rows = table.to_pylist()
    root.mkdir()
    with (root / "a.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.column_names)
        for row in rows[:10]:
            writer.writerow(
                [row[c] if c != "tx_datetime" else row[c].isoformat() for c in table.column_names]
            )
        writer.writerow([900001, "2018-04-02T00:00:00", 1, 2, "-5"])  # negative amount
        writer.writerow([900002, "yesterday", 1, 2, "3.5"])  # not a date
        writer.writerow([rows[0]["transaction_id"], "2018-04-02T00:00:00", 1, 2, "1"])  # dup
        writer.writerow([900003, "2018-04-02T00:00:00", 1])  # malformed: 3 fields
    with (root / "card.csv").open("w") as handle:  # a clear card number in card_token
        handle.write(
            f"transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,card_token\n"
            f"900004,2018-04-02T00:00:00,1,2,3.0,{PAN}\n"
        )
    (root / "sub").mkdir()
    pq.write_table(table.slice(10, 20), root / "sub" / "b.parquet")
    pq.write_table(table.slice(0, 1), root / "_hidden.parquet")
    (root / "broken.parquet").write_bytes(b"PAR1 definitely not parquet")
    return {r["transaction_id"] for r in rows}, 5


def score_files(platform: Platform, db: Path, inputs: Path) -> BatchTotals:
    rt = runtime(platform, db)
    options = BatchOptions(quarantine=quarantine_storage(str(inputs), None, None))
    return run_batch(rt, file_source(str(inputs), dt.date(2018, 4, 1)), options)


def test_files_are_validated_scored_and_bad_rows_quarantined(platform, tmp_path):
    inputs, db = tmp_path / "incoming", tmp_path / "alerts.db"
    good, bad = write_inputs(platform, inputs)
    totals = score_files(platform, db, inputs)
    assert {r[0] for r in stored(db)[0]} == good
    assert (totals.scored, totals.rejected, totals.units) == (len(good), bad, 4)
    assert len(totals.refused) == 1 and "broken.parquet" in totals.refused[0]
    quarantine = tmp_path / "quarantine"
    files = sorted(p.name for p in quarantine.iterdir())
    assert files == ["a.csv.rejected.parquet", "card.csv.rejected.parquet"]
    rejected = pa.concat_tables(
        [pq.read_table(quarantine / f).select(["reject_reason"]) for f in files]
    )["reject_reason"].to_pylist()
    kinds = sorted(reason.split(":")[0] for reason in rejected)
    assert kinds == [
        "card_token",
        "row has 3 fields, header has 5",
        "transaction_id",
        "tx_amount",
        "tx_datetime",
    ]
    assert PAN.encode() not in (quarantine / "card.csv.rejected.parquet").read_bytes()
    assert PAN not in str(pq.read_table(quarantine / "card.csv.rejected.parquet").to_pylist())
    again = score_files(platform, db, inputs)  # idempotent: same store, same quarantine files
    assert (again.new_scores, again.new_alerts) == (0, 0)
    assert sorted(p.name for p in quarantine.iterdir()) == files


# ------------------------------------------------------------------------------------ CLI
def test_cli_scores_a_lake_range_and_prints_a_summary(platform, tmp_path, monkeypatch):
    from fraudrisk.cli.main import app
    from fraudrisk.config import get_settings

    lake = Lake.open(platform.lake_uri)
    day = lake.days()[8]
    monkeypatch.setenv("FRAUDRISK_HOME", str(platform.home))
    monkeypatch.setenv("FRAUDRISK_DB__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        args = [
            "score",
            "batch",
            "--lake",
            platform.lake_uri,
            "--start",
            str(day),
            "--end",
            str(day),
            "--state-from-lake",
            "--out",
            str(tmp_path / "out"),
        ]
        result = CliRunner().invoke(app, args, terminal_width=200)
        missing = CliRunner().invoke(app, ["score", "batch", "--input", str(tmp_path / "nope")])
        bad_date = CliRunner().invoke(app, ["score", "batch", "--start", "tomorrow"])
        no_feast = CliRunner().invoke(app, ["score", "batch", "--lake", platform.lake_uri])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    n = len(lake.read_days(day, day, ["transaction_id"]))
    assert f"{n:,} rows in 1 unit(s)" in result.output and "rows/s" in result.output
    assert "state rebuilt from" in result.output
    assert len(stored(tmp_path / "cli.db")[0]) == n
    assert missing.exit_code == 2 and "no input at" in missing.output
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output
    assert no_feast.exit_code == 1 and "cannot open the online store" in no_feast.output
