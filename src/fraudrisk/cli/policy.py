"""``fraudrisk policy``: check decision policies (lint), show them, and their stored versions.

Queue names of ``route`` rules are checked against the case routing file
(``FRAUDRISK_CASES__ROUTING_FILE``, default the bundled ``cases/routing.yaml``). The stored
versions and their four-eyes steps (``draft | submit | approve | reject | activate | rollback |
list | diff``) are in :mod:`fraudrisk.cli.policy_versions`; ``show`` shows a file or, given a
number, a stored version. ``backtest`` (:mod:`fraudrisk.cli.policy_backtest`) replays a labelled
window of the lake through a candidate and the active policy; ``shadow-report``
(:mod:`fraudrisk.cli.policy_shadow`) compares the shadow policy's stored decisions with the
active one's.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fraudrisk.cli import policy_backtest, policy_shadow, policy_versions
from fraudrisk.cli.policy_versions import AsJson, TokenFile, routed_environment
from fraudrisk.console import console, examples

if TYPE_CHECKING:
    from fraudrisk.policy.document import CheckedPolicy, CheckedRule
    from fraudrisk.policy.errors import Problem
    from fraudrisk.policy.types import Environment

app = typer.Typer(
    name="policy",
    help="Decision policies: thresholds, rules and the alert budget (lint, show, names), and "
    "their stored versions, approved by four eyes (draft, submit, approve, activate, rollback), "
    "backtested on labelled history (backtest) and compared in shadow (shadow-report).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
Files = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Policy YAML files (default: the bundled policies/default.yaml).", dir_okay=False
    ),
]


def _environment() -> Environment:
    """Every transaction field and feature; the queues of the routing file when it loads."""
    return routed_environment()


def _check(
    path: Path | None, environment: Environment
) -> tuple[str, CheckedPolicy | None, list[Problem]]:
    """The file's name, its checked policy (None when wrong) and its problems."""
    from fraudrisk.policy.errors import PolicyError  # deferred: yaml, pydantic
    from fraudrisk.policy.loader import default_policy_path, load_default_policy, load_policy

    source = str(path) if path else str(default_policy_path())
    try:
        policy = load_policy(path, environment) if path else load_default_policy(environment)
    except PolicyError as error:
        return source, None, list(error.problems)
    return source, policy, []


def _summary(policy: CheckedPolicy) -> dict[str, Any]:
    document = policy.document
    return {
        "name": document.name,
        "thresholds": document.thresholds.model_dump(),
        "alert_budget": document.alert_budget,
        "rules": [
            {
                "name": r.name,
                "action": r.spec.action,
                "queue": r.spec.queue,
                "factor": r.spec.factor,
            }
            for r in policy.rules
        ],
        "reads": [s.name for s in policy.symbols],
    }


def _say_clean(source: str, policy: CheckedPolicy) -> None:
    document = policy.document
    actions = Counter(r.spec.action for r in policy.rules)
    counted = ", ".join(f"{n} {action}" for action, n in actions.items()) or "no rules"
    console.print(
        f"[green]ok[/] {source}: policy {document.name!r} — review ≥ "
        f"{document.thresholds.review:g}, decline ≥ {document.thresholds.decline:g}, alert "
        f"budget {document.alert_budget}/day, {len(policy.rules)} rules ({counted})"
    )
    if policy.rules:
        console.print(_rules_table(policy, full=False))


@app.command(
    "lint",
    epilog=examples(
        "fraudrisk policy lint policies/default.yaml",
        "fraudrisk policy lint policies/*.yaml --json",
        "fraudrisk policy lint",
    ),
)
def lint(
    files: Files = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report on stdout.")] = False,
) -> None:
    """Parse and type-check policies: every problem as file:line:col: message (exit 1).

    A clean policy prints a summary of its thresholds and rules.
    """
    environment = _environment()
    paths: list[Path | None] = list(files) if files else [None]
    results = [_check(path, environment) for path in paths]
    if as_json:
        report = [
            {
                "file": source,
                "ok": not problems,
                "problems": [p.to_dict() for p in problems],
                "policy": _summary(policy) if policy else None,
            }
            for source, policy, problems in results
        ]
        typer.echo(json.dumps({"ok": all(r["ok"] for r in report), "files": report}, indent=2))
    else:
        for source, policy, problems in results:
            for problem in problems:
                typer.echo(str(problem), err=True)
            if policy is not None:
                _say_clean(source, policy)
    if any(problems for _, _, problems in results):
        raise typer.Exit(1)


def _action(rule: CheckedRule) -> str:
    spec = rule.spec
    if spec.queue:
        return f"{spec.action} → {spec.queue}"
    if spec.factor:
        return f"{spec.action} × {spec.factor:g}"
    return str(spec.action)


def _rules_table(policy: CheckedPolicy, full: bool = True) -> Table:
    table = Table(title="rules (allow > decline > decline threshold > force_review > review)")
    table.add_column("#", justify="right")
    table.add_column("rule", style="bold")
    table.add_column("action", style="cyan")
    table.add_column("when")
    if full:
        table.add_column("reason")
    for i, rule in enumerate(policy.rules, start=1):
        cells = [str(i), rule.name, _action(rule), rule.spec.when]
        table.add_row(*cells, *([rule.spec.reason] if full else []))
    return table


@app.command(
    "show",
    epilog=examples(
        "fraudrisk policy show policies/default.yaml",
        "fraudrisk policy show",
        "fraudrisk policy show 3 --token-file ~/.fraudrisk/token   # stored version 3",
        "fraudrisk policy show --version 3 --json",
    ),
)
def show(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE|N",
            help="A policy YAML file, or the number of a stored version (digits that name no "
            "file; default: the bundled policies/default.yaml).",
        ),
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A stored version (as `show N`).")
    ] = None,
    as_json: AsJson = False,
    token_file: TokenFile = None,
) -> None:
    """Show a policy: thresholds, alert budget, costs and its rules in order.

    A stored version also shows who wrote, approved and activated it (needs policy:read:
    your token in --token-file or $FRAUDRISK_TOKEN).
    """
    if version is None and target is not None and policy_versions.is_number(target):
        version = int(target)
    if version is not None:
        _show_version(version, as_json, token_file)
        return
    source, policy, problems = _check(Path(target) if target else None, _environment())
    if policy is None:
        for problem in problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({"file": source, "policy": _summary(policy)}, indent=2))
        return
    _show_policy(policy, source)


def _show_version(number: int, as_json: bool, token_file: Path | None) -> None:
    """A stored version: its life (who, when), then the policy it holds."""
    from fraudrisk.policy.errors import PolicyError  # deferred: yaml, pydantic
    from fraudrisk.policy.loader import load_policy_text

    stored = policy_versions.stored_version(number, token_file)
    if as_json:
        typer.echo(json.dumps(policy_versions.version_dict(stored), indent=2))
        return
    console.print(policy_versions.version_table(stored))
    try:
        policy = load_policy_text(stored.text, f"v{number}", _environment())
    except PolicyError as error:  # it linted when drafted: the routing file changed since
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    _show_policy(policy, f"version {number}")


def _show_policy(policy: CheckedPolicy, source: str) -> None:
    document = policy.document
    head = Table(title=f"policy {document.name!r} ({source})", show_header=False)
    head.add_column("", style="bold")
    head.add_column("")
    head.add_row("description", document.description or "—")
    head.add_row("review at risk ≥", f"{document.thresholds.review:g}")
    head.add_row("decline at risk ≥", f"{document.thresholds.decline:g}")
    head.add_row("alert budget", f"{document.alert_budget} reviews/day")
    if document.costs is not None:
        costs = document.costs
        head.add_row("cost of a review", f"{costs.review:g}")
        head.add_row("cost of a false decline", f"{costs.false_decline:g}")
        missed = "its amount" if costs.missed_fraud == "amount" else f"{costs.missed_fraud:g}"
        head.add_row("loss of a missed fraud", missed)
    head.add_row("reads", ", ".join(s.name for s in policy.symbols) or "—")
    console.print(head)
    console.print(_rules_table(policy))


@app.command(
    "names",
    epilog=examples("fraudrisk policy names", "fraudrisk policy names --json"),
)
def names(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """List the names rules may read (with their types) and the functions they may call."""
    from fraudrisk.policy.types import FUNCTIONS, Environment  # deferred: feature definitions

    symbols = Environment.standard().symbols.values()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "names": [
                        {"name": s.name, "type": str(s.type), "source": s.source} for s in symbols
                    ],
                    "functions": [
                        {"name": f.name, "arguments": f.arity, "result": str(f.result)}
                        for f in FUNCTIONS.values()
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table(title="names")
    for column in ("name", "type", "from", "meaning"):
        table.add_column(column)
    for symbol in symbols:
        table.add_row(symbol.name, str(symbol.type), symbol.source, symbol.description)
    console.print(table)
    functions = Table(title="functions")
    for column in ("function", "arguments", "meaning"):
        functions.add_column(column)
    for function in FUNCTIONS.values():
        args = ", ".join(str(p) for p in function.params) + (", ..." if function.variadic else "")
        functions.add_row(f"{function.name}({args})", function.arity, function.description)
    console.print(functions)


policy_versions.register(app)
policy_backtest.register(app)
policy_shadow.register(app)
