"""``make demo`` step 9: a risk manager changes the policy; a second approves it; it goes live.

Runs while step 8's case service and step 7's Kafka broker are up, on the application database
of step 7 (where the policy versions live). Two risk managers of step 8's demo users act
through the case service's API (password + TOTP):

1. rita drafts the bundled default policy (``policies/default.yaml``) as version 1 and submits
   it; raj approves it; rita activates it.
2. A stream scorer applying the active version live (``fraudrisk stream score``; it checks the
   active version every second) scores the first half of the test week from its own topic.
3. rita backtests on the four labelled weeks before the test week (``fraudrisk policy backtest
   --json``): the review sweep's best threshold within the alert budget, then the decline
   sweep's best above it (a second backtest, the review threshold moved), make her candidate,
   whose backtest table and plots are printed beside the active policy's. Of thresholds that
   decide alike (calibrated risks take few values) the current one is kept.
4. rita drafts and submits the candidate; her own approval is refused (four eyes: HTTP 403);
   raj approves it and activates it. The scorer swaps it in without a restart.
5. The second half of the week is scored: the decisions per policy version show the counts
   change as the backtest said, and every decision carries the version that made it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import sqlalchemy as sa
from rich.table import Table

from fraudrisk.alerts.store import SCORES, AlertStore
from fraudrisk.config import Settings
from fraudrisk.console import console
from fraudrisk.demo.cases_step import Credentials, login, ok_json
from fraudrisk.demo.stream_step import StreamOutcome, start_logged, stop_process
from fraudrisk.io.kafka import ensure_topics
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.jobs.replay import produce, replay_messages
from fraudrisk.policy.loader import default_policy_text
from fraudrisk.vocab import APPROVE, DECLINE, REVIEW

#: The author and the second pair of eyes.
AUTHOR, APPROVER = "rita", "raj"
#: Labelled history the backtest replays: the weeks before the test week.
BACKTEST_WEEKS = 4
#: The scorer checks the active version this often (seconds).
RELOAD_SECONDS = 1.0
#: Longest wait for the scorer (state rebuilt, a version applied, a half scored).
WAIT_S = 240.0
_THRESHOLD_LINE = re.compile(r"^(\s+(review|decline):\s*)[0-9.eE+-]+(.*)$", re.DOTALL)


@dataclass(frozen=True)
class _Scorer:
    """The live stream scorer of the step: its process, metrics port, store and topics."""

    process: subprocess.Popen[bytes]
    metrics_url: str
    store_url: str
    settings: Settings
    log: Path


def run_policy_step(
    settings: Settings, outcome: StreamOutcome, url: str, people: dict[str, Credentials]
) -> bool:
    """Step 9: draft, backtest, four-eyes approval and live application; True when it held.

    Args:
        settings: Step 8's settings (the application database, the running broker).
        outcome: Step 7's outcome (its week, its folder).
        url: The running case service.
        people: The demo users' credentials.
    """
    console.rule("[bold]9. policy: a threshold change, backtested, approved by four eyes, live")
    work = outcome.work / "policy"
    work.mkdir(parents=True, exist_ok=True)
    rows = outcome.week.rows
    half = rows.num_rows // 2
    with _desks(url, people) as (author, approver):
        first = _four_eyes(author, approver, default_policy_text(), "the bundled default")
        with _live_scorer(settings, outcome, work) as scorer:
            _wait_version(scorer, first)
            _score(scorer, rows.slice(0, half), half)
            today = rows["tx_datetime"][half - 1].as_py().date()
            candidate = _candidate(settings, outcome.week.first, today, work)
            second = _four_eyes(author, approver, candidate, "the backtested candidate", first)
            _wait_version(scorer, second)
            _score(scorer, rows.slice(half), rows.num_rows)
            counts = _decisions_by_version(scorer.store_url)
    _print_by_version(counts)
    return set(counts) == {first, second} and sum(c["transactions"] for c in counts.values()) == (
        rows.num_rows
    )


@contextlib.contextmanager
def _desks(url: str, people: dict[str, Credentials]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The two risk managers, logged in to the case service (password + TOTP)."""
    with (
        httpx.Client(base_url=url, timeout=30) as author,
        httpx.Client(base_url=url, timeout=30) as approver,
    ):
        login(author, people[AUTHOR])
        login(approver, people[APPROVER])
        console.print(
            f"risk managers {AUTHOR} and {APPROVER} logged in to the case service "
            f"(policies under {url}/v1/policies)"
        )
        yield author, approver


def _four_eyes(
    author: httpx.Client,
    approver: httpx.Client,
    text: str,
    what: str,
    based_on: int | None = None,
) -> int:
    """Draft and submit as the author, approve (and activate) as the second; the version."""
    body = {"text": text, "note": what, "based_on": based_on}
    version = ok_json(author.post("/v1/policies", json=body))["number"]
    ok_json(author.post(f"/v1/policies/{version}/submit", json={"note": "please review"}))
    console.print(f"{AUTHOR} drafted v{version} ({what}) and submitted it for approval")
    if based_on is not None:
        _refused_own_approval(author, version)
        diff = ok_json(approver.get(f"/v1/policies/{based_on}/diff/{version}"))["diff"]
        console.print(f"  {APPROVER} reads the diff v{based_on} → v{version}:")
        console.print(diff.rstrip(), highlight=False, markup=False)
    ok_json(approver.post(f"/v1/policies/{version}/approve", json={"note": "backtest read"}))
    done = ok_json(approver.post(f"/v1/policies/{version}/activate"))
    console.print(
        f"  {APPROVER} approved and activated v{version}: status {done['status']}, author "
        f"{done['author']}, approver {done['approver']}"
    )
    return int(version)


def _refused_own_approval(author: httpx.Client, version: int) -> None:
    """The author's own approval is refused (four eyes); raises if it is not."""
    refused = author.post(f"/v1/policies/{version}/approve", json={"note": "looks right to me"})
    detail = refused.json().get("detail", refused.text) if refused.content else ""
    console.print(
        f"  {AUTHOR} approving her own v{version} → HTTP {refused.status_code}: {detail}",
        highlight=False,
    )
    if refused.status_code != 403:
        raise RuntimeError(f"four eyes not enforced: {refused.status_code} {refused.text}")


@contextlib.contextmanager
def _live_scorer(settings: Settings, outcome: StreamOutcome, work: Path) -> Iterator[_Scorer]:
    """A stream scorer on its own topics and store, applying the active version live."""
    topics = {
        "transactions_topic": "policy-demo.transactions",
        "scores_topic": "policy-demo.scores",
        "alerts_topic": "policy-demo.alerts",
        "dlq_topic": "policy-demo.transactions.dlq",
    }
    kafka = settings.kafka.model_copy(update=topics)
    ensure_topics(kafka)
    store_url, port = f"sqlite:///{work / 'scores.db'}", free_port()
    env = {
        "FRAUDRISK_HOME": str(settings.home),
        "FRAUDRISK_DB__URL": store_url,
        "FRAUDRISK_POLICY__DATABASE_URL": outcome.store_url,
        "FRAUDRISK_POLICY__RELOAD_SECONDS": str(RELOAD_SECONDS),
        "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        **{f"FRAUDRISK_KAFKA__{key.upper()}": value for key, value in topics.items()},
    }
    argv = [
        *(sys.executable, "-m", "fraudrisk", "stream", "score", "--group", "policy-demo"),
        *("--transactional-id", "policy-demo-0", "--metrics-port", str(port)),
        *("--lake-state-before", str(outcome.week.first)),
    ]
    log = work / "scorer.log"
    process = start_logged(argv, env, log)
    console.print(
        f"live stream scorer on {topics['transactions_topic']}: applies the active policy "
        f"version, checked every {RELOAD_SECONDS:g} s (metrics at 127.0.0.1:{port}; log {log})"
    )
    try:
        yield _Scorer(
            process,
            f"http://127.0.0.1:{port}/metrics",
            store_url,
            settings.model_copy(update={"kafka": kafka}),
            log,
        )
    finally:
        stop_process(process)


def _check(scorer: _Scorer) -> None:
    if scorer.process.poll() is not None:
        tail = scorer.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the live scorer exited ({scorer.process.returncode}):\n{tail}")


def _applied_version(scorer: _Scorer) -> int | None:
    """The version the scorer applies, from its metrics (None before they are served)."""
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(scorer.metrics_url, timeout=2).text
        found = re.search(r"^fraudrisk_policy_active_version (\S+)$", text, re.MULTILINE)
        return int(float(found.group(1))) if found else None
    return None


def _wait_version(scorer: _Scorer, version: int) -> None:
    """Wait until the scorer applies ``version`` (no restart: it polls the active one)."""
    began = time.monotonic()
    with console.status(f"waiting for the live scorer to apply v{version}"):
        while _applied_version(scorer) != version:
            _check(scorer)
            if time.monotonic() - began > WAIT_S:
                raise TimeoutError(f"v{version} was not applied in {WAIT_S:.0f} s; {scorer.log}")
            time.sleep(0.2)
    console.print(
        f"the live scorer applies v{version} (after {time.monotonic() - began:.1f} s, no restart)"
    )


def _score(scorer: _Scorer, rows: pa.Table, expected_total: int) -> None:
    """Produce ``rows`` to the scorer's topic; wait until its store holds ``expected_total``."""
    sent = produce(scorer.settings, replay_messages(rows, scorer.settings))
    first, last = (rows["tx_datetime"][i].as_py() for i in (0, rows.num_rows - 1))
    began = time.monotonic()
    store = AlertStore(scorer.store_url)
    try:
        with console.status(f"scoring {sent:,} transactions"):
            while store.count() < expected_total:
                _check(scorer)
                if time.monotonic() - began > WAIT_S:
                    raise TimeoutError(f"{store.count():,} of {expected_total:,} scored")
                time.sleep(0.2)
    finally:
        store.close()
    console.print(
        f"scored {sent:,} transactions of {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} in "
        f"{time.monotonic() - began:.1f} s"
    )


def _candidate(settings: Settings, week_first: dt.date, today: dt.date, work: Path) -> str:
    """The author's backtest: each threshold's best within the budget; the candidate's text."""
    start = week_first - dt.timedelta(weeks=BACKTEST_WEEKS)
    window = ["--start", str(start), "--end", str(week_first - dt.timedelta(days=1))]
    window += ["--as-of", str(today)]
    console.print(
        f"{AUTHOR} backtests the active policy on {start} → {week_first - dt.timedelta(days=1)} "
        f"with the labels known on {today}: fraudrisk policy backtest {' '.join(window)} --json"
    )
    active = default_policy_text()
    review = _best_threshold(json.loads(_backtest(settings, [*window, "--json"])), "review")
    path = work / "candidate.yaml"
    path.write_text(_with_thresholds(active, review, None), "utf-8")
    console.print(
        f"{AUTHOR} moves the review threshold, then sweeps the decline threshold above it:"
    )
    swept = json.loads(_backtest(settings, [*window, "--policy", str(path), "--json"]))
    decline = _best_threshold(swept, "decline")
    text = _with_thresholds(active, review, decline)
    path.write_text(text.replace("name: default", "name: default-budget-optimal", 1), "utf-8")
    plots = work / "backtest"
    console.print(
        f"{AUTHOR} backtests the candidate ({path}) beside the active policy, with plots:"
    )
    sys.stdout.write(_backtest(settings, [*window, "--policy", str(path), "--plot", str(plots)]))
    sys.stdout.flush()
    names = ", ".join(sorted(p.name for p in plots.glob("*.png")))
    console.print(f"backtest plots: {names} in {plots}")
    return path.read_text("utf-8")


def _best_threshold(result: dict[str, Any], which: str) -> float:
    """The sweep's best point within the alert budget (else the cost-optimal one), printed."""
    sweep = result[f"{which}_sweep"]
    best = sweep["budget_optimal"] or sweep["cost_optimal"]
    now = min(sweep["points"], key=lambda p: abs(p["threshold"] - sweep["current"]))
    threshold = float(best["threshold"])
    console.print(
        f"  {which} sweep: current {sweep['current']:g} (total cost "
        f"{now['figures']['total_cost']:,.0f}, {now['figures']['reviews_per_day']:.1f} "
        f"reviews/day); best within the budget of {result['alert_budget']} reviews/day: "
        f"{threshold:.4g} (total cost {best['figures']['total_cost']:,.0f}, "
        f"{best['figures']['reviews_per_day']:.1f} reviews/day)"
    )
    return threshold


def _rounded_above(value: float, floor: float) -> float:
    """``value`` to three significant digits, unless that would not stay above ``floor``."""
    rounded = float(f"{value:.3g}")
    return rounded if rounded > floor else value


def _with_thresholds(text: str, review: float, decline: float | None) -> str:
    """The policy text with the values of its ``thresholds:`` block replaced (None: kept)."""
    lines = text.splitlines(keepends=True)
    block = next(i for i, line in enumerate(lines) if line.startswith("thresholds:"))
    decline = None if decline is None else _rounded_above(decline, _rounded_above(review, 0.0))
    values = {"review": _rounded_above(review, 0.0), "decline": decline}

    def replaced(match: re.Match[str]) -> str:
        value = values[match[2]]
        return match[0] if value is None else f"{match[1]}{value:g}{match[3]}"

    for i in range(block + 1, len(lines)):
        if lines[i].strip() and not lines[i].startswith(" "):
            break  # the block ended
        lines[i] = _THRESHOLD_LINE.sub(replaced, lines[i])
    return "".join(lines)


def _backtest(settings: Settings, arguments: list[str]) -> str:
    """``fraudrisk policy backtest ARGUMENTS``'s standard output (raises with its errors)."""
    env = {**os.environ, "FRAUDRISK_HOME": str(settings.home), "COLUMNS": str(console.width)}
    done = subprocess.run(
        [sys.executable, "-m", "fraudrisk", "policy", "backtest", *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"policy backtest failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def _decisions_by_version(store_url: str) -> dict[int | None, dict[str, Any]]:
    """Per policy version: transactions, decisions and the event-time span they cover."""
    columns = SCORES.c
    query = sa.select(
        columns.policy_version,
        columns.decision,
        sa.func.count(),
        sa.func.min(columns.tx_datetime),
        sa.func.max(columns.tx_datetime),
    ).group_by(columns.policy_version, columns.decision)
    counts: dict[int | None, dict[str, Any]] = {}
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            for version, decision, n, first, last in connection.execute(query):
                entry = counts.setdefault(
                    version, {"transactions": 0, "first": first, "last": last}
                )
                entry["transactions"] += n
                entry[str(decision)] = n
                entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
    finally:
        engine.dispose()
    return counts


def _print_by_version(counts: dict[int | None, dict[str, Any]]) -> None:
    table = Table(title="the live scorer's decisions by the policy version that made them")
    for column in ("policy", "transactions", REVIEW, DECLINE, APPROVE, "alerts/day", "span"):
        table.add_column(column, justify="right")
    for version, entry in sorted(counts.items(), key=lambda item: item[0] or 0):
        days = max((entry["last"] - entry["first"]).total_seconds() / 86_400, 1e-9)
        alerts = entry.get(REVIEW, 0) + entry.get(DECLINE, 0)
        table.add_row(
            "none" if version is None else f"v{version}",
            f"{entry['transactions']:,}",
            f"{entry.get(REVIEW, 0):,}",
            f"{entry.get(DECLINE, 0):,}",
            f"{entry.get(APPROVE, 0):,}",
            f"{alerts / days:,.1f}",
            f"{entry['first']:%m-%d %H:%M} → {entry['last']:%m-%d %H:%M}",
        )
    console.print(table)
