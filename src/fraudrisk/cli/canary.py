"""``fraudrisk canary``: start, status, promote, rollback and watch a canary release."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.vocab import STABLE, TrafficMode

if TYPE_CHECKING:
    from fraudrisk.release.canary import Change, Workspace
    from fraudrisk.release.canary_judgement import Evaluation
    from fraudrisk.serving.manifest import ServingPlan

app = typer.Typer(
    name="canary",
    help="Canary releases of the served model: start, status, promote, rollback, watch.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
Manifest = Annotated[
    Path | None,
    typer.Option(
        help="InferenceService YAML to change (default: HOME/serving/inferenceservice.yaml, "
        "copied from manifests/local on first use); the one `fraudrisk serve` runs.",
        dir_okay=False,
    ),
]
Endpoint = Annotated[
    str | None,
    typer.Option(help="Base URL of the service (default: the canary's, else the settings')."),
]
Kubeconfig = Annotated[
    str | None,
    typer.Option(help="Patch the InferenceService on this cluster (default: $KUBECONFIG if set)."),
]
Local = Annotated[bool, typer.Option("--local", help="Ignore $KUBECONFIG: change the file only.")]
_COLOURS = {"pass": "green", "breach": "red", "insufficient": "yellow"}
_SAY = {"pass": "pass", "breach": "BREACH", "insufficient": "not enough data"}
_LIMITS = {
    "min_requests": "≥ {:g} each",
    "max_error_rate": "≤ {:g} %",
    "max_p99_latency_ms": "≤ {:g} ms",
    "max_review_rate_change": "|Δ| ≤ {:g} %",
    "max_decline_rate_change": "|Δ| ≤ {:g} %",
    "max_fallback_rate_change": "Δ ≤ {:g} %",
    "max_score_psi": "≤ {:g}",
}


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Exit 2 with a one-line error for what the workflow refuses."""
    from fraudrisk.release.canary_judgement import CanaryError  # heavy: numpy
    from fraudrisk.serving.manifest import ManifestError

    try:
        yield
    except (CanaryError, ManifestError) as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


def _workspace(
    manifest: Path | None, endpoint: str | None, kubeconfig: str | None, local: bool
) -> Workspace:
    from fraudrisk.release.canary import workspace  # heavy: numpy, pyarrow

    return workspace(get_settings(), manifest, endpoint, kubeconfig, local)


@app.command(
    "start",
    epilog=examples(
        "fraudrisk canary start --version 7 --percent 10",
        "fraudrisk canary start --version 7 --percent 50 --mode ab",
        "fraudrisk canary start --version 7 --mode shadow --manifest my-isvc.yaml",
        "KUBECONFIG=~/.kube/prod fraudrisk canary start --version 7 --percent 5",
    ),
)
def start(
    version: Annotated[int, typer.Option(min=1, help="Registry version of the candidate.")],
    percent: Annotated[
        int | None, typer.Option(min=0, max=100, help="Candidate's share, % (not in shadow).")
    ] = None,
    mode: Annotated[
        TrafficMode | None,
        typer.Option(
            help="canary: random per request; ab: sticky by customer; shadow: scored, never "
            "returned (default: the manifest's)."
        ),
    ] = None,
    manifest: Manifest = None,
    endpoint: Endpoint = None,
    kubeconfig: Kubeconfig = None,
    local: Local = False,
) -> None:
    """Give a registered version a share of the traffic; the stable model keeps the rest.

    Refuses a version that does not exist, was rejected by the validation gate or is the
    stable model. The service's metrics now are the baseline `status` compares against.
    """
    from fraudrisk.release import canary  # heavy: numpy, pyarrow

    with _errors():
        ws = _workspace(manifest, endpoint, kubeconfig, local)
        change = canary.start(ws, version, percent, mode)
    _print_change(f"canary of version {version} started", change, ws)
    if change.state is not None and change.state.baseline is None:
        err_console.print(
            f"[yellow]note:[/yellow] no service at {ws.endpoint or '?'} yet: "
            f"the canary window starts with it ({ws.serve_hint})"
        )


@app.command(
    "status",
    epilog=examples(
        "fraudrisk canary status",
        "fraudrisk canary status --json",
        "fraudrisk canary status --endpoint http://fraud-risk.fraudrisk.example.com",
    ),
)
def status(
    endpoint: Endpoint = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    manifest: Manifest = None,
    kubeconfig: Kubeconfig = None,
    local: Local = False,
) -> None:
    """Champion and canary side by side since the canary started, with the gates' verdicts.

    Traffic, error rate, p50/p99 latency, review/decline/fallback shares and the distance
    between the score distributions (PSI, KS), from the service's /metrics.
    """
    from fraudrisk.release import canary  # heavy: numpy, pyarrow

    with _errors():
        ws = _workspace(manifest, endpoint, kubeconfig, local)
        plan, state = canary.current(ws)
        evaluation = canary.measure(ws)
    if as_json:
        typer.echo(json.dumps(_status_data(ws, plan, state, evaluation), indent=2, default=str))
        return
    since = state.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") if state else "the server's start"
    console.print(
        f"canary {plan.candidate_uri} against {plan.routes[0].model_uri} "
        f"(mode {plan.mode}) — counted since {since}"
    )
    console.print(_status_table(evaluation))
    verdict = evaluation.verdict
    breaches = f" — {', '.join(evaluation.breaches)}" if evaluation.breaches else ""
    console.print(f"verdict: [{_COLOURS[verdict]}]{_SAY[verdict]}[/]{breaches}")
    console.print("gates: FRAUDRISK_CANARY__<GATE> (fraudrisk config show)", style="dim")


@app.command(
    "promote",
    epilog=examples(
        "fraudrisk canary promote",
        "fraudrisk canary promote --force   # despite a breach or too little data (logged)",
    ),
)
def promote(
    force: Annotated[
        bool, typer.Option("--force", help="Promote despite a breach or missing data (logged).")
    ] = False,
    manifest: Manifest = None,
    endpoint: Endpoint = None,
    kubeconfig: Kubeconfig = None,
    local: Local = False,
) -> None:
    """Make the canary the champion: MLflow alias champion, then 100 % of the traffic.

    Refused while a gate is breached or the data is insufficient, unless --force.
    """
    from fraudrisk.release import canary  # heavy: numpy, pyarrow

    with _errors():
        ws = _workspace(manifest, endpoint, kubeconfig, local)
        change = canary.promote(ws, force)
    if force:
        err_console.print("[yellow]warning:[/yellow] promotion forced (recorded in the history)")
    _print_change(f"version {change.version} promoted", change, ws)
    before = f"v{change.champion_before}" if change.champion_before else "none"
    console.print(f"MLflow alias champion: {before} → v{change.champion_after}")


@app.command(
    "rollback",
    epilog=examples(
        "fraudrisk canary rollback",
        'fraudrisk canary rollback --reason "review queue doubled"',
    ),
)
def rollback(
    reason: Annotated[
        str, typer.Option(help="Why (kept in HOME/serving/canary-history.jsonl).")
    ] = "manual",
    manifest: Manifest = None,
    kubeconfig: Kubeconfig = None,
    local: Local = False,
) -> None:
    """Send all the traffic back to the stable model; the MLflow champion does not change."""
    from fraudrisk.release import canary  # heavy: numpy, pyarrow

    with _errors():
        ws = _workspace(manifest, None, kubeconfig, local)
        change = canary.rollback(ws, reason)
    _print_change(f"canary of version {change.version} rolled back ({reason})", change, ws)


@app.command(
    "watch",
    epilog=examples(
        "fraudrisk canary watch",
        "fraudrisk canary watch --interval 5 --max-seconds 600",
    ),
)
def watch(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between evaluations.")] = 10.0,
    max_seconds: Annotated[
        float | None, typer.Option(min=0, help="Stop after this long (default: never).")
    ] = None,
    endpoint: Endpoint = None,
    manifest: Manifest = None,
    kubeconfig: Kubeconfig = None,
    local: Local = False,
) -> None:
    """Evaluate the gates every --interval; roll back as soon as the canary breaches one.

    Too little data is not a breach: watching goes on. Exit code 3 after a rollback, 0 when
    --max-seconds passed without a breach.
    """
    from fraudrisk.release import canary  # heavy: numpy, pyarrow

    def report(evaluation: Evaluation | None, problem: str) -> None:
        now = dt.datetime.now().strftime("%H:%M:%S")
        if evaluation is None:
            console.print(f"{now} [yellow]{problem}[/yellow]")
            return
        verdict = evaluation.verdict
        console.print(
            f"{now} [{_COLOURS[verdict]}]{_SAY[verdict]}[/] champion "
            f"{evaluation.champion.requests:.0f} req, {evaluation.variant} "
            f"{evaluation.canary.requests:.0f} req; {', '.join(evaluation.breaches) or 'no breach'}"
        )

    with _errors():
        ws = _workspace(manifest, endpoint, kubeconfig, local)
        change = canary.watch(ws, interval, max_seconds, report)
    if change is None:
        console.print(f"no breach in {max_seconds:g} s: the canary keeps running")
        return
    _print_change(f"canary of version {change.version} rolled back automatically", change, ws)
    raise typer.Exit(3)


# ---------------------------------------------------------------- output


def _routes(plan: ServingPlan) -> str:
    parts = [f"{r.model_uri} {r.percent} %" for r in plan.routes]
    if plan.shadow_uri:
        parts.append(f"{plan.shadow_uri} in shadow")
    return ", ".join(parts)


def _print_change(title: str, change: Change, ws: Workspace) -> None:
    console.print(f"[bold]{title}[/bold] — {ws.target.where}")
    console.print(f"  before: {_routes(change.before)}")
    console.print(f"  after:  {_routes(change.after)}")


def _cell(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.2f} %" if unit == "%" else f"{value:.{digits}f}{unit}"


def _status_table(evaluation: Evaluation) -> Table:
    champion, candidate = evaluation.champion, evaluation.canary
    total = champion.requests + candidate.requests

    def share(n: float) -> str:
        return f"{n:.0f} ({n / total:.0%})" if total else f"{n:.0f}"

    def rate(gate: str, left: float | None, right: float | None) -> tuple[str, str, str]:
        return (_cell(left, "%"), _cell(right, "%"), gate)

    rows: dict[str, tuple[str, str, str]] = {
        "requests": (share(champion.requests), share(candidate.requests), "min_requests"),
        "error rate": rate("max_error_rate", champion.error_rate, candidate.error_rate),
        "p50 latency": (_cell(champion.p50_ms, " ms", 2), _cell(candidate.p50_ms, " ms", 2), ""),
        "p99 latency": (
            _cell(champion.p99_ms, " ms", 2),
            _cell(candidate.p99_ms, " ms", 2),
            "max_p99_latency_ms",
        ),
        "review rate": rate("max_review_rate_change", champion.review_rate, candidate.review_rate),
        "decline rate": rate(
            "max_decline_rate_change", champion.decline_rate, candidate.decline_rate
        ),
        "fallback share": rate(
            "max_fallback_rate_change", champion.fallback_rate, candidate.fallback_rate
        ),
        "score PSI": ("", _cell(evaluation.score_psi), "max_score_psi"),
        "score KS": ("", _cell(evaluation.score_ks), ""),
    }
    checks = {check.gate: check for check in evaluation.gates}
    table = Table(title=f"champion vs {evaluation.variant}")
    table.add_column("", no_wrap=True)
    for column in (STABLE, evaluation.variant, "gate"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for label, (left, right, gate) in rows.items():
        check = checks.get(gate)
        if check is None:
            table.add_row(label, left, right, "", "")
            continue
        limit = _LIMITS[gate].format(check.limit * (100 if "%" in _LIMITS[gate] else 1))
        verdict = f"[{_COLOURS[check.verdict]}]{_SAY[check.verdict]}[/]"
        table.add_row(label, left, right, limit, verdict)
    return table


def _status_data(ws: Workspace, plan: ServingPlan, state: Any, evaluation: Evaluation) -> Any:
    return {
        "target": ws.target.where,
        "endpoint": ws.endpoint,
        "mode": plan.mode,
        "stable_model_uri": plan.routes[0].model_uri,
        "candidate_model_uri": plan.candidate_uri,
        "percent": plan.canary_percent,
        "version": state.version if state else None,
        "started_at": state.started_at.isoformat() if state else None,
        "variants": {
            STABLE: evaluation.champion.model_dump(),
            evaluation.variant: evaluation.canary.model_dump(),
        },
        "score_psi": evaluation.score_psi,
        "score_ks": evaluation.score_ks,
        "gates": [check.model_dump() for check in evaluation.gates],
        "verdict": evaluation.verdict,
    }
