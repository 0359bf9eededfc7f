"""``fraudrisk monitor watch``: the long-running watcher (or one round with ``--once``).

The ``monitor`` group (:mod:`fraudrisk.cli.monitor`) adds this module's :data:`app`. A
:class:`WatchHooks` as the Click context object (``obj=`` of ``app(...)`` or of
``CliRunner.invoke``) replaces the check functions, the training launcher or the tagger
(tests, embedding); without one the command runs the real ones.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import err_console, examples
from fraudrisk.monitoring.results import Source

if TYPE_CHECKING:
    from fraudrisk.monitoring.checks import Checks
    from fraudrisk.monitoring.trigger import Launcher, Tagger

app = typer.Typer()


@dataclass(frozen=True)
class WatchHooks:
    """Stand-ins for the watcher's collaborators; ``None`` keeps the real one.

    Attributes:
        checks: Drift / performance / latest-day functions (default: the real ones).
        launcher: Training launcher (default: ``launch_training``, kfp.local or ``KFP_HOST``).
        tagger: Tags the registered version (default: MLflow version tags).
    """

    checks: Checks | None = None
    launcher: Launcher | None = None
    tagger: Tagger | None = None


@app.command(
    "watch",
    epilog=examples(
        "fraudrisk monitor watch",
        "fraudrisk monitor watch --once",
        "fraudrisk monitor watch --model models:/fraud-risk/3 --source scores --window-days 3",
        "KFP_HOST=https://kfp.example.com fraudrisk monitor watch --interval 900",
    ),
)
def watch_cmd(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Model URI (default: serving.model_uri, the champion).")
    ] = None,
    interval: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds between rounds (default monitoring setting)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one round and exit.")] = False,
    source: Annotated[Source, typer.Option(help="Rows of the window: lake or scores.")] = "lake",
    window_days: Annotated[int, typer.Option(min=1, help="Days of each window.")] = 7,
    end: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the window (default: latest)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Prometheus port; 0 = off (default setting)."),
    ] = None,
    metrics_addr: Annotated[str, typer.Option(help="Address the metrics bind.")] = "127.0.0.1",
) -> None:
    """Check drift and labelled performance every interval; retrain on a trigger.

    Retraining fires at most once per cause (model, drift|performance) per cool-down
    (monitoring.cooldown_hours); every decision is recorded in the trigger ledger.
    SIGTERM or SIGINT stop the watcher after the current round.
    """
    from fraudrisk.monitoring.checks import WatchOptions  # heavy: sqlalchemy, prometheus_client
    from fraudrisk.monitoring.ledger import TriggerLedger
    from fraudrisk.monitoring.prometheus import MonitoringMetrics
    from fraudrisk.monitoring.trigger import RetrainingTrigger
    from fraudrisk.monitoring.watch import Watcher, print_round

    hooks = ctx.obj if isinstance(ctx.obj, WatchHooks) else WatchHooks()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    options = WatchOptions(
        model_uri=model or settings.serving.model_uri,
        source=source,
        window_days=window_days,
        interval_s=interval or settings.monitoring.watch_interval_s,
        end=end.date() if end else None,
    )
    metrics = MonitoringMetrics()
    port = settings.monitoring.metrics_port if metrics_port is None else metrics_port
    server = metrics.serve(port, metrics_addr)[0] if port and not once else None
    ledger = TriggerLedger(settings.db_url)
    try:
        trigger = RetrainingTrigger(
            settings, ledger, launcher=hooks.launcher, tagger=hooks.tagger, metrics=metrics
        )
        watcher = Watcher(settings, options, trigger, metrics, hooks.checks)
        where = f", metrics on {metrics_addr}:{port}" if server else ""
        err_console.print(
            f"watching {options.model_uri} ({source}, {window_days}-day window, "
            f"every {options.interval_s:g} s{where})"
        )
        rounds = watcher.run(max_rounds=1 if once else None, on_round=print_round)
    finally:
        ledger.close()
        if server is not None:
            server.shutdown()
    err_console.print(f"watcher stopped after {rounds} round(s)")
    if once and watcher.last_round is not None and watcher.last_round.errors:
        raise typer.Exit(1)
