"""Storage and clients: local or S3 storage, the lake, Kafka clients and the local broker, jars.

- ``storage`` / ``partitioned`` / ``lake`` — storage (local | s3), day-partitioned Parquet,
  the lake.
- ``kafka`` / ``kafka_broker`` — confluent-kafka clients; a single-node KRaft broker from jars.
- ``jars`` — Maven-resolved jars (Kafka, the Spark Kafka connector).
- ``network`` — whether a host is loopback (http and insecure cookies only there).

May import only the base modules (config, schemas, console).
"""
