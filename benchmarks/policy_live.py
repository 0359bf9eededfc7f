"""The live policy in the scorer: what 50 rules add per transaction, beside the same scorer.

Three scorers share one calibrated XGBoost model (trained here on a small simulated lake, in a
scratch MLflow registry) and one in-memory entity state:

* **no policy** — the model's thresholds (today's scorer, the baseline);
* **thresholds only** — a live policy version with no rules;
* **50 rules** — the 50 rules of ``benchmarks/policy_rules.py`` (amount, hour, channel and
  country lists, features, ``'feature' in reasons``, every action).

Each is measured without reason codes (the rules' own cost) and with the reason codes of the
alerts (rules that make alerts also make explanations: a SHAP call of ~1 ms per such alert).

**One transaction per call** (the sync API's and the KServe scorer's path): ``Scorer.score`` on
a batch of one, the three scorers called on the same transaction one after the other so the
machine's noise hits them alike; percentiles of each and the difference of the p99s of 50 rules
and of thresholds only (target: ≤ 50 µs). **Batches** (the stream scorer's path):
``Scorer.score`` on batches of ``--batch`` transactions, best of ``--repeats``, µs per
transaction.

Usage:
    python benchmarks/policy_live.py
    python benchmarks/policy_live.py --transactions 20000 --batch 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: the model
from tests.support.data import synthetic_frame
from tests.support.models import register_xgboost, states_before, unix_seconds

from fraudrisk.config import MlflowSettings, ServingSettings, Settings
from fraudrisk.policy.live import LivePolicy
from fraudrisk.policy.live_version import policy_metrics
from fraudrisk.policy.versions import digest_of
from fraudrisk.registry.versions import bootstrap_champion
from fraudrisk.scoring.model import load_model
from fraudrisk.scoring.scorer import Scorer
from fraudrisk.scoring.vectors import TransactionBatch
from policy_rules import CHANNELS, COUNTRIES, policy_yaml

TARGET_US = 50.0
EPOCH = dt.date(2018, 4, 1)


class FixedVersion:
    """A version source with one active version."""

    def __init__(self, text: str) -> None:
        self._text = text

    def head(self) -> tuple[int, str]:
        """Version 1, always."""
        return 1, digest_of(self._text)

    def text(self, number: int) -> str:
        """The policy's text."""
        return self._text


def scorers(
    home: Path,
) -> tuple[dict[str, dict[str, Scorer]], TransactionBatch, dict[str, list[str]]]:
    """The three scorers, without and with reason codes; the transactions and their fields."""
    settings = Settings(home=home, mlflow=MlflowSettings())
    frame = synthetic_frame(customers=200, days=45)
    train = frame[frame["tx_time_days"] < 35]
    version = register_xgboost(settings, train, n_estimators=60)
    bootstrap_champion(settings, version.version)
    rows = frame[frame["tx_time_days"] >= 38].sort_values(["tx_datetime", "transaction_id"])
    batch = TransactionBatch(
        rows["transaction_id"].to_numpy(np.int64),
        unix_seconds(rows).to_numpy(np.int64),
        rows["customer_id"].to_numpy(np.int64),
        rows["terminal_id"].to_numpy(np.int64),
        rows["tx_amount"].to_numpy(np.float64),
    )
    states = states_before(frame, int(batch.seconds.min()))
    model = load_model(settings, "models:/fraud-risk@champion")
    built: dict[str, dict[str, Scorer]] = {}
    for mode, serving in (
        ("no reason codes", ServingSettings(reason_codes=0)),
        ("reason codes of alerts", ServingSettings(reason_codes_for="flagged")),
    ):
        built[mode] = {"no policy": Scorer(model, states, serving)}
        for name, rules in (("thresholds only", 0), ("50 rules", 50)):
            metrics = policy_metrics(CollectorRegistry())
            live = LivePolicy(FixedVersion(policy_yaml(rules)), EPOCH, metrics=metrics)
            live.refresh()
            built[mode][name] = Scorer(model, states, serving, policy=live)
    rng = np.random.default_rng(0)
    fields = {
        "channel": rng.choice(CHANNELS, len(batch)).tolist(),
        "country": rng.choice(COUNTRIES, len(batch)).tolist(),
    }
    return built, batch, fields


def time_single(
    built: dict[str, Scorer], batch: TransactionBatch, fields: dict[str, list[str]], n: int
) -> dict[str, list[float]]:
    """Microseconds per one-transaction ``score`` of each scorer, interleaved."""
    timings: dict[str, list[float]] = {name: [] for name in built}
    clock = time.perf_counter_ns
    rows = [np.array([i % len(batch)]) for i in range(n + 500)]
    gc.collect()
    for k, row in enumerate(rows):
        one = batch.take(row)
        extra = {name: [values[int(row[0])]] for name, values in fields.items()}
        for name, scorer in built.items():
            start = clock()
            scorer.score(one, extra)
            if k >= 500:  # the first ones warm up
                timings[name].append((clock() - start) / 1000)
    return timings


def time_batches(
    built: dict[str, Scorer],
    batch: TransactionBatch,
    fields: dict[str, list[str]],
    size: int,
    repeats: int,
) -> dict[str, float]:
    """Best µs per transaction of each scorer on batches of ``size``."""
    part = batch.take(np.arange(min(size, len(batch))))
    extra = {name: values[: len(part)] for name, values in fields.items()}
    best = {name: float("inf") for name in built}
    for _ in range(repeats):
        for name, scorer in built.items():
            start = time.perf_counter()
            scorer.score(part, extra)
            best[name] = min(best[name], (time.perf_counter() - start) / len(part) * 1e6)
    return best


def single_table(mode: str, timings: dict[str, list[float]]) -> Table:
    calls = len(next(iter(timings.values())))
    table = Table(title=f"Scorer.score, one transaction per call, {mode} ({calls:,} calls, µs)")
    for column in ("scorer", "mean", "p50", "p90", "p99", "p99.9"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for name, values in timings.items():
        cells = [statistics.fmean(values), *(np.percentile(values, q) for q in (50, 90, 99, 99.9))]
        table.add_row(name, *(f"{v:.1f}" for v in cells))
    p99 = {name: float(np.percentile(values, 99)) for name, values in timings.items()}
    added = p99["50 rules"] - p99["thresholds only"]
    plain = p99["thresholds only"] - p99["no policy"]
    verdict = "[green]within[/]" if added <= TARGET_US else "[red]above[/]"
    table.caption = (
        f"50 rules add {added:.1f} µs at p99 beside the same scorer with no rules — {verdict}"
        f" the {TARGET_US:g} µs target; a policy of thresholds only adds {plain:.1f} µs"
    )
    return table


def batch_table(size: str, best: dict[str, float]) -> Table:
    table = Table(title=f"Scorer.score, batches of {size} (best run, µs per transaction)")
    table.add_column("scorer")
    table.add_column("µs/transaction", justify="right")
    table.add_column("added", justify="right")
    for name, value in best.items():
        table.add_row(name, f"{value:.2f}", f"{value - best['no policy']:+.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    console = Console()
    cpus = len(os.sched_getaffinity(0))
    console.print(f"Python {platform.python_version()}, {cpus} CPU(s) available")
    with tempfile.TemporaryDirectory(prefix="policy-live-") as home:
        built, batch, fields = scorers(Path(home))
        console.print(f"{len(batch):,} transactions to score (model trained on the days before)")
        for mode, three in built.items():
            console.print(single_table(mode, time_single(three, batch, fields, args.transactions)))
            best = time_batches(three, batch, fields, args.batch, args.repeats)
            console.print(batch_table(f"{args.batch:,}, {mode}", best))


if __name__ == "__main__":
    main()
