"""SparkSession construction: ``local[*]`` by default, any master (``spark://``, ``k8s://``).

Everything that differs between this machine and a cluster is configuration: the master URL,
extra ``--conf key=value`` pairs and the jars (the Kafka connector, resolved by Maven).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "200000",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "6g",
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
    "spark.python.worker.reuse": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.compression.codec": "zstd",
    # Loopback only: otherwise the driver binds to the machine's external address.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """Parse ``key=value`` strings (from ``--conf``) into a dict.

    Raises:
        ValueError: If a pair has no ``=``.
    """
    conf: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--conf expects key=value, got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


def get_spark(
    master: str = "local[*]",
    app_name: str = "fraudrisk",
    conf: Mapping[str, str] | None = None,
    jars: list[str] | None = None,
) -> SparkSession:
    """Get (or create) the SparkSession.

    Args:
        master: Spark master URL: ``local[*]``, ``spark://host:7077``, ``k8s://https://…``.
        app_name: Application name shown by the cluster.
        conf: Extra Spark configuration; wins over the defaults.
        jars: Local jar paths to add (e.g. the Kafka connector); never downloaded at run time.

    Returns:
        The active session.
    """
    # deferred: pyspark (features extra); the CLI imports this module
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this venv
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, and no warning
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = dict(_LOCAL_DEFAULTS) if master.startswith("local") else {}
    settings["spark.sql.session.timeZone"] = "UTC"
    settings["spark.jars.ivy"] = os.path.join(tempfile.gettempdir(), "fraudrisk-ivy")
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = str(2 * _local_cores(master))
    if jars:
        settings["spark.jars"] = ",".join(jars)
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _local_cores(master: str) -> int:
    inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
    if inside in ("*", ""):
        return os.cpu_count() or 1
    return max(int(inside.split(",")[0]), 1)
