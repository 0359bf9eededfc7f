"""A throw-away PostgreSQL cluster on loopback, from Debian's ``postgresql`` binaries.

For tests and benchmarks (production points ``FRAUDRISK_DB__URL`` at RDS): ``initdb`` into a
temporary folder, ``pg_ctl start`` on a free port with trust authentication for one user,
``createdb`` for each database asked for, and everything removed on stop. ``initdb`` refuses
root, so as root the cluster is created and run by the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence

from fraudrisk.io.kafka_broker import free_port

USER = "fraudrisk"


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL's binaries are not installed."""


def bindir() -> str:
    """The folder of ``initdb`` and ``pg_ctl`` (newest installed version).

    Raises:
        PostgresUnavailableError: If PostgreSQL is not installed.
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailableError(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (make sysdeps does)"
        )
    return os.path.dirname(found[-1])


def _run(*command: str) -> None:
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_owner, *command], check=True, capture_output=True)


@contextlib.contextmanager
def local_postgres(databases: Sequence[str] = ()) -> Iterator[str]:
    """Run a cluster until the block ends; yields ``postgresql://fraudrisk@127.0.0.1:PORT``.

    Append ``/<database>`` for one of ``databases`` (created at start).
    """
    binaries, port = bindir(), free_port()
    data = tempfile.mkdtemp(prefix="fraudrisk-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    try:
        _run(f"{binaries}/initdb", "-D", data, "-A", "trust", "-U", USER, "--no-sync")
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = f"{data}/server.log"
        _run(f"{binaries}/pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start")
        for name in databases:
            _run(f"{binaries}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", USER, name)
        yield f"postgresql://{USER}@127.0.0.1:{port}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # never started: no stop
            _run(f"{binaries}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)
