"""Decision-policy rules: what 50 rules add per transaction, and vectorised throughput.

Two engines built from the same thresholds, in the same run:

* **thresholds only** — the baseline: the policy with no rules (``decide``'s result);
* **50 rules** — fifty rules like a risk team's (amount, hour, channel and country lists,
  terminal and customer features, ``'feature' in reasons``, arithmetic, min/max), every action.

**Scalar** (the sync API's path): ``PolicyEngine.decide_one`` on one transaction at a time
(a dict of fields, a dict of the 19 features, the reason codes), both engines called on the
same transaction one after the other so the machine's noise hits both alike; the table gives
percentiles of each and the difference of their p99 (target: ≤ 50 µs).

**Vectorised** (backtests, the stream scorer's batches): ``PolicyEngine.decide_batch`` on one
million rows as numpy columns, reasons as per-feature masks (a backtest computes them once) and
as per-row lists of feature names (the scorer's form), best of ``--repeats``.

Before timing, the two evaluators are checked equal on every row of a sample.

Usage:
    python benchmarks/policy_rules.py
    python benchmarks/policy_rules.py --transactions 50000 --rows 2000000
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fraudrisk.features.definitions import FEATURE_NAMES
from fraudrisk.policy.engine import PolicyEngine
from fraudrisk.policy.inputs import PolicyBatch
from fraudrisk.policy.loader import load_policy_text

TARGET_US = 50.0
RULES = 50
HEAD = "name: bench\nthresholds: {review: 0.045, decline: 0.85}\nalert_budget: 100\n"
CHANNELS = ["ecom", "pos", "atm", "contactless"]
COUNTRIES = ["FR", "DE", "BE", "US", "GB", "ES"]
#: Condition templates, filled with a different threshold per rule.
TEMPLATES = (
    "amount >= {big} and hour(tx_datetime) <= 6 and risk >= {r}",
    "terminal_id_risk_7day_window >= {p} and terminal_id_nb_tx_7day_window >= 5",
    "channel in ['ecom', 'moto'] and amount > {mid} and country not in ['FR', 'BE']",
    "'customer_id_amount_ratio_30day_window' in reasons"
    " and customer_id_amount_ratio_30day_window >= {k}",
    "customer_id_nb_tx_1hour_window >= {n} or customer_id_seconds_since_prev_tx < {s}",
    "amount / max(customer_id_avg_amount_30day_window, 1) > {k} and risk > {r}",
    "weekday(tx_datetime) >= 5 and amount > {mid} and customer_id_new_terminal_30day_window == 1",
    "abs(amount - customer_id_avg_amount_7day_window) > {mid} and not (channel == 'pos')",
    "amount < {tiny} and risk < {r}",
    "'terminal_id_risk_1day_window' in reasons or terminal_id_risk_1day_window > {p}",
)
ACTIONS = ("decline", "force_review", "force_review", "route", "raise_priority", "allow")


def policy_yaml(n_rules: int) -> str:
    """A policy of ``n_rules`` rules cycling through the templates and actions."""
    rng = np.random.default_rng(0)
    lines = [HEAD, "rules:\n"] if n_rules else [HEAD]
    for i in range(n_rules):
        values = {
            "big": int(rng.integers(500, 3000)),
            "mid": int(rng.integers(100, 600)),
            "tiny": round(float(rng.uniform(0.5, 3)), 2),
            "r": round(float(rng.uniform(0.05, 0.6)), 3),
            "p": round(float(rng.uniform(0.1, 0.8)), 2),
            "k": int(rng.integers(3, 10)),
            "n": int(rng.integers(4, 10)),
            "s": int(rng.integers(5, 120)),
        }
        when = TEMPLATES[i % len(TEMPLATES)].format(**values).replace("'", "''")
        action = ACTIONS[i % len(ACTIONS)]
        extra = {"route": ", queue: high-value", "raise_priority": ", factor: 2"}.get(action, "")
        lines.append(
            f"  - {{name: rule-{i}, when: '{when}', action: {action}, reason: rule {i}{extra}}}\n"
        )
    return "".join(lines)


def columns(n: int, seed: int) -> tuple[np.ndarray, dict[str, Any], list[list[str]]]:
    """Risk, transaction and feature columns, and reason codes of ``n`` random transactions."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2018-04-01T00:00:00", "us")
    data: dict[str, Any] = {
        "tx_amount": np.round(rng.lognormal(3.5, 1.2, n), 2),
        "tx_datetime": start + rng.integers(0, 86_400 * 90, n).astype("timedelta64[s]"),
        "channel": rng.choice(CHANNELS, n),
        "country": rng.choice(COUNTRIES, n),
    }
    for name in FEATURE_NAMES:
        data.setdefault(name, rng.gamma(1.0, 2.0, n).astype(np.float32))
    for name in ("terminal_id_risk_1day_window", "terminal_id_risk_7day_window"):
        data[name] = rng.beta(0.3, 6, n).astype(np.float32)
    data["customer_id_new_terminal_30day_window"] = rng.integers(0, 2, n).astype(np.float32)
    picks = rng.integers(0, len(FEATURE_NAMES), (n, 3))
    reasons = [[FEATURE_NAMES[j] for j in row] for row in picks.tolist()]
    return rng.beta(0.4, 8, n), data, reasons


def scalar_inputs(n: int) -> list[tuple[float, dict[str, Any], dict[str, float], list[str]]]:
    """One (risk, transaction, features, reasons) per transaction, as the sync API has them."""
    risk, data, reasons = columns(n, seed=1)
    fields = ("tx_amount", "tx_datetime", "channel", "country")
    out = []
    for i in range(n):
        transaction = {k: data[k][i].item() for k in fields}
        features = {k: float(data[k][i]) for k in FEATURE_NAMES}
        out.append((float(risk[i]), transaction, features, reasons[i]))
    return out


def check_agreement(engine: PolicyEngine, n: int = 5000) -> int:
    """Rows of a sample where batch and scalar decisions agree (must be all)."""
    risk, data, reasons = columns(n, seed=2)
    decided = engine.decide_batch(PolicyBatch(risk, data, reasons))
    agreed = 0
    for i in range(n):
        transaction = {k: v[i].item() for k, v in data.items()}
        agreed += decided.row(i) == engine.decide_one(
            float(risk[i]), transaction, transaction, reasons[i]
        )
    return agreed


def time_scalar(engines: dict[str, PolicyEngine], n: int) -> dict[str, list[float]]:
    """Microseconds per ``decide_one`` call of each engine, interleaved per transaction."""
    inputs = scalar_inputs(n)
    for risk, tx, features, reasons in inputs[:2000]:  # warm up
        for engine in engines.values():
            engine.decide_one(risk, tx, features, reasons)
    timings: dict[str, list[float]] = {name: [] for name in engines}
    clock = time.perf_counter_ns
    gc.collect()
    for risk, tx, features, reasons in inputs:
        for name, engine in engines.items():
            start = clock()
            engine.decide_one(risk, tx, features, reasons)
            timings[name].append((clock() - start) / 1000)
    return timings


def time_vector(engine: PolicyEngine, batch: PolicyBatch, repeats: int) -> float:
    """Best seconds of ``decide_batch`` over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        engine.decide_batch(batch)
        best = min(best, time.perf_counter() - start)
    return best


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def scalar_table(timings: dict[str, list[float]], n_rules: int) -> Table:
    calls = len(next(iter(timings.values())))
    table = Table(title=f"scalar engine, one transaction per call ({calls:,} calls each, µs)")
    for column in ("engine", "mean", "p50", "p90", "p99", "p99.9", "max"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for name, values in timings.items():
        cells = [
            statistics.fmean(values),
            *(percentile(values, q) for q in (50, 90, 99, 99.9)),
            max(values),
        ]
        table.add_row(name, *(f"{v:.1f}" for v in cells))
    base, ruled = timings.values()
    added = percentile(ruled, 99) - percentile(base, 99)
    verdict = "[green]within[/]" if added <= TARGET_US else "[red]above[/]"
    table.caption = (
        f"{n_rules} rules add {added:.1f} µs at p99 — {verdict} the {TARGET_US:g} µs target"
    )
    return table


def vector_table(rows: int, results: list[tuple[str, float]]) -> Table:
    table = Table(title=f"vectorised engine, {rows:,} rows per batch (best run)")
    for column in ("engine", "seconds", "rows/s", "ns/row"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for name, seconds in results:
        table.add_row(
            name, f"{seconds:.3f}", f"{rows / seconds:,.0f}", f"{seconds / rows * 1e9:.0f}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=RULES)
    parser.add_argument("--transactions", type=int, default=20_000, help="scalar calls per engine")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the vectorised batch")
    parser.add_argument("--repeats", type=int, default=3, help="vectorised runs (best is kept)")
    args = parser.parse_args()
    console = Console()
    baseline = PolicyEngine(load_policy_text(policy_yaml(0), "thresholds-only"))
    ruled = PolicyEngine(load_policy_text(policy_yaml(args.rules), f"{args.rules}-rules"))
    engines = {"thresholds only": baseline, f"{args.rules} rules": ruled}
    with console.status("checking batch == scalar on a sample"):
        agreed = check_agreement(ruled)
    console.print(f"batch and scalar decisions agree on {agreed:,} of 5,000 rows")
    with console.status(f"timing {args.transactions:,} scalar calls per engine"):
        timings = time_scalar(engines, args.transactions)
    console.print(scalar_table(timings, args.rules))
    with console.status(f"building {args.rows:,} rows"):
        risk, data, reasons = columns(args.rows, seed=3)
        masks = {
            f: np.fromiter((f in r for r in reasons), bool, len(reasons)) for f in FEATURE_NAMES
        }
    results = []
    with console.status("timing the vectorised engines"):
        for name, engine, batch in (
            ("thresholds only", baseline, PolicyBatch(risk, data)),
            (f"{args.rules} rules, reasons as masks", ruled, PolicyBatch(risk, data, masks)),
            (f"{args.rules} rules, reasons as lists", ruled, PolicyBatch(risk, data, reasons)),
        ):
            results.append((name, time_vector(engine, batch, args.repeats)))
    console.print(vector_table(args.rows, results))
    console.print(
        f"{platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cores, {platform.machine()}"
    )


if __name__ == "__main__":
    main()
