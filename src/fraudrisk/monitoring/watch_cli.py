"""``fraudrisk monitor watch``: the long-running watcher (or one round with ``--once``).

:func:`register` adds the command to the ``monitor`` sub-app. Its keyword arguments inject the
check functions and the training launcher (tests, embedding); the command itself always runs
the real ones.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fraudrisk.console import console, err_console, examples
from fraudrisk.monitoring.results import Source

if TYPE_CHECKING:
    from fraudrisk.monitoring.checks import Checks
    from fraudrisk.monitoring.ledger import Decision
    from fraudrisk.monitoring.trigger import Launcher, Tagger
    from fraudrisk.monitoring.watch import Round


def register(
    monitor_app: typer.Typer,
    *,
    checks: Checks | None = None,
    launcher: Launcher | None = None,
    tagger: Tagger | None = None,
) -> None:
    """Add ``watch`` to ``monitor_app``.

    Args:
        monitor_app: The ``fraudrisk monitor`` sub-app.
        checks: Drift / performance / latest-day functions (default: the real ones).
        launcher: Training launcher (default: ``launch_training``, kfp.local or ``KFP_HOST``).
        tagger: Tags the registered version (default: MLflow version tags).
    """

    @monitor_app.command(
        "watch",
        epilog=examples(
            "fraudrisk monitor watch",
            "fraudrisk monitor watch --once",
            "fraudrisk monitor watch --model models:/fraud-risk/3 --source scores --window-days 3",
            "KFP_HOST=https://kfp.example.com fraudrisk monitor watch --interval 900",
        ),
    )
    def watch_cmd(
        model: Annotated[
            str | None, typer.Option(help="Model URI (default: serving.model_uri, the champion).")
        ] = None,
        interval: Annotated[
            float | None,
            typer.Option(min=0.001, help="Seconds between rounds (default monitoring setting)."),
        ] = None,
        once: Annotated[bool, typer.Option("--once", help="Run one round and exit.")] = False,
        source: Annotated[
            Source, typer.Option(help="Rows of the window: lake or scores.")
        ] = "lake",
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
        from fraudrisk.config import get_settings
        from fraudrisk.monitoring.checks import WatchOptions
        from fraudrisk.monitoring.ledger import TriggerLedger
        from fraudrisk.monitoring.metrics import MonitoringMetrics
        from fraudrisk.monitoring.trigger import RetrainingTrigger
        from fraudrisk.monitoring.watch import Watcher

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
                settings, ledger, launcher=launcher, tagger=tagger, metrics=metrics
            )
            watcher = Watcher(settings, options, trigger, metrics, checks)
            where = f", metrics on {metrics_addr}:{port}" if server else ""
            err_console.print(f"watching {options.model_uri} ({source}, {window_days}-day window, "
                              f"every {options.interval_s:g} s{where})")  # fmt: skip
            rounds = watcher.run(max_rounds=1 if once else None, on_round=print_round)
        finally:
            ledger.close()
            if server is not None:
                server.shutdown()
        err_console.print(f"watcher stopped after {rounds} round(s)")
        if once and watcher.last_round is not None and watcher.last_round.errors:
            raise typer.Exit(1)


def print_round(found: Round) -> None:
    """One table per round: each check's verdict and the trigger's decision."""
    table = Table(title="monitoring round", show_lines=False)
    for column in ("check", "window", "verdict", "decision"):
        table.add_column(column)
    table.add_column("report / error", overflow="fold")  # paths are copied: never cut them
    decisions = {d.cause.kind: d for d in found.decisions}
    if found.drift is not None:
        d = found.drift
        verdict = f"drift share {d.drift_share:.2f} ({', '.join(d.drifted_features) or 'none'})"
        table.add_row("drift", f"{d.start}..{d.end}", verdict, _decided(decisions.get("drift")),
                      d.report)  # fmt: skip
    if found.performance is not None:
        p = found.performance
        drop = "n/a" if p.drop is None else f"{p.drop:+.1%}"
        table.add_row(
            "performance",
            f"{p.start}..{p.end}",
            f"AP drop {drop}",
            _decided(decisions.get("performance")),
            decisions["performance"].report if "performance" in decisions else "",
        )
    for check, error in found.errors.items():
        table.add_row(check, "", "[red]failed[/red]", "", error)
    console.print(table)


def _decided(decision: Decision | None) -> str:
    if decision is None:
        return ""
    version = decision.registered_version
    return f"{decision.outcome} (version {version})" if version else decision.outcome
