"""Batch scoring against a real S3-compatible server on loopback (moto_server).

A lake copied to a bucket is scored day range by day range like the local one (same scores);
files under an S3 prefix are validated, scored and their bad rows quarantined in the bucket,
and the scores written as Parquet to another prefix. Running the job again changes nothing:
no new rows in the store, the same objects with the same content.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from tests.integration.jobs.aws import boto, env, moto_server
from tests.unit.jobs.helpers import Platform, build_platform
from typer.testing import CliRunner

from fraudrisk.alerts.store import SCORES
from fraudrisk.cli.main import app
from fraudrisk.config import get_settings
from fraudrisk.io.lake import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
BUCKET = "fraudrisk-test"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        boto("s3", url).create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return build_platform(tmp_path_factory.mktemp("batch-s3-home"))


def upload(endpoint: str, root: Path, prefix: str) -> None:
    s3 = boto("s3", endpoint)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(root).as_posix()}")


def objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    s3 = boto("s3", endpoint)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    # pyarrow leaves "directory/" marker objects: not outputs
    return {
        o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in listed
        if not o["Key"].endswith("/")
    }


def score(platform: Platform, endpoint: str, db: Path, monkeypatch, *args: str):
    for name, value in {
        **env(endpoint),
        "FRAUDRISK_HOME": str(platform.home),
        "FRAUDRISK_DB__URL": f"sqlite:///{db}",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["score", "batch", *args], terminal_width=200)
    finally:
        get_settings.cache_clear()


def risk(db: Path) -> dict[int, float]:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(SCORES.c.transaction_id, SCORES.c.risk_score)).all()
    engine.dispose()
    return {int(i): float(r) for i, r in rows}


def test_an_s3_lake_scores_as_the_local_lake(platform, endpoint, tmp_path, monkeypatch):
    upload(endpoint, Path(platform.lake_uri), "lake")
    days = Lake.open(platform.lake_uri).days()
    span = ["--start", str(days[9]), "--end", str(days[11]), "--state-from-lake"]
    on_s3 = score(
        platform, endpoint, tmp_path / "s3.db", monkeypatch, "--lake", f"s3://{BUCKET}/lake", *span
    )
    local = score(
        platform, endpoint, tmp_path / "local.db", monkeypatch, "--lake", platform.lake_uri, *span
    )
    assert on_s3.exit_code == 0, on_s3.output
    assert local.exit_code == 0, local.output
    from_s3, from_disk = risk(tmp_path / "s3.db"), risk(tmp_path / "local.db")
    assert len(from_s3) > 100 and from_s3 == from_disk


def test_files_under_an_s3_prefix_are_scored_quarantined_and_rerun_idempotently(
    platform, endpoint, tmp_path, monkeypatch
):
    lake = Lake.open(platform.lake_uri)
    day = lake.days()[6]
    rows = lake.read_days(
        day, day, ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    )
    incoming = tmp_path / "incoming"
    (incoming / "2018").mkdir(parents=True)
    pq.write_table(rows.slice(0, 40), incoming / "2018" / "part-1.parquet")
    text = rows.slice(40, 20).cast(pa.schema([(n, pa.string()) for n in rows.column_names]))
    bad = pa.table(
        {
            "transaction_id": ["990001", "990002"],
            "tx_datetime": ["x", day.isoformat()],
            "customer_id": ["1", "1"],
            "terminal_id": ["2", "2"],
            "tx_amount": ["1.0", "nan"],
        }
    )
    pacsv.write_csv(pa.concat_tables([text, bad]), incoming / "2018" / "part-2.csv")
    upload(endpoint, incoming, "incoming/day")
    args = [
        "--input",
        f"s3://{BUCKET}/incoming/day",
        "--out",
        f"s3://{BUCKET}/scores/day",
        "--no-online-state",
    ]
    first = score(platform, endpoint, tmp_path / "alerts.db", monkeypatch, *args)
    assert first.exit_code == 0, first.output
    assert "60 scored (60 new), 2 rejected" in first.output
    assert set(risk(tmp_path / "alerts.db")) == set(rows.slice(0, 60)["transaction_id"].to_pylist())
    quarantined = objects(endpoint, "incoming/quarantine/")
    assert list(quarantined) == ["incoming/quarantine/2018/part-2.csv.rejected.parquet"]
    reasons = pq.read_table(pa.BufferReader(next(iter(quarantined.values()))))["reject_reason"]
    assert sorted(r.split(":")[0] for r in reasons.to_pylist()) == ["tx_amount", "tx_datetime"]
    outputs = objects(endpoint, "scores/day/")
    scored = pa.concat_tables([pq.read_table(pa.BufferReader(b)) for b in outputs.values()])
    assert sorted(scored["transaction_id"].to_pylist()) == sorted(risk(tmp_path / "alerts.db"))

    again = score(platform, endpoint, tmp_path / "alerts.db", monkeypatch, *args)
    assert again.exit_code == 0, again.output
    assert "60 scored (0 new)" in again.output and "(0 new)" in again.output.split("alerts")[1]
    assert objects(endpoint, "incoming/quarantine/").keys() == quarantined.keys()
    assert objects(endpoint, "scores/day/") == outputs  # same objects, same bytes
