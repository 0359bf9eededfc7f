"""``fraudrisk policy backtest``: a candidate policy beside the active one on labelled history.

The ``policy`` group (:mod:`fraudrisk.cli.policy`) calls :func:`register`. This module composes
what the layers keep apart: monitoring's delayed-label logic (the labels known by ``--as-of``)
with the policy package's window reading and pure backtest
(:mod:`fraudrisk.policy.backtest`), which may not import monitoring.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import Settings, get_settings
from fraudrisk.console import console, err_console, examples, progress_bar

if TYPE_CHECKING:
    from fraudrisk.policy.backtest import Window
    from fraudrisk.policy.backtest_results import BacktestResult
    from fraudrisk.policy.document import CheckedPolicy

EPILOG = examples(
    "fraudrisk policy backtest --policy my-policy.yaml --start 2018-04-01 --end 2018-09-30",
    "fraudrisk policy backtest --policy my-policy.yaml --start 2018-09-01 --end 2018-09-30 "
    "--active policies/default.yaml --json",
    "fraudrisk policy backtest --policy my-policy.yaml --start 2018-09-01 --end 2018-09-30 "
    "--plot backtest-plots",
)
Day = Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="A day, YYYY-MM-DD.")]
PolicyFile = Annotated[
    Path | None,
    typer.Option(
        "--policy", dir_okay=False, exists=True, help="The candidate [the bundled default]."
    ),
]
ActiveFile = Annotated[
    Path | None,
    typer.Option(
        "--active",
        dir_okay=False,
        exists=True,
        help="The policy to compare with [the bundled default, policies/default.yaml].",
    ),
]


def load_policies(
    candidate: Path | None, active: Path | None
) -> tuple[CheckedPolicy, CheckedPolicy]:
    """The candidate and the active policy (each the bundled default when not given).

    Raises:
        PolicyError: If a file does not parse or type-check.
    """
    from fraudrisk.policy.loader import load_default_policy, load_policy  # deferred: yaml, pydantic

    def one(path: Path | None) -> CheckedPolicy:
        return load_policy(path) if path else load_default_policy()

    return one(candidate), one(active)


def labelled_end(settings: Settings, start: dt.date, end: dt.date, as_of: dt.date) -> dt.date:
    """The window's last day whose transactions are all labelled by ``as_of`` (monitoring's).

    Raises:
        ValueError: If no day of the window is labelled yet.
    """
    from fraudrisk.monitoring.labels import labelled_through  # deferred: pandas, pydantic

    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    delay = settings.monitoring.label_delay_days
    through = min(end, labelled_through(as_of, delay))
    if through < start:
        raise ValueError(
            f"no label known yet: as of {as_of} only transactions up to {through} are labelled "
            f"(label delay {delay} days); pass a later --as-of or an earlier --start"
        )
    return through


def read_window(
    settings: Settings,
    policies: tuple[CheckedPolicy, ...],
    start: dt.date,
    end: dt.date,
    as_of: dt.date,
    table_uri: str | None = None,
) -> Window:
    """The champion's scores of the labelled window, with a progress bar on the scoring.

    Raises:
        ModelLoadError: If there is no champion (or it cannot be loaded).
        BacktestError: If the window is not in the lake and the feature table, or unlabelled.
    """
    # deferred: pandas, pyarrow.dataset, mlflow (seconds) only when a backtest runs
    from fraudrisk.io.lake import Lake
    from fraudrisk.monitoring.performance import known_labels
    from fraudrisk.policy import backtest_window
    from fraudrisk.scoring.model import load_model

    model = load_model(settings, settings.serving.model_uri)
    lake = Lake.open(settings.lake_uri, settings.lake)
    if not any(start <= day <= end for day in lake.days()):
        days = lake.days()
        held = f"{days[0]}..{days[-1]}" if days else "no day"
        raise backtest_window.BacktestError(
            f"the lake at {settings.lake_uri} holds no day of {start}..{end} (it holds {held})"
        )
    labels = known_labels(settings, start, end, as_of, "lake")
    with progress_bar() as bar:
        task = bar.add_task("scoring the window", total=None)
        return backtest_window.read_window(
            model,
            policies,
            table_uri=table_uri or settings.feature_table_uri,
            lake=lake,
            lake_settings=settings.lake,
            start=start,
            end=end,
            as_of=as_of,
            labels=labels,
            reason_codes=settings.serving.reason_codes,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def run_backtest(
    settings: Settings,
    candidate: CheckedPolicy,
    active: CheckedPolicy,
    start: dt.date,
    end: dt.date,
    as_of: dt.date | None = None,
    table_uri: str | None = None,
) -> BacktestResult:
    """Read and score the labelled window, backtest the candidate beside the active policy."""
    from fraudrisk.policy.backtest import backtest  # deferred: numpy, the engine

    as_of = as_of or end
    through = labelled_end(settings, start, end, as_of)
    window = read_window(settings, (candidate, active), start, through, as_of, table_uri)
    return backtest(window, candidate, active)


def backtest(
    start: Day,
    end: Day,
    policy: PolicyFile = None,
    active: ActiveFile = None,
    lake: Annotated[
        str | None, typer.Option(help="The lake (local dir or s3:// URI) [settings.lake_uri].")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="The feature table URI [HOME/features].")
    ] = None,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Labels known by the end of this day [--end]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    plot: Annotated[
        Path | None, typer.Option(file_okay=False, help="Write the PNG plots into this directory.")
    ] = None,
) -> None:
    """Replay a labelled window through a candidate policy with the champion's batch scores.

    Per rule: hits, precision, recall, false positives, overlap. Per threshold: alerts per day,
    precision, recall, fraud caught and costs across a grid, the cost-optimal threshold and the
    best one within the alert budget. The candidate beside the active policy. Only labels known
    by --as-of count (monitoring's label delay), so --end is clipped to the last labelled day.
    """
    from fraudrisk.policy.backtest_window import BacktestError  # deferred: pyarrow.dataset
    from fraudrisk.policy.errors import PolicyError, PolicyInputError
    from fraudrisk.scoring.model import ModelLoadError

    settings = get_settings()
    if lake:
        settings = settings.model_copy(
            update={"lake": settings.lake.model_copy(update={"uri": lake})}
        )
    try:
        candidate, current = load_policies(policy, active)
        result = run_backtest(
            settings,
            candidate,
            current,
            start.date(),
            end.date(),
            as_of.date() if as_of else None,
            table,
        )
    except PolicyError as error:
        err_console.print(f"[red]error:[/red] a policy does not check:\n{error}")
        raise typer.Exit(2) from None
    except ModelLoadError as error:
        err_console.print(f"[red]error:[/red] no champion to score with: {error}")
        raise typer.Exit(2) from None
    except (BacktestError, PolicyInputError, ValueError) as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    _output(result, end.date(), as_json, plot)


def _output(result: BacktestResult, asked_end: dt.date, as_json: bool, plot: Path | None) -> None:
    from fraudrisk.policy.backtest_report import print_report  # deferred: only for people

    if plot is not None:
        from fraudrisk.policy.backtest_plots import write_plots  # deferred: matplotlib (≈0.3 s)

        written = write_plots(result, plot)
        err_console.print(f"plots: {', '.join(str(p) for p in written)}")
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    if result.end < asked_end:
        console.print(f"labels known through {result.end} (window clipped from {asked_end})")
    print_report(result, console)


def register(app: typer.Typer) -> None:
    """Add ``backtest`` to the ``policy`` group."""
    app.command("backtest", epilog=EPILOG)(backtest)
