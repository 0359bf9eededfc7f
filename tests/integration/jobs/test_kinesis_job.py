"""The Kinesis path against a real Kinesis/S3-compatible server on loopback (moto_server).

The consumer scores every valid transaction once and dead-letters the bad ones with their
reason; SIGKILLed between the sink write and the checkpoint and restarted (and stopped by
SIGTERM), it loses and duplicates nothing. The negative control (checkpoint before the sink)
loses the crashed batch. The Lambda handler processes events built from the same records,
reports the records a store outage failed in ``batchItemFailures``, and their redelivery is
absorbed by the idempotent store.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.integration.jobs.aws import boto, env, moto_server
from tests.support.stream import Replay, replay
from tests.unit.jobs.helpers import Platform, build_platform

from fraudrisk.alerts.store import AlertStore
from fraudrisk.config import get_settings
from fraudrisk.jobs import lambda_handler
from fraudrisk.jobs.kinesis_job import CRASH_AFTER_SINK_ENV, KinesisConsumer, KinesisOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]
N, BAD_EVERY, BATCH = 6000, 400, 400
PAN = b"4111111111111111"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return build_platform(tmp_path_factory.mktemp("kinesis-home"))


@pytest.fixture(scope="module")
def feed() -> Replay:
    return replay(N, bad_every=BAD_EVERY)


@dataclass
class Deployment:
    """A stream with the feed on it, a store, a dead-letter destination and the env."""

    endpoint: str
    stream: str
    db: Path
    dlq: str
    env: dict[str, str]
    logs: Path

    def start(self, *extra: str, crash_after: int | None = None) -> subprocess.Popen[bytes]:
        process_env = dict(self.env)
        if crash_after is not None:
            process_env[CRASH_AFTER_SINK_ENV] = str(crash_after)
        log = (self.logs / f"consumer-{time.monotonic_ns()}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "fraudrisk",
            "stream",
            "kinesis",
            "--stream",
            self.stream,
            "--no-online-state",
            "--idle-exit",
            "3",
            *extra,
        ]
        return subprocess.Popen(command, env=process_env, stdout=log, stderr=subprocess.STDOUT)

    def log_tail(self) -> str:
        latest = max(self.logs.glob("consumer-*.log"), key=lambda p: p.stat().st_mtime)
        return latest.read_text()[-3000:]

    def stored(self) -> list[int]:
        store = AlertStore(f"sqlite:///{self.db}")
        try:
            return list(store.transaction_ids())
        finally:
            store.close()


def deploy(endpoint: str, platform: Platform, tmp_path: Path, feed: Replay, dlq: str) -> Deployment:
    tag = uuid.uuid4().hex[:8]
    stream = f"tx-{tag}"
    kinesis = boto("kinesis", endpoint)
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    if dlq.startswith("kinesis://"):
        dlq = f"{dlq}-{tag}"
        kinesis.create_stream(StreamName=dlq.removeprefix("kinesis://"), ShardCount=1)
    for start in range(0, len(feed.messages), 500):
        records = [
            {"Data": value, "PartitionKey": key.decode()}
            for key, value in feed.messages[start : start + 500]
        ]
        assert kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0
    db = tmp_path / "alerts.db"
    variables = {
        **os.environ,
        **env(endpoint),
        "FRAUDRISK_HOME": str(platform.home),
        "FRAUDRISK_DB__URL": f"sqlite:///{db}",
        "FRAUDRISK_KINESIS__DLQ_URI": dlq,
        "FRAUDRISK_KINESIS__BATCH_SIZE": str(BATCH),
        "FRAUDRISK_KINESIS__POLL_INTERVAL_S": "0.05",
    }
    return Deployment(endpoint, stream, db, dlq, variables, tmp_path)


def consume_in_process(run: Deployment, monkeypatch: pytest.MonkeyPatch) -> KinesisConsumer:
    """Run a consumer in this process until the stream is idle for 2 s."""
    for name, value in run.env.items():
        if name.startswith("FRAUDRISK_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        options = KinesisOptions(run.stream, batch_size=BATCH, poll_interval_s=0.05, idle_exit_s=2)
        consumer = KinesisConsumer.from_settings(get_settings(), options, online_state=False)
        consumer.run(on_batch=lambda totals: setattr(consumer, "last_batch_at", time.monotonic()))
        return consumer
    finally:
        get_settings.cache_clear()


def read_stream(endpoint: str, stream: str) -> list[dict[str, object]]:
    """Every record of a stream, from the start of each shard (data, key, sequence, shard)."""
    kinesis = boto("kinesis", endpoint)
    found: list[dict[str, object]] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            found += [{**r, "ShardId": shard["ShardId"]} for r in answer["Records"]]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    return found


def assert_exactly_once(run: Deployment, feed: Replay) -> None:
    stored = run.stored()
    missing = feed.valid_ids - set(stored)
    assert not missing, f"{len(missing)} transactions lost, e.g. {sorted(missing)[:5]}"
    assert len(stored) == len(set(stored)) == len(feed.valid_ids)


# ------------------------------------------------------------------------------- consumer
def test_consumer_scores_each_transaction_once_and_dead_letters_the_bad(
    endpoint, platform, feed, tmp_path, monkeypatch
):
    run = deploy(endpoint, platform, tmp_path, feed, "kinesis://dlq")
    consumer = consume_in_process(run, monkeypatch)
    seconds = consumer.last_batch_at - consumer.totals.started  # type: ignore[attr-defined]
    assert_exactly_once(run, feed)
    totals = consumer.totals
    assert (totals.consumed, totals.scored, totals.rejected) == (len(feed.messages), N, feed.bad)
    letters = read_stream(endpoint, run.dlq.removeprefix("kinesis://"))
    assert len(letters) == feed.bad
    documents = [json.loads(letter["Data"]) for letter in letters]  # type: ignore[arg-type]
    assert all(d["reason"] and d["source"]["stream"] == run.stream for d in documents)
    assert {"not JSON", "not a JSON object"} <= {d["reason"] for d in documents}
    assert not any(PAN in letter["Data"] for letter in letters)  # type: ignore[operator]
    print(
        f"\nkinesis consumer: {totals.consumed:,} records in {seconds:.2f} s "
        f"({totals.consumed / seconds:,.0f}/s, moto_server on loopback)"
    )


def test_sigkill_between_sink_and_checkpoint_then_sigterm_loses_and_duplicates_nothing(
    endpoint, platform, feed, tmp_path, monkeypatch
):
    run = deploy(endpoint, platform, tmp_path, feed, str(tmp_path / "dead-letters"))
    crashed = run.start(crash_after=4)  # SIGKILL after the 4th sink write, before its checkpoint
    assert crashed.wait(120) == -signal.SIGKILL, run.log_tail()
    after_crash = len(run.stored())
    assert 0 < after_crash < N
    stopped = run.start()
    deadline = time.monotonic() + 120
    while len(run.stored()) < after_crash + 2 * BATCH:
        assert stopped.poll() is None and time.monotonic() < deadline, run.log_tail()
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(60) == 0, run.log_tail()
    summary = re.search(r"([\d,]+) scored \(([\d,]+) new\)", run.log_tail())
    assert summary, run.log_tail()
    scored, new = (int(g.replace(",", "")) for g in summary.groups())
    assert scored > new  # the crashed batch was delivered again, and the store absorbed it
    consume_in_process(run, monkeypatch)
    assert_exactly_once(run, feed)
    letters = sorted((tmp_path / "dead-letters" / run.stream).rglob("*.json"))
    assert len(letters) == feed.bad  # one object per bad record, however often delivered
    assert not any(PAN in path.read_bytes() for path in letters)


def test_negative_control_checkpoint_before_the_sink_loses_the_crashed_batch(
    endpoint, platform, feed, tmp_path, monkeypatch
):
    run = deploy(endpoint, platform, tmp_path, feed, str(tmp_path / "dead-letters"))
    crashed = run.start("--checkpoint-first", crash_after=4)
    assert crashed.wait(120) == -signal.SIGKILL, run.log_tail()
    consume_in_process(run, monkeypatch)
    with pytest.raises(AssertionError, match="transactions lost"):
        assert_exactly_once(run, feed)


# --------------------------------------------------------------------------------- Lambda
def event(records: list[dict[str, object]], stream: str) -> dict[str, object]:
    """A Kinesis event source mapping event carrying these records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),  # type: ignore[arg-type]
                    "approximateArrivalTimestamp": 1.5e9,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "awsRegion": "us-east-1",
                "eventID": f"{r['ShardId']}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "eventSourceARN": f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}",
            }
            for r in records
        ]
    }


@pytest.fixture()
def lambda_env(endpoint, platform, tmp_path, monkeypatch) -> Iterator[Path]:
    boto("s3", endpoint).create_bucket(Bucket=(bucket := f"dlq-{uuid.uuid4().hex[:8]}"))
    db = tmp_path / "lambda.db"
    for name, value in {
        **env(endpoint),
        "FRAUDRISK_HOME": str(platform.home),
        "FRAUDRISK_DB__URL": f"sqlite:///{db}",
        "FRAUDRISK_KINESIS__DLQ_URI": f"s3://{bucket}/dead-letters",
        "FRAUDRISK_KINESIS__ONLINE_STATE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TEST_DLQ_BUCKET", bucket)
    get_settings.cache_clear()
    lambda_handler.reset()
    yield db
    lambda_handler.reset()
    get_settings.cache_clear()


def dead_letters(endpoint: str) -> dict[str, bytes]:
    s3, bucket = boto("s3", endpoint), os.environ["TEST_DLQ_BUCKET"]
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listed
        if o["Key"].endswith(".json")
    }


def test_lambda_reports_what_an_outage_failed_and_absorbs_the_redelivery(
    endpoint, platform, tmp_path, lambda_env, monkeypatch
):
    small = replay(1200, bad_every=100)
    run = deploy(endpoint, platform, tmp_path, small, str(tmp_path / "unused"))
    records = sorted(read_stream(endpoint, run.stream), key=lambda r: int(r["SequenceNumber"]))
    first, second = records[:600], records[600:]
    store = AlertStore(f"sqlite:///{lambda_env}")

    assert lambda_handler.handler(event(first, run.stream), None) == {"batchItemFailures": []}
    after_first = store.count()
    assert 0 < after_first < len(small.valid_ids)

    processor = lambda_handler.processor()
    real_write = processor.runtime.store.write

    def outage(_records: object) -> object:
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(processor.runtime.store, "write", outage)
    answer = lambda_handler.handler(event(second, run.stream), None)
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    valid_second = {r["SequenceNumber"] for r in second if not _is_bad(r["Data"])}
    assert failed == valid_second and store.count() == after_first  # bad ones were handled
    letters = dead_letters(endpoint)
    assert len(letters) == small.bad

    monkeypatch.setattr(processor.runtime.store, "write", real_write)
    for redelivery in (second, first, second):  # Lambda retries; duplicates change nothing
        assert lambda_handler.handler(event(redelivery, run.stream), None) == {
            "batchItemFailures": []
        }
    assert sorted(store.transaction_ids()) == sorted(small.valid_ids)
    assert dead_letters(endpoint).keys() == letters.keys()
    reasons = [json.loads(body)["reason"] for body in letters.values()]
    assert all(reasons) and not any(PAN in body for body in letters.values())


def test_lambda_never_raises_and_retries_what_it_cannot_process(lambda_env, monkeypatch):
    junk: list[object] = [None, "junk", {}, {"Records": "x"}, {"Records": [1, {"kinesis": {}}]}]
    for value in junk:
        assert lambda_handler.handler(value, None) == {"batchItemFailures": []}
    entry = {
        "kinesis": {"sequenceNumber": "7", "data": "%%% not base64", "partitionKey": "1"},
        "eventID": "shardId-000000000000:7",
        "eventSourceARN": "arn:aws:kinesis:::stream/s",
    }
    assert lambda_handler.handler({"Records": [entry]}, None) == {"batchItemFailures": []}
    monkeypatch.setenv("FRAUDRISK_DB__URL", "mysql://nowhere/db")  # the store cannot open
    get_settings.cache_clear()
    lambda_handler.reset()
    assert lambda_handler.handler({"Records": [entry]}, None) == {
        "batchItemFailures": [{"itemIdentifier": "7"}]
    }


def _is_bad(data: object) -> bool:
    try:
        value = json.loads(data)  # type: ignore[arg-type]
    except ValueError:
        return True
    return not isinstance(value, dict) or set(value) != {
        "transaction_id",
        "tx_datetime",
        "customer_id",
        "terminal_id",
        "tx_amount",
    }
