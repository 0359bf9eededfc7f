"""The baseline of the stream benchmark: a naive one-message-at-a-time Kafka consumer.

What a first version of a stream scorer often looks like: poll one message, decode it, score
it alone, write its score (and alert) to the store, produce its score (and alert) and wait for
the broker's acknowledgement, then commit that message's offset synchronously. It uses the
platform's own parts — the same decoder, served variants (model, thresholds, reason codes),
entity-state cache over the Feast online store and alert store — so the only difference with
``fraudrisk stream score`` is the batching and the commit protocol. It is at-least-once (a
crash between the produce and the commit repeats a score message); ours is exactly-once.

Not platform code: a baseline, run by ``stream_throughput.py`` in a subprocess. SIGTERM stops
it after the current message.

Usage:
    FRAUDRISK_HOME=... python benchmarks/naive_consumer.py --group naive --topic transactions
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys

from confluent_kafka import KafkaError


def main() -> None:
    """Consume until SIGTERM; print how many messages were processed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, help="Consumer group id.")
    parser.add_argument("--topic", help="Transactions topic (default: the settings').")
    args = parser.parse_args()

    from fraudrisk.config import get_settings
    from fraudrisk.io.kafka import make_consumer, make_producer
    from fraudrisk.jobs.decode import decode
    from fraudrisk.jobs.runtime import build_runtime, score_rows

    settings = get_settings()
    kafka = settings.kafka
    runtime = build_runtime(settings, online_state=True, explain="flagged")
    consumer = make_consumer(settings, args.group)
    producer = make_producer(settings)
    consumer.subscribe([args.topic or kafka.transactions_topic])
    epoch = dt.date.fromisoformat(settings.lake.epoch)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    done = 0
    while not stopping:
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                print(f"consumer error: {message.error()}", file=sys.stderr)
            continue
        decoded = decode([message.value()], epoch)
        if decoded.indices:
            for record in runtime.store.write(
                score_rows(runtime.variants, runtime.cache, decoded.rows)
            ).stored:
                value = score_value(record)
                producer.produce(kafka.scores_topic, key=str(record.customer_id), value=value)
                if record.is_alert:
                    producer.produce(kafka.alerts_topic, key=str(record.customer_id), value=value)
        for reject in decoded.rejects:
            producer.produce(
                kafka.dlq_topic, value=reject.payload, headers=[("reason", reject.reason.encode())]
            )
        producer.flush(30)
        consumer.commit(message, asynchronous=False)
        done += 1
    consumer.close()
    print(f"naive consumer: {done} messages")


def score_value(record: object) -> bytes:
    """The score message: the same JSON fields as the stream scorer's."""
    import orjson

    fields = (
        "transaction_id",
        "customer_id",
        "terminal_id",
        "tx_amount",
        "risk_score",
        "decision",
        "model_version",
        "variant",
        "fallback",
    )
    body = {name: getattr(record, name) for name in fields}
    body["tx_datetime"] = record.tx_datetime.isoformat()  # type: ignore[attr-defined]
    body["reason_codes"] = orjson.loads(record.reason_codes)  # type: ignore[attr-defined]
    return orjson.dumps(body)


if __name__ == "__main__":
    main()
