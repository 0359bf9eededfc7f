"""``make demo`` step 8's dashboard: ``fraudrisk dashboard serve`` on the demo's database.

Started once the scripted analyst's work is done, on the same application database and home
(the TOTP seeds are sealed with ``FRAUDRISK_HOME/identity.key``, so the demo users can sign in
only with the same home), on a free loopback port over plain HTTP; its log in the work folder;
stopped on the way out. The demo prints its URL, who to sign in as, and the command that serves
it again after the demo.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from fraudrisk.config import Settings
from fraudrisk.console import console
from fraudrisk.demo.stream_step import start_logged, stop_process, wait_answering
from fraudrisk.io.kafka_broker import free_port

#: Seconds the dashboard may take to answer ``GET /login``.
READY_S = 60.0


def rerun_command(settings: Settings) -> str:
    """The shell command that serves the dashboard again on the demo's database and home."""
    env = f"FRAUDRISK_HOME={shlex.quote(str(settings.home))} "
    env += f"FRAUDRISK_DB__URL={shlex.quote(settings.db_url)}"
    return f"{env} fraudrisk dashboard serve --insecure-http"


@contextlib.contextmanager
def dashboard_service(settings: Settings, work: Path) -> Iterator[str]:
    """``fraudrisk dashboard serve --insecure-http`` on a free loopback port; yields its URL.

    Args:
        settings: The case settings (home and application database).
        work: The folder its log goes to (``dashboard.log``).
    """
    port = free_port()
    env = {"FRAUDRISK_HOME": str(settings.home), "FRAUDRISK_DB__URL": settings.db_url}
    argv = [sys.executable, "-m", "fraudrisk", "dashboard", "serve", "--insecure-http"]
    log = work / "dashboard.log"
    process = start_logged([*argv, "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(f"{url}/login", process, log, "dashboard", READY_S)
        yield url
    finally:
        stop_process(process)


def print_dashboard(settings: Settings, url: str, work: Path) -> None:
    """The dashboard's URL, who to sign in as, and how to serve it again after the demo."""
    console.print(
        f"dashboard at {url}/login (log {work}/dashboard.log) — sign in with a demo user's "
        "password and TOTP code from the credentials above: ana (analyst: My queue, cases), "
        "rita or raj (risk manager: Policies), ada (admin)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "it stops with the demo; to keep using it afterwards (same database, same home: the "
        f"TOTP seeds are sealed with its identity.key), run: {rerun_command(settings)}",
        highlight=False,
        soft_wrap=True,
    )
