"""What the stream scorer publishes: score messages as stored, dead letters, next offsets."""

from __future__ import annotations

import datetime as dt
import json

from confluent_kafka import Message

from fraudrisk.alerts.store import ScoreColumns, ScoreRecord
from fraudrisk.jobs.decode import Reject
from fraudrisk.jobs.outputs import dead_letters, next_offsets, record_message, score_messages

REASONS = '[{"feature":"tx_amount","value":900.0,"contribution":2.5}]'


def columns() -> ScoreColumns:
    return ScoreColumns(
        transaction_id=[1, 2, 3],
        customer_id=[10, 20, 30],
        terminal_id=[5, 6, 7],
        tx_datetime=[
            dt.datetime(2018, 9, 24, 0, 0, 1),
            dt.datetime(2018, 9, 24, 0, 0, 2, 500),
            dt.datetime(2018, 9, 24, 0, 0, 3),
        ],
        tx_amount=[10.0, 900.0, 55.5],
        risk_score=[0.01, 0.97, 0.4],
        decision=["approve", "decline", "review"],
        reason_codes=["[]", REASONS, "[]"],
        model_version=["1", "1", "1"],
        variant=["champion", "champion", "canary"],
        fallback=[False, False, False],
    )


def test_each_row_is_published_with_its_score_and_alerts_go_to_the_alerts_topic_too() -> None:
    batch = columns()
    messages = score_messages(batch, {})
    assert [(key, alert) for key, _, alert in messages] == [
        (b"10", False),
        (b"20", True),
        (b"30", True),
    ]
    second = json.loads(messages[1][1])
    assert second == {
        "transaction_id": 2,
        "customer_id": 20,
        "terminal_id": 6,
        "tx_datetime": "2018-09-24T00:00:02.000500",
        "tx_amount": 900.0,
        "risk_score": 0.97,
        "decision": "decline",
        "reason_codes": json.loads(REASONS),
        "model_version": "1",
        "variant": "champion",
        "fallback": False,
        "policy_version": None,
        "route": None,
        "priority_factor": 1.0,
        "policy_rules": [],
    }
    assert [m[1] for m in messages] == [record_message(r) for r in batch.records()]


def test_a_transaction_stored_by_an_earlier_attempt_is_published_as_stored() -> None:
    first = ScoreRecord(
        2,
        20,
        6,
        dt.datetime(2018, 9, 24, 0, 0, 2),
        900.0,
        0.2,
        "approve",
        "[]",
        "1",
        "champion",
        False,
    )
    messages = score_messages(columns(), {2: first})
    assert messages[1] == (b"20", record_message(first), False)  # no alert: approved first
    assert json.loads(messages[1][1])["risk_score"] == 0.2


def test_dead_letters_keep_the_key_the_reason_and_where_the_message_was() -> None:
    sources = [
        Message(topic="tx", partition=p, offset=o, key=b"k%d" % o, value=b"x")
        for p, o in ((0, 4), (3, 9))
    ]
    letters = dead_letters(sources, [Reject(1, b"{redacted}", "not JSON")])
    assert len(letters) == 1 and letters[0].key == b"k9" and letters[0].value == b"{redacted}"
    expected = {
        "reason": b"not JSON",
        "source_topic": b"tx",
        "source_partition": b"3",
        "source_offset": b"9",
    }
    assert dict(letters[0].headers) == expected


def test_next_offsets_are_one_past_the_last_message_of_each_partition() -> None:
    sources = [
        Message(topic="tx", partition=p, offset=o)
        for p, o in ((2, 7), (0, 3), (2, 9), (0, 4), (5, 0))
    ]
    offsets = [(tp.topic, tp.partition, tp.offset) for tp in next_offsets(sources)]
    assert offsets == [("tx", 0, 5), ("tx", 2, 10), ("tx", 5, 1)]
