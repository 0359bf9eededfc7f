"""Serving latency: our KServe scorer beside a stock MLServer + feature-lookup hop, same run.

Both systems answer the same single-transaction V2 requests — real transactions of the lake's
last week, so the online store's entity state is read as in production — from the open-loop
load generator of ``loadgen.py`` (latency from the scheduled send time, no coordinated
omission), one system at a time on this machine, each started fresh and stopped after:

* **ours** — ``python -m serving --workers N`` (KServe ``ModelServer`` with N worker processes,
  one per core by default; the lean V2 route; features computed in-process from the Feast
  online store's entity state, calibrated XGBoost, decision, reason codes for flagged ones);
* **baseline** — MLServer + ``mlserver-xgboost`` (own venv, from PyPI) serving the same booster,
  behind ``baseline_mlserver/hop.py`` (FastAPI: Feast ``get_online_features`` → the same 19
  features → MLServer V2 over HTTP → uncalibrated probability).

Per system: a fixed-rate run at the target rate, then a rate ladder (x1.25 steps) giving the
highest offered rate whose p99 stays within a bound with no errors — the "throughput at equal
p99", with the same bounds for both (10 ms, the target's p99, and 50 ms, near saturation).
Rounds alternate the order (ours→baseline, baseline→ours). Every run records the server CPU
per request and how many cores other processes took meanwhile (a shared machine's noise).
Targets (issue #5): p50 <= 2 ms and p99 <= 10 ms at 300 rps; >= 1.5x the baseline's throughput.

Needs a FRAUDRISK_HOME with a lake, a champion model and a materialised online store (``make
demo`` builds them); writes only under ``--work`` (default ``HOME/bench``) and the MLServer venv
(``--mlserver-venv``, default ``HOME/venvs/mlserver``, created once with pip).

Usage:
    python benchmarks/serving_latency.py --home .fraudrisk --out docs/serving-benchmark.md
    python benchmarks/serving_latency.py --quick            # smoke run, short durations
    python benchmarks/serving_latency.py --only ours        # no baseline, no pip install
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from baseline_mlserver.launch import (
    MLSERVER_PINS,
    BaselinePorts,
    baseline_commands,
    ensure_venv,
    prepare_repository,
)
from fraudrisk.vocab import APPROVE, MODEL_NAME
from loadgen import Command, Contention, LoadPlan, LoadResult, ServerGroup, lake_bodies, run_load

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_RATE, P50_TARGET_MS, P99_TARGET_MS, RATIO_TARGET = 300.0, 2.0, 10.0, 1.5
console = Console(stderr=True)
#: In the ``--out`` file, what follows this line (hand-written analysis) survives a new run.
KEEP_MARKER = "<!-- kept by --out: hand-written notes below -->"


@dataclass(frozen=True)
class Config:
    """Durations and bounds of one benchmark run."""

    rate: float = TARGET_RATE
    duration_s: float = 30.0
    warmup_s: float = 5.0
    probe_s: float = 8.0
    probe_warmup_s: float = 2.0
    ladder_start: float = 100.0
    ladder_min: float = 25.0
    ladder_factor: float = 1.25
    ladder_max: float = 5000.0
    p99_bound_ms: float = P99_TARGET_MS
    loose_bound_ms: float = 50.0
    rounds: int = 2
    quiet_wait_s: float = 20.0
    workers: int = os.cpu_count() or 1  # our server's worker processes: one per core
    noise_cores: float = 0.5  # a run during which other processes took more is repeated
    noise_retries: int = 2

    def fixed_plan(self) -> LoadPlan:
        """The run at the target rate."""
        return LoadPlan(self.rate, self.duration_s, self.warmup_s)

    def probe_plan(self, rate: float) -> LoadPlan:
        """One step of the rate ladder."""
        return LoadPlan(rate, self.probe_s, self.probe_warmup_s)


QUICK = Config(
    duration_s=5.0,
    warmup_s=2.0,
    probe_s=2.5,
    probe_warmup_s=1.0,
    ladder_factor=1.5,
    rounds=1,
    quiet_wait_s=10.0,
    noise_retries=1,
)


@dataclass(frozen=True)
class System:
    """A system under test: its processes (start order) and the URL the load hits."""

    name: str
    commands: list[Command]
    infer_url: str


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_state(home: Path) -> list[str]:
    """What the benchmark needs and ``home`` lacks (empty when it is all there)."""
    from fraudrisk.config import Settings
    from fraudrisk.io.lake import Lake

    settings = Settings(home=home)
    problems = []
    try:
        days = Lake.open(settings.lake_uri, settings.lake).days()
    except OSError:
        days = []
    if not days:
        problems.append(f"no transactions in the lake {settings.lake_uri}")
    repo, sqlite = settings.feast_repo_path, settings.feast.online_store == "sqlite"
    if not (repo / "registry.db").exists() or (sqlite and not (repo / "online.db").exists()):
        problems.append(f"no materialised Feast online store in {repo}")
    if not settings.mlflow.tracking_uri and not (home / "mlflow.db").exists():
        problems.append(f"no MLflow registry {home / 'mlflow.db'}")
    elif not _champion_exists(settings):
        problems.append(f"{settings.serving.model_uri} is not registered")
    return problems


def _champion_exists(settings: Any) -> bool:
    from fraudrisk.registry.versions import get_alias_version

    alias = settings.serving.model_uri.partition("@")[2]
    return not alias or get_alias_version(settings, alias) is not None


def ours(home: Path, extra_env: dict[str, str], workers: int) -> System:
    """Our scorer: ``python -m serving --workers N`` on a free port (``extra_env`` added)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}"
    argv = [sys.executable, "-m", "serving", "--http_port", str(port), "--workers", str(workers)]
    env = {"FRAUDRISK_HOME": str(home), **extra_env}
    return System("ours", [Command(argv, env, f"{url}/ready", REPO_ROOT)], f"{url}/infer")


def baseline(home: Path, work: Path, venv: Path, model_uri: str) -> System:
    """MLServer (own venv) behind the hop, the booster exported into ``work/mlserver-repo``."""
    ports = BaselinePorts(hop=free_port(), mlserver=free_port(), grpc=free_port())
    with console.status(f"MLServer venv {venv} ({', '.join(MLSERVER_PINS)})"):
        mlserver = ensure_venv(venv, sys.executable)
    repo = work / "mlserver-repo"
    features = prepare_repository(repo, ports, model_uri, home)
    commands = [
        Command(argv, {"FRAUDRISK_HOME": str(home), **env}, ready, repo)
        for argv, env, ready in baseline_commands(mlserver, repo, ports, features)
    ]
    hop_url = f"http://127.0.0.1:{ports.hop}/v2/models/{MODEL_NAME}/infer"
    return System("baseline", commands, hop_url)


def holds(summary: dict[str, float], bound_ms: float) -> bool:
    """A run holds a bound: p99 within it, no errors, the offered rate achieved."""
    return (
        summary["errors"] == 0
        and summary["p99_ms"] <= bound_ms
        and summary["achieved_rps"] >= 0.95 * summary["rate"]
    )


def wait_quiet(pids: list[int], max_wait_s: float, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait_s``) until other processes use < ``threshold`` cores for 1 s."""
    deadline, other = time.monotonic() + max_wait_s, float("nan")
    while True:
        with Contention(pids) as contention:
            time.sleep(1.0)
        other = contention.other_cores
        if not other >= threshold or time.monotonic() >= deadline:
            return other


def step(
    url: str, bodies: list[bytes], plan: LoadPlan, pids: list[int], config: Config
) -> LoadResult:
    """One measured run on as quiet a machine as it gets; its ``other_cores`` recorded.

    A run during which other processes took more than ``config.noise_cores`` is repeated (at
    most ``config.noise_retries`` times) and the least disturbed one is kept: the benchmark
    measures the systems, not the neighbours' jobs, and both systems get the same treatment.
    """
    runs: list[LoadResult] = []
    for _ in range(1 + config.noise_retries):
        wait_quiet(pids, config.quiet_wait_s)
        with Contention(pids) as contention:
            result = run_load(url, bodies, plan)
        result.other_cores = contention.other_cores
        result.server_cpu_ms = contention.server_cpu_s * 1e3 / plan.total
        runs.append(result)
        if not result.other_cores > config.noise_cores:
            break
        console.print(f"  (other processes took {result.other_cores:.2f} cores: run again)")
    return min(runs, key=lambda r: r.other_cores if r.other_cores == r.other_cores else 0.0)


class Ladder:
    """Offered rates probed against both p99 bounds; each rate's attempts kept.

    Up x``ladder_factor`` from ``ladder_start`` until a rate fails the loose bound in two
    attempts; a rate failing the tight bound gets a second attempt until the tight bound has
    failed twice at one rate (a shared machine's blip does not end the search). When no rate
    held the tight bound, rates below the start are probed down to ``ladder_min``.
    """

    def __init__(self, url: str, bodies: list[bytes], config: Config, pids: list[int]) -> None:
        """Bind the ladder to a running system."""
        self.url, self.bodies, self.config, self.pids = url, bodies, config, pids
        self.points: list[dict[str, float]] = []

    def attempt(self, rate: float) -> dict[str, float]:
        """One probe run at ``rate``; its summary is recorded."""
        result = step(self.url, self.bodies, self.config.probe_plan(rate), self.pids, self.config)
        summary = result.summary()
        self.points.append(summary)
        console.print(
            f"  {rate:7.0f} rps: p50 {summary['p50_ms']:6.2f} ms, p99 {summary['p99_ms']:8.2f} ms,"
            f" errors {summary['errors']:.0f}, other load {result.other_cores:.2f} cores"
        )
        return summary

    def probe(self, rate: float, retry_tight: bool) -> tuple[bool, bool]:
        """``(holds tight, holds loose)`` at ``rate`` after one or two attempts."""
        tight, loose = self.config.p99_bound_ms, self.config.loose_bound_ms
        first = self.attempt(rate)
        if holds(first, tight) or (not retry_tight and holds(first, loose)):
            return holds(first, tight), True
        second = self.attempt(rate)
        return holds(second, tight), holds(first, loose) or holds(second, loose)

    def run(self) -> list[dict[str, float]]:
        """Climb (then, when nothing held the tight bound, descend); every attempt by rate."""
        config, tight_open, any_tight = self.config, True, False
        rate = config.ladder_start
        while rate <= config.ladder_max:
            tight, loose = self.probe(rate, retry_tight=tight_open)
            tight_open, any_tight = tight_open and tight, any_tight or tight
            if not loose:
                break
            rate = round(rate * config.ladder_factor)
        rate = config.ladder_start
        while not any_tight and rate / config.ladder_factor >= config.ladder_min:
            rate = round(rate / config.ladder_factor)
            any_tight = self.probe(rate, retry_tight=True)[0]
        return sorted(self.points, key=lambda p: p["rate"])


def measure(system: System, bodies: list[bytes], config: Config, logs: Path, tag: str) -> Measured:
    """Start ``system``, run the fixed rate then the ladder, stop it."""
    log = logs / f"{system.name}-{tag}.log"
    console.print(f"[bold]{system.name}[/] ({tag}): starting, log {log}")
    with ServerGroup(system.commands, log) as group:
        fixed = step(system.infer_url, bodies, config.fixed_plan(), group.pids, config)
        summary = fixed.summary()
        console.print(
            f"  {config.rate:.0f} rps fixed: p50 {summary['p50_ms']:.2f} ms, p99 "
            f"{summary['p99_ms']:.2f} ms, errors {summary['errors']:.0f}, "
            f"other load {fixed.other_cores:.2f} cores"
        )
        curve = Ladder(system.infer_url, bodies, config, group.pids).run()
    return Measured(system.name, fixed, curve, fixed.other_cores)


def run_rounds(
    systems: list[System], bodies: list[bytes], config: Config, logs: Path
) -> dict[str, list[Measured]]:
    """Every system once per round, the order reversed every other round."""
    results: dict[str, list[Measured]] = {s.name: [] for s in systems}
    for index in range(config.rounds):
        order = systems if index % 2 == 0 else systems[::-1]
        for system in order:
            results[system.name].append(measure(system, bodies, config, logs, f"r{index + 1}"))
    return results


@dataclass
class Measured:
    """One system in one round: the fixed-rate run, its ladder, the machine's other load."""

    system: str
    fixed: LoadResult
    curve: list[dict[str, float]]
    other_cores: float


# ------------------------------------------------------------------------ where time goes
def stage_times(settings: Any, bodies: list[bytes]) -> dict[str, np.ndarray] | str:
    """Our scorer's stages timed in-process per single-transaction request (thread CPU s).

    The stages as the lean V2 route runs them; the last row is the whole ASGI app (KServe's
    ModelServer app behind :class:`~fraudrisk.serving.asgi.ScorerApp`) without the network.
    Returns the timings by stage, or why they could not be taken.
    """
    try:
        with _argv_alone():  # KServe parses sys.argv on import: --work would read as --workers
            import kserve.model_server  # noqa: F401
        from fraudrisk.scoring.decisions import decide, reason_codes, thresholds_of
        from fraudrisk.scoring.model import load_model
        from fraudrisk.scoring.state_reader import FeastStateReader
        from fraudrisk.scoring.vectors import single_features
        from fraudrisk.serving.asgi import decode_v2
        from fraudrisk.serving.wire_protocol import parse_v2

        model = load_model(settings, settings.serving.model_uri)
        reader = FeastStateReader.from_settings(settings)
        thresholds = thresholds_of(model.card, settings.serving)
    except Exception as error:  # the inference API moved: report, do not fail the run
        return f"{type(error).__name__}: {error}"
    names, top, explain = model.feature_names, settings.serving.reason_codes, model.contributions

    def decide_and_explain(scored: tuple[np.ndarray, np.ndarray]) -> Any:
        matrix, risk = scored  # as served: only review and decline are explained
        flagged = decide(risk, *thresholds) != APPROVE
        if explain is None or not flagged.any():
            return flagged
        return reason_codes(explain(matrix[flagged]), matrix[flagged], names, top)

    steps: dict[str, Callable[[Any], Any]] = {
        "V2 decode (lean route) + validate": lambda body: parse_v2(
            decode_v2(body, MODEL_NAME).inputs  # type: ignore[union-attr]
        ),
        "entity state read (online store)": lambda b: (
            b,
            reader.read(b.customer_id.tolist(), b.terminal_id.tolist()),
        ),
        "19 features (single-transaction path)": lambda bs: single_features(
            bs[0], bs[1].customers, bs[1].terminals, names
        ),
        "trees (numpy walker) + calibration": lambda m: (m, model.probability(m)),
        "decision + reason codes (flagged only)": decide_and_explain,
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for body in bodies:
        value: Any = body
        for name, stage in steps.items():
            began = time.thread_time()  # CPU time: immune to other processes' preemption
            value = stage(value)
            times[name].append(time.thread_time() - began)
    skip = min(200, len(bodies) // 10)  # first calls warm caches
    stages = {name: np.array(values[skip:]) for name, values in times.items()}
    whole = app_times(settings, bodies)
    if whole is not None:
        stages["whole app, in-process (ScorerApp + KServe, no network)"] = whole[skip:]
    return stages


@contextlib.contextmanager
def _argv_alone() -> Iterator[None]:
    """``sys.argv`` without this script's options for a while."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def app_times(settings: Any, bodies: list[bytes]) -> np.ndarray | None:
    """Thread CPU time of each V2 request through the served ASGI app, called in-process."""
    import asyncio

    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    from fraudrisk.serving.asgi import ScorerApp
    from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec
    from fraudrisk.serving.server import build_server

    model = FraudRiskModel(ServiceSpec.from_settings(settings), settings)
    if not model.load():
        return None
    server = build_server(model, http_port=0)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 0
    )
    rest.create_application()
    app = ScorerApp(server.dataplane)

    async def call(body: bytes) -> float:
        scope = {
            "type": "http",
            "method": "POST",
            "path": f"/v2/models/{MODEL_NAME}/infer",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
            "http_version": "1.1",
            "scheme": "http",
            "root_path": "",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        began = time.thread_time()
        await app(scope, receive, send)
        return time.thread_time() - began

    async def run_all() -> list[float]:
        return [await call(body) for body in bodies]

    return np.array(asyncio.run(run_all()))


# ---------------------------------------------------------------------------------- report
def pooled(rounds: list[Measured]) -> dict[str, float]:
    """Fixed-rate statistics over every round's measured requests."""
    ms = np.concatenate([m.fixed.ok for m in rounds]) * 1e3
    summaries = [m.fixed.summary() for m in rounds]
    p50, p90, p99 = np.percentile(ms, [50, 90, 99]) if len(ms) else (np.nan,) * 3
    return {
        "achieved": float(np.mean([s["achieved_rps"] for s in summaries])),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(ms.max()) if len(ms) else np.nan,
        "errors": sum(s["errors"] for s in summaries),
        "measured": sum(s["measured"] for s in summaries),
        "client_cpu": float(np.mean([s["client_cpu"] for s in summaries])),
        "server_cpu_ms": float(np.mean([s["server_cpu_ms"] for s in summaries])),
        "other_cores": float(np.mean([s["other_cores"] for s in summaries])),
    }


def capacity(curve: list[dict[str, float]], bound_ms: float) -> float:
    """The highest probed rate at which an attempt held ``bound_ms`` (0 when none did).

    Noise from other processes only ever breaks a bound, so one attempt holding shows the
    system can; a saturated system breaks it whatever the luck.
    """
    return max((p["rate"] for p in curve if holds(p, bound_ms)), default=0.0)


def machine_line(results: dict[str, list[Measured]]) -> str:
    """Date, cores, CPU model, OS, Python and the other processes' load during the runs."""
    import datetime as dt
    import platform

    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    other = [m.other_cores for ms in results.values() for m in ms]
    noise = f"{np.nanmean(other):.2f}" if other and not np.all(np.isnan(other)) else "n/a"
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} cores · {model} · "
        f"{platform.system()} {platform.release()} · Python {platform.python_version()} · "
        f"other processes used {noise} cores on average during the runs (shared machine) · "
        f"load average at the end (1 / 5 / 15 min): {load}"
    )


def _caps(rounds: list[Measured], bound_ms: float) -> tuple[float, str]:
    """Median capacity over the rounds at ``bound_ms``, and the per-round values."""
    caps = [capacity(m.curve, bound_ms) for m in rounds]
    return float(np.median(caps)), ", ".join(f"{c:.0f}" for c in caps)


def _with_rounds(pooled_value: float, rounds: list[Measured], key: str) -> str:
    """A pooled statistic, followed by each round's own value when there are several."""
    if len(rounds) == 1:
        return f"{pooled_value:.2f}"
    each = ", ".join(f"{m.fixed.summary()[key]:.2f}" for m in rounds)
    return f"{pooled_value:.2f} ({each})"


def fixed_rows(results: dict[str, list[Measured]], config: Config) -> list[str]:
    """The main table: fixed-rate percentiles and the equal-p99 capacities per system."""
    bounds = (config.p99_bound_ms, config.loose_bound_ms)
    head = (
        "| system | offered rps | achieved rps | p50 ms (rounds) | p90 ms | p99 ms (rounds) "
        "| max ms | errors "
        "| server CPU ms / request | other load (cores) | "
        + " | ".join(f"max rps at p99 ≤ {b:g} ms (rounds)" for b in bounds)
        + " |"
    )
    rows = [head, "|" + "---|" * 12]
    for name, rounds in results.items():
        s = pooled(rounds)
        caps = " | ".join("{:.0f} ({})".format(*_caps(rounds, b)) for b in bounds)
        p50, p99 = (_with_rounds(s[k], rounds, f"{k}_ms") for k in ("p50", "p99"))
        rows.append(
            f"| {label(name, config)} | {config.rate:.0f} | {s['achieved']:.1f} | {p50} | "
            f"{s['p90']:.2f} | {p99} | {s['max']:.1f} | {s['errors']:.0f} "
            f"of {s['measured']:.0f} | {s['server_cpu_ms']:.2f} | {s['other_cores']:.2f} "
            f"| {caps} |"
        )
    return rows


def target_rows(results: dict[str, list[Measured]], config: Config) -> list[str]:
    """Each target of issue #5 with the measured value and whether it is met."""
    rows = ["| target (issue #5) | measured | met |", "|---|---|---|"]
    if "ours" in results:
        s = pooled(results["ours"])
        for label, value, limit in (
            ("p50", s["p50"], P50_TARGET_MS),
            ("p99", s["p99"], P99_TARGET_MS),
        ):
            rows.append(
                f"| ours: {label} ≤ {limit:g} ms at {config.rate:.0f} rps | "
                f"{value:.2f} ms | {_met(value <= limit and s['errors'] == 0)} |"
            )
    if {"ours", "baseline"} <= results.keys():
        for bound, what in ((config.p99_bound_ms, "target"), (config.loose_bound_ms, "info")):
            ours_cap = _caps(results["ours"], bound)[0]
            base_cap = _caps(results["baseline"], bound)[0]
            ratio = f"{ours_cap / base_cap:.2f}×" if base_cap else "n/a (baseline held no rate)"
            met = ours_cap >= RATIO_TARGET * base_cap and ours_cap > 0
            rows.append(
                f"| ours ≥ {RATIO_TARGET:g}× the baseline's throughput at equal p99 "
                f"(≤ {bound:g} ms{'' if what == 'target' else ', near saturation'}) "
                f"| {ratio} ({ours_cap:.0f} vs {base_cap:.0f} rps) "
                f"| {_met(met) if what == 'target' else ('yes' if met else 'no') + ' (info)'} |"
            )
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def curve_rows(results: dict[str, list[Measured]], bound_ms: float) -> list[str]:
    """p50 / p99 by offered rate, one column per system and round (every attempt)."""
    columns = [(name, i, m) for name, ms in results.items() for i, m in enumerate(ms, 1)]
    rates = sorted({p["rate"] for _, _, m in columns for p in m.curve})
    rows = [
        "| offered rps | " + " | ".join(f"{n} r{i} p50 / p99 ms" for n, i, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for rate in rates:
        cells = [
            " · ".join(_curve_cell(p, bound_ms) for p in m.curve if p["rate"] == rate) or "—"
            for _, _, m in columns
        ]
        rows.append(f"| {rate:.0f} | " + " | ".join(cells) + " |")
    return rows


def _curve_cell(point: dict[str, float], bound_ms: float) -> str:
    text = f"{point['p50_ms']:.1f} / {point['p99_ms']:.1f}"
    if point["errors"]:
        text += f" ({point['errors']:.0f} err)"
    return text if holds(point, bound_ms) else f"~~{text}~~"


def stage_rows(stages: dict[str, np.ndarray] | str | None, results: dict[str, Any]) -> list[str]:
    """Where our time goes: in-process stages (CPU), the server process, the app, end to end."""
    if stages is None:
        return []
    if isinstance(stages, str):
        return [f"Stage timing unavailable: {stages}"]
    rows = [
        "| ours, one transaction | p50 ms | p99 ms | measured as |",
        "|---|---|---|---|",
    ]
    parts = {name: v for name, v in stages.items() if not name.startswith("whole app")}
    total = np.sum(list(parts.values()), axis=0)
    whole = [(name, v) for name, v in stages.items() if name not in parts]
    for name, values in [*parts.items(), ("sum of the stages", total), *whole]:
        p50, p99 = np.percentile(values * 1e3, [50, 99])
        rows.append(f"| {name} | {p50:.3f} | {p99:.3f} | thread CPU time, in-process |")
    if "ours" in results:
        s = pooled(results["ours"])
        rows.append(
            f"| server processes per request at {TARGET_RATE:.0f} rps | {s['server_cpu_ms']:.3f} "
            "(mean) | — | CPU time of the server and its workers ÷ requests |"
        )
    if "ours" in results:
        rows.append(
            f"| end to end at {TARGET_RATE:.0f} rps | {s['p50']:.3f} | {s['p99']:.3f} "
            "| wall time at the client |"
        )
    return rows


def label(name: str, config: Config) -> str:
    """A system's name in the tables."""
    if name == "ours":
        return (
            f"ours: KServe ModelServer, {config.workers} worker(s), features in-process, "
            "calibrated + decision + reasons for flagged"
        )
    return "baseline: hop (FastAPI, Feast get_online_features) → MLServer + mlserver-xgboost"


def notes(results: dict[str, list[Measured]], config: Config, n_bodies: int) -> list[str]:
    """How it was measured and what differs between the systems."""
    cpu = {name: pooled(ms)["client_cpu"] for name, ms in results.items()}
    return [
        f"- Load: single-transaction V2 requests built from {n_bodies:,} real transactions of "
        "the lake's last 7 days (seeded order, the same for both), open loop over ≤ 64 "
        "keep-alive connections (aiohttp), latency from the scheduled send time to the end of "
        f"the response; fixed rate {config.rate:.0f} rps for {config.duration_s:g} s after "
        f"{config.warmup_s:g} s of warm-up; {config.rounds} round(s), order alternating, "
        "latencies pooled.",
        f"- Ladder: from {config.ladder_start:g} rps ×{config.ladder_factor:g} per step "
        f"({config.probe_s:g} s each after {config.probe_warmup_s:g} s warm-up) until a rate "
        f"fails p99 ≤ {config.loose_bound_ms:g} ms twice; a rate failing "
        f"p99 ≤ {config.p99_bound_ms:g} ms is tried twice until that bound has failed twice at "
        "one rate; when no rate held it, rates below the start go down. A run holds a bound when "
        "its p99 is within it, with no errors and ≥ 95 % of the offered rate achieved; the "
        "capacity at a bound is the highest rate at which a run held it (struck through: "
        f"did not hold {config.p99_bound_ms:g} ms). Each system waits (≤ "
        f"{config.quiet_wait_s:g} s) for the other processes to calm down before every run, "
        f"and a run during which they took more than {config.noise_cores:g} cores is repeated "
        f"(≤ {config.noise_retries} times, the least disturbed one kept).",
        "- Same booster: the champion's XGBoost, exported with `save_model` into an MLServer "
        f"repository ({', '.join(MLSERVER_PINS)}, own venv). The baseline answers the "
        "**uncalibrated** booster probability only — no calibration, decision or reason codes; "
        "ours does strictly more per request. Both compute the same 19 features from the same "
        "online entity state.",
        "- Baseline configuration (its best stock knobs): MLServer `parallel_workers` 0 "
        "(inference in the server process), metrics server off, `debug` off, "
        "`OMP_NUM_THREADS=1`; hop: uvicorn, access log off; two processes (hop + MLServer), "
        f"so it can use both cores. Ours: `python -m serving --workers {config.workers}` — "
        f"KServe's ModelServer with {config.workers} worker process(es) on one port, each "
        "with its own model copy, the lean V2 route, per-request log lines off (as shipped); "
        "reason codes for transactions sent to review or declined (the default).",
        "- The load generator shares the 2 cores: "
        + ", ".join(f"{n} run {100 * c:.0f} % of a core" for n, c in cpu.items())
        + f" at {config.rate:.0f} rps.",
    ]


def render_report(
    results: dict[str, list[Measured]],
    config: Config,
    n_bodies: int,
    stages: dict[str, np.ndarray] | str | None,
    ours_env: dict[str, str] | None = None,
) -> str:
    """The markdown report."""
    parts = [
        "# Serving latency: fraudrisk scorer vs stock MLServer + feature-lookup hop",
        "",
        machine_line(results),
        "",
        *fixed_rows(results, config),
        "",
        *target_rows(results, config),
        "",
        "## p50 / p99 by offered rate (the ladder)",
        "",
        *curve_rows(results, config.p99_bound_ms),
    ]
    if stages is not None:
        parts += ["", "## Where our time goes", "", *stage_rows(stages, results)]
    parts += ["", "## Notes", "", *notes(results, config, n_bodies)]
    if ours_env:
        settings = ", ".join(f"`{k}={v}`" for k, v in ours_env.items())
        parts.append(f"- Ours ran with {settings} (not the default settings).")
    parts.append("")
    return "\n".join(parts)


@dataclass
class Args:
    """Parsed command line."""

    home: Path
    work: Path
    venv: Path
    config: Config
    only: str
    out: Path | None
    breakdown: bool
    ours_env: dict[str, str] = field(default_factory=dict)


def parse_args() -> Args:
    """The command line, with durations from ``--quick`` and overrides."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    home = os.environ.get("FRAUDRISK_HOME", ".fraudrisk")
    parser.add_argument("--home", type=Path, default=Path(home), help="FRAUDRISK_HOME to serve.")
    parser.add_argument("--work", type=Path, help="Writable work dir (default HOME/bench).")
    parser.add_argument("--mlserver-venv", type=Path, help="Default HOME/venvs/mlserver.")
    parser.add_argument("--quick", action="store_true", help="Short durations (smoke run).")
    parser.add_argument("--only", choices=["both", "ours", "baseline"], default="both")
    parser.add_argument("--rounds", type=int, help="Rounds (default 2, quick 1).")
    parser.add_argument("--duration", type=float, help="Seconds of the fixed-rate run.")
    parser.add_argument("--p99-bound", type=float, help="p99 bound of the ladder (ms).")
    parser.add_argument(
        "--workers", type=int, help="Our server's worker processes (default: one per core)."
    )
    parser.add_argument("--out", type=Path, help="Also write the report here (markdown).")
    parser.add_argument("--no-breakdown", action="store_true", help="Skip the stage timing.")
    parser.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Extra environment of our server, e.g. FRAUDRISK_SERVING__REASON_CODES_FOR=flagged.",
    )
    args = parser.parse_args()
    config = QUICK if args.quick else Config()
    overrides = {
        "rounds": args.rounds,
        "duration_s": args.duration,
        "p99_bound_ms": args.p99_bound,
        "workers": args.workers,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    home = args.home.resolve()
    return Args(
        home,
        (args.work or home / "bench").resolve(),
        (args.mlserver_venv or home / "venvs" / "mlserver").resolve(),
        config,
        args.only,
        args.out,
        not args.no_breakdown,
        dict(item.split("=", 1) for item in args.ours_env),
    )


def main() -> None:
    """Check the state, measure, print (and write) the report."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    args = parse_args()
    problems = missing_state(args.home)
    if problems:
        console.print(
            f"[red]FRAUDRISK_HOME={args.home} is not ready to serve:[/] " + "; ".join(problems)
        )
        console.print(
            "build it with `make demo` (simulates, builds the features, materialises "
            "the online store, trains and registers the champion), or pass --home"
        )
        raise SystemExit(2)
    from fraudrisk.config import Settings

    settings = Settings(home=args.home)
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bodies = lake_bodies(settings.lake_uri)
    systems = []
    if args.only in ("both", "ours"):
        systems.append(ours(args.home, args.ours_env, args.config.workers))
    if args.only in ("both", "baseline"):
        systems.append(baseline(args.home, args.work, args.venv, settings.serving.model_uri))
    results = run_rounds(systems, bodies, args.config, logs)
    stages = (
        stage_times(settings, bodies[:2000]) if args.breakdown and args.only != "baseline" else None
    )
    text = render_report(results, args.config, len(bodies), stages, args.ours_env)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        kept = args.out.read_text().partition(KEEP_MARKER)[2] if args.out.exists() else ""
        args.out.write_text(text + (f"\n{KEEP_MARKER}{kept}" if kept else ""))
        console.print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
