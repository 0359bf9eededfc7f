"""Long-running and batch jobs that score transactions: Kafka stream, batch files, Kinesis, Lambda.

- ``stream_job`` — the Kafka consumer-group member: transactions → scores → sinks, offsets
  committed with the output in one Kafka transaction (``committer``, ``polling``, ``outputs``).
- ``batch_job`` / ``batch_sources`` — ``fraudrisk score batch`` over lake days or files.
- ``kinesis_job`` / ``kinesis_records`` / ``lambda_handler`` / ``checkpoints`` / ``deadletters``
  — the Kinesis consumer and the Lambda handler.
- ``runtime`` / ``state_cache`` / ``decode`` — what every source shares: decode and validate,
  entity state in memory, scores to store records.
- ``replay`` — lake transactions (and delayed labels) replayed into Kafka as a live feed.
- ``prometheus`` — the jobs' metrics.

May import: serving, scoring and below. Never api, release or monitoring.
"""
