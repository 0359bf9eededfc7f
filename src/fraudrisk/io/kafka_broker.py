"""A real single-node Apache Kafka broker (KRaft, no ZooKeeper) on loopback, from Maven jars.

:class:`LocalKafkaBroker` writes a combined broker+controller ``server.properties``, formats the
storage once, runs ``java -cp <jars> kafka.Kafka`` and waits until an AdminClient answers. It
either stays attached to this process (tests: it dies with its parent) or runs detached, with
its pid and bootstrap servers in a state file so ``fraudrisk kafka up/status/down`` can manage
it across invocations. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka.admin import AdminClient

from fraudrisk.config import get_settings
from fraudrisk.io.jars import resolve_jars

HOST = "127.0.0.1"
JVM_OPTS = ("-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")
_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


class KafkaBrokerError(RuntimeError):
    """The broker could not be started or stopped."""


def state_path(home: Path | None = None) -> Path:
    """The state file of the background broker: ``$FRAUDRISK_HOME/kafka/broker.json``."""
    return (home or get_settings().home) / "kafka" / "broker.json"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def server_properties(port: int, controller_port: int, log_dir: Path, partitions: int) -> str:
    """A KRaft combined broker+controller configuration listening on 127.0.0.1 only."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # Two cores: fewer threads than the defaults (3 network, 8 io, 10 background).
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def new_cluster_id() -> str:
    """A random Kafka cluster id (a UUID, base64url without padding)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")


class LocalKafkaBroker:
    """A single-node Kafka broker in KRaft mode, run as a ``java`` subprocess on loopback."""

    def __init__(self, jars: Sequence[Path] | None = None, java: str = "java") -> None:
        """Prepare a broker; nothing runs until :meth:`start`.

        Args:
            jars: The broker's classpath; default: ``resolve_jars("kafka")`` at start.
            java: The Java 17+ executable.
        """
        self.jars = list(jars) if jars is not None else None
        self.java = java
        self.bootstrap = ""
        self.data_dir: Path | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_state(cls, home: Path | None = None) -> LocalKafkaBroker | None:
        """A handle on the detached broker recorded by :meth:`save_state`, if any."""
        path = state_path(home)
        if not path.is_file():
            return None
        state = json.loads(path.read_text(encoding="utf-8"))
        broker = cls(jars=[])
        broker.pid, broker.bootstrap = int(state["pid"]), str(state["bootstrap"])
        broker.data_dir = Path(state["data_dir"])
        return broker

    def save_state(self, home: Path | None = None) -> Path:
        """Record pid, bootstrap and data dir so a later process can manage the broker."""
        path = state_path(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"pid": self.pid, "bootstrap": self.bootstrap, "data_dir": str(self.data_dir)}
        path.write_text(json.dumps(state, indent=2), encoding="utf-8")
        return path

    @property
    def log_path(self) -> Path:
        """The broker's stdout/stderr log."""
        if self.data_dir is None:
            raise KafkaBrokerError("broker not started")
        return self.data_dir / "broker.log"

    def start(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: Path | None = None,
        *,
        detached: bool = False,
        timeout: float = 60.0,
    ) -> str:
        """Format the storage (first time only), start the broker and wait until it answers.

        Args:
            port: Client port on 127.0.0.1; default: a free one.
            controller_port: KRaft controller port on 127.0.0.1; default: a free one.
            data_dir: Config, logs and data; default: ``$FRAUDRISK_HOME/kafka/data``.
            detached: Keep running after this process exits (own session); else the broker
                gets SIGTERM when this process dies.
            timeout: Seconds to wait for the broker to answer.

        Returns:
            The bootstrap servers, ``127.0.0.1:PORT``.

        Raises:
            KafkaBrokerError: The broker exited or did not answer in time (with its log tail).
        """
        if self.is_running():
            raise KafkaBrokerError(f"broker already running at {self.bootstrap}")
        port, controller_port = port or free_port(), controller_port or free_port()
        self.data_dir = (data_dir or get_settings().kafka_data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        partitions = get_settings().kafka.partitions
        log_dir = self.data_dir / "kraft-logs"
        config.write_text(server_properties(port, controller_port, log_dir, partitions))
        if not (log_dir / "meta.properties").is_file():
            self._format(config)
        self._spawn(config, detached)
        self.bootstrap = f"{HOST}:{port}"
        self._wait_ready(port, timeout)
        return self.bootstrap

    def is_running(self) -> bool:
        """Whether the broker process is alive (a zombie or a reused pid does not count)."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _is_kafka_process(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker, wait up to ``timeout`` seconds, then SIGKILL it."""
        if not self.is_running() or self.pid is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        if not self._wait_exit(timeout):
            os.kill(self.pid, signal.SIGKILL)
            self._wait_exit(10.0)

    def _wait_exit(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _classpath(self) -> str:
        if not self.jars:
            self.jars = resolve_jars("kafka")
        return os.pathsep.join(str(jar) for jar in self.jars)

    def _java(self, log4j: Path, main: str, *args: str) -> list[str]:
        flags = [*JVM_OPTS, f"-Dlog4j2.configurationFile={log4j}"]
        return [self.java, *flags, "-cp", self._classpath(), main, *args]

    def _log4j(self, level: str) -> Path:
        assert self.data_dir is not None
        path = self.data_dir / f"log4j2-{level.lower()}.properties"
        path.write_text(_LOG4J2.format(level=level))
        return path

    def _format(self, config: Path) -> None:
        # "--cluster-id=ID": an id may start with "-", which argparse would take for an option.
        args = ["format", f"--cluster-id={new_cluster_id()}", "-c", str(config)]
        command = self._java(self._log4j("WARN"), "kafka.tools.StorageTool", *args)
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise KafkaBrokerError(f"kafka storage format failed:\n{done.stdout}{done.stderr}")

    def _spawn(self, config: Path, detached: bool) -> None:
        command = self._java(self._log4j("INFO"), "kafka.Kafka", str(config))
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=detached,
                preexec_fn=None if detached else _die_with_parent,
            )
        self.pid = self._proc.pid

    def _wait_ready(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            if not self.is_running():
                raise KafkaBrokerError(f"kafka broker exited:\n{log_tail(self.log_path)}")
            if _accepts(port):
                admin = admin or AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
                with contextlib.suppress(Exception):
                    admin.list_topics(timeout=2)
                    return
            time.sleep(0.25)
        self.stop()
        raise KafkaBrokerError(
            f"kafka broker did not answer on {self.bootstrap} within {timeout:.0f} s; "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _is_kafka_process(pid: int) -> bool:
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"kafka.Kafka" in cmdline


def _die_with_parent() -> None:
    # Runs in the child before exec: ask Linux to SIGTERM the JVM if the test process dies.
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
