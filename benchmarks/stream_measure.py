"""The stream benchmark's consumers, topics and throughput measurement, and CPU accounting.

* **Throughput** — consumers (ours or the naive baseline) are started on a topic pre-loaded
  with N transactions; their consumer group's committed offsets (which both commit only after
  their sinks) are sampled every 0.2 s; the sustained rate is the committed count's growth from
  5 % of the work (after start-up and the first online-store reads) to the end.
* **CPU** — the consumers', the broker's and every *other* process's cores meanwhile (the
  machine is shared: ``other`` is the noise).

The latency measurement is in ``stream_latency.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

REPO_ROOT = Path(__file__).resolve().parents[1]
_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")


# ----------------------------------------------------------------------------------- CPU
class CpuMeter:
    """Cores used by the watched processes (with children), by this one and by the others."""

    def __init__(self, pids: dict[str, int]) -> None:
        """Watch ``pids`` by name (e.g. ``{"consumer": ..., "broker": ...}``)."""
        self.pids = pids
        self.cores: dict[str, float] = {}
        self._began: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        import psutil  # type: ignore[import-untyped]

        out = {"wall": time.perf_counter()}
        for name, pid in self.pids.items():
            total = 0.0
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        times = proc.cpu_times()
                        total += times.user + times.system
            out[name] = total
        me = psutil.Process().cpu_times()
        out["benchmark"] = me.user + me.system
        cpu = psutil.cpu_times()
        out["busy"] = sum(getattr(cpu, n, 0.0) for n in _BUSY)
        return out

    def __enter__(self) -> CpuMeter:
        self._began = self._sample()
        return self

    def __exit__(self, *_exc: object) -> None:
        end = self._sample()
        wall = max(end["wall"] - self._began["wall"], 1e-9)
        used = {k: (end[k] - self._began[k]) / wall for k in end if k != "wall"}
        mine = sum(v for k, v in used.items() if k != "busy")
        self.cores = {k: v for k, v in used.items() if k != "busy"}
        self.cores["other"] = max(0.0, used["busy"] - mine)


def load_line() -> str:
    """The 1/5/15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


# ----------------------------------------------------------------------------- processes
@dataclass
class Process:
    """A consumer process (ours or the naive one) with its log."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as sink:
            self.popen = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=REPO_ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.popen is not None
        return self.popen.pid

    def check(self) -> None:
        """Raise with the log's tail if the process exited."""
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.argv[2:5]} exited {self.popen.returncode}:\n{tail}")

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (ours drains and commits), then SIGKILL after ``timeout_s``."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def ours_argv(group: str, member: int = 0) -> list[str]:
    """Our stream scorer as shipped (default batch and poll settings), one group member."""
    return [
        sys.executable,
        "-m",
        "fraudrisk",
        "stream",
        "score",
        "--group",
        group,
        "--transactional-id",
        f"{group}-{member}",
    ]


def naive_argv(group: str, topic: str) -> list[str]:
    """The naive one-message-at-a-time consumer of ``naive_consumer.py``."""
    script = Path(__file__).with_name("naive_consumer.py")
    return [sys.executable, str(script), "--group", group, "--topic", topic]


def kafka_env(kafka: Any, db_url: str, home: Path) -> dict[str, str]:
    """Environment of a consumer on these topics, writing to the store at ``db_url``."""
    names = (
        "bootstrap_servers",
        "transactions_topic",
        "scores_topic",
        "alerts_topic",
        "labels_topic",
        "dlq_topic",
    )
    env = {f"FRAUDRISK_KAFKA__{n.upper()}": str(getattr(kafka, n)) for n in names}
    return env | {"FRAUDRISK_HOME": str(home), "FRAUDRISK_DB__URL": db_url}


def topics(bootstrap: str, tag: str) -> Any:
    """Fresh platform topics named after ``tag``, created."""
    from fraudrisk.config import KafkaSettings
    from fraudrisk.io.kafka import ensure_topics

    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        transactions_topic=f"tx-{tag}",
        scores_topic=f"scores-{tag}",
        alerts_topic=f"alerts-{tag}",
        labels_topic=f"labels-{tag}",
        dlq_topic=f"dlq-{tag}",
    )
    ensure_topics(kafka)
    return kafka


def produce_all(kafka: Any, messages: Sequence[tuple[bytes, bytes]]) -> float:
    """Pre-load the transactions topic; returns the seconds it took."""
    from fraudrisk.io.kafka import make_producer, produce_waiting

    began = time.perf_counter()
    producer = make_producer(kafka, **{"linger.ms": 20, "batch.size": 1_000_000})
    for key, value in messages:
        produce_waiting(producer, kafka.transactions_topic, key, value)
    if producer.flush(120):
        raise RuntimeError("transactions not delivered to the broker")
    return time.perf_counter() - began


# ---------------------------------------------------------------------------- throughput
@dataclass
class Throughput:
    """A run over a pre-loaded topic."""

    who: str
    committed: int
    rate: float
    wall_s: float
    cpu: dict[str, float] = field(default_factory=dict)
    complete: bool = True


class OffsetWatch:
    """The committed offsets of a consumer group on the transactions topic."""

    def __init__(self, kafka: Any, group: str, partitions: int) -> None:
        """A consumer handle used only to read the group's committed offsets."""
        from fraudrisk.io.kafka import make_consumer

        self.consumer = make_consumer(kafka, group)
        self.partitions = [TopicPartition(kafka.transactions_topic, p) for p in range(partitions)]

    def committed(self) -> int:
        """Messages committed so far (offsets of a non-transactional topic = messages)."""
        try:
            found = self.consumer.committed(self.partitions, timeout=5)
        except Exception:  # the coordinator is busy: ask again at the next sample
            return -1
        return sum(max(p.offset, 0) for p in found)

    def close(self) -> None:
        """Close the handle (it never joined the group)."""
        self.consumer.close()


def run_throughput(
    who: str,
    processes: list[Process],
    kafka: Any,
    n: int,
    broker_pid: int,
    limits: tuple[float, float],
) -> Throughput:
    """Start the consumers on the pre-loaded topic; measure until N are committed.

    Args:
        who: Label of the run.
        processes: The consumer group's members (not started).
        kafka: Their topics.
        n: Transactions in the topic.
        broker_pid: The broker's pid (CPU accounting).
        limits: ``(max_s, measure_s)``: give up after ``max_s`` in all, or ``measure_s`` after
            the first commit (a slow consumer is measured on part of the topic).
    """
    max_s, measure_s = limits
    watch = OffsetWatch(kafka, group_of(processes[0]), kafka_partitions(kafka))
    samples: list[tuple[float, int]] = []
    began = time.perf_counter()
    first_commit = None
    try:
        with contextlib.ExitStack() as stack:
            for process in processes:
                stack.enter_context(process)
            pids = {f"consumer{i or ''}": p.pid for i, p in enumerate(processes)}
            meter = stack.enter_context(CpuMeter({**pids, "broker": broker_pid}))
            while (now := time.perf_counter()) - began < max_s:
                for process in processes:
                    process.check()
                count = watch.committed()
                if count >= 0:
                    samples.append((now, count))
                    first_commit = first_commit or (now if count > 0 else None)
                if count >= n or (first_commit and now - first_commit > measure_s):
                    break
                time.sleep(0.2)
    finally:
        watch.close()
    cores = dict(meter.cores)
    cores["consumer"] = sum(v for k, v in cores.items() if k.startswith("consumer"))
    return _throughput(
        who,
        samples,
        n,
        began,
        {k: v for k, v in cores.items() if k == "consumer" or not k.startswith("consumer")},
    )


def _throughput(
    who: str, samples: list[tuple[float, int]], n: int, began: float, cpu: dict[str, float]
) -> Throughput:
    last_t, last = samples[-1] if samples else (time.perf_counter(), 0)
    threshold = 0.05 * (n if last >= n else last)  # an unfinished run: 5 % of what it did
    start = next(((t, c) for t, c in samples if c >= max(threshold, 1) and c < last), None)
    if start is None or last_t <= start[0]:
        rate = last / max(last_t - began, 1e-9)
    else:
        rate = (last - start[1]) / (last_t - start[0])
    return Throughput(who, last, rate, last_t - began, cpu, complete=last >= n)


def group_of(process: Process) -> str:
    """The ``--group`` argument of a consumer command."""
    return process.argv[process.argv.index("--group") + 1]


def kafka_partitions(kafka: Any) -> int:
    """Partitions of the transactions topic."""
    from fraudrisk.io.kafka import topic_partitions

    return topic_partitions(kafka)[kafka.transactions_topic]
