"""Parts of the Kinesis path without a server: checkpoints, dead letters, Lambda event parsing,
and the shard order of a reshard (a scripted stand-in for the Kinesis API: moto keeps writing
to a closed parent shard, so a real reshard cannot be replayed there).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pyarrow as pa
import sqlalchemy as sa

from fraudrisk.cards import redact_card_numbers_bytes
from fraudrisk.jobs.checkpoints import SHARD_END, Checkpoints
from fraudrisk.jobs.deadletters import DeadLetter
from fraudrisk.jobs.decode import Decoded
from fraudrisk.jobs.kinesis_job import KinesisConsumer, KinesisOptions
from fraudrisk.jobs.kinesis_records import Outcome, SourceRecord
from fraudrisk.jobs.lambda_handler import source_records


def test_checkpoints_are_upserted_per_consumer_stream_and_shard(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    mine, other = Checkpoints(engine, "scorer", "tx"), Checkpoints(engine, "audit", "tx")
    mine.save("shard-0", "10")
    mine.save("shard-0", "25")
    mine.save("shard-1", SHARD_END)
    other.save("shard-0", "3")
    assert Checkpoints(engine, "scorer", "tx").load() == {"shard-0": "25", "shard-1": SHARD_END}
    assert other.load() == {"shard-0": "3"}
    assert Checkpoints(engine, "scorer", "another-stream").load() == {}


def test_dead_letters_carry_reason_and_source_and_never_a_card_number():
    letter = DeadLetter(
        b'{"note": "card 4111 1111 1111 1111 or 5500-0000-0000-0004", "id": 12}',
        "not a JSON object",
        "tx",
        "shardId-1",
        "42",
        "7",
    )
    document = json.loads(letter.document())
    assert document["reason"] == "not a JSON object"
    assert document["source"] == {
        "stream": "tx",
        "shard_id": "shardId-1",
        "sequence_number": "42",
        "partition_key": "7",
    }
    assert "4111" not in document["payload"] and "5500" not in document["payload"]
    assert '"id": 12' in document["payload"]  # short numbers are kept
    binary = json.loads(
        DeadLetter(b"\xff\xfe4111111111111111", "not JSON", "tx", "s", "1", "k").document()
    )
    assert b"4111" not in base64.b64decode(binary["payload_base64"])
    twenty_digits = b"12345678901234567890"
    assert redact_card_numbers_bytes(twenty_digits) == twenty_digits


def test_lambda_event_records_are_read_with_their_position():
    data = base64.b64encode(b'{"transaction_id": 1}').decode()
    event = {
        "Records": [
            {
                "kinesis": {"sequenceNumber": "100", "partitionKey": "42", "data": data},
                "eventID": "shardId-000000000003:100",
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/transactions",
            },
            {"kinesis": {"sequenceNumber": "101", "partitionKey": "42", "data": "@@not base64@@"}},
            {"kinesis": {"partitionKey": "42", "data": data}},  # no sequence number: cannot report
        ]
    }
    first, second = source_records(event)
    assert (first.data, first.sequence_number, first.shard_id, first.stream, first.unreadable) == (
        b'{"transaction_id": 1}',
        "100",
        "shardId-000000000003",
        "transactions",
        "",
    )
    assert second.data is None and second.unreadable == "kinesis.data is not base64"


# ------------------------------------------------------------------------------- reshard
@dataclass
class ScriptedKinesis:
    """A parent shard (closed: its records, then the end) split into two children."""

    shards: dict[str, list[bytes]]
    parents: dict[str, str]
    closed: set[str]
    reads: list[str] = field(default_factory=list)

    def list_shards(self, **_: object) -> dict[str, object]:
        return {
            "Shards": [
                {"ShardId": s, **({"ParentShardId": self.parents[s]} if s in self.parents else {})}
                for s in self.shards
            ]
        }

    def get_shard_iterator(self, ShardId: str, **position: str) -> dict[str, str]:  # noqa: N803
        after = int(position.get("StartingSequenceNumber", "-1"))
        return {"ShardIterator": f"{ShardId}|{after + 1}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, object]:  # noqa: N803
        shard, start = ShardIterator.split("|")
        data = self.shards[shard][int(start) : int(start) + Limit]
        self.reads += [shard] * len(data)
        end = int(start) + len(data)
        finished = shard in self.closed and end >= len(self.shards[shard])
        records = [
            {"Data": d, "SequenceNumber": str(int(start) + i), "PartitionKey": "k"}
            for i, d in enumerate(data)
        ]
        return {
            "Records": records,
            "NextShardIterator": None if finished and not data else f"{shard}|{end}",
        }


class Recorder:
    """Processes nothing, remembers what it was given."""

    def __init__(self) -> None:
        self.seen: list[SourceRecord] = []

    def process(self, batch: list[SourceRecord]) -> Outcome:
        self.seen += batch
        return Outcome(Decoded(pa.table({}), [], []))


def test_child_shards_are_read_after_their_parent_is_read_to_its_end(tmp_path):
    kinesis = ScriptedKinesis(
        shards={"child-a": [b"a1", b"a2"], "parent": [b"p1", b"p2", b"p3"], "child-b": [b"b1"]},
        parents={"child-a": "parent", "child-b": "parent"},
        closed={"parent"},
    )
    checkpoints = Checkpoints(sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}"), "c", "tx")
    recorder = Recorder()
    options = KinesisOptions("tx", batch_size=2, poll_interval_s=0, max_records=6)
    KinesisConsumer(kinesis, recorder, checkpoints, options).run()  # type: ignore[arg-type]
    order = [record.data for record in recorder.seen]
    assert sorted(order) == [b"a1", b"a2", b"b1", b"p1", b"p2", b"p3"]
    assert order[:3] == [b"p1", b"p2", b"p3"], "a child was read before its parent ended"
    assert checkpoints.load() == {"parent": SHARD_END, "child-a": "1", "child-b": "0"}


def test_a_card_number_in_a_rejected_message_never_reaches_the_dead_letters() -> None:
    """A PAN sent as card_token is refused by the validator; its payload is redacted."""
    import datetime as dt

    from fraudrisk.jobs.decode import decode

    message = (
        b'{"transaction_id": 5, "tx_datetime": "2018-05-01T00:00:00", "customer_id": 1, '
        b'"terminal_id": 2, "tx_amount": 3, "card_token": "4111111111111111"}'
    )
    decoded = decode([message], dt.date(2018, 4, 1))
    assert len(decoded.rejects) == 1 and b"4111111111111111" not in decoded.rejects[0].payload
    assert b"<redacted card number>" in decoded.rejects[0].payload
