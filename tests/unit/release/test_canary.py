"""The canary workflow: metrics → window → gates, and start/promote/rollback/watch.

Metrics come from the serving code's own ``ScorerMetrics`` in a private registry, exposed on a
loopback HTTP server, so a renamed metric or label fails here. The workflow runs on a copy of
the ``served`` registry (two passed versions, 1 = champion) and a copy of the local manifest.
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fraudrisk.config import CanarySettings, MlflowSettings, Settings, get_settings
from fraudrisk.registry.mlflow_io import mlflow_client
from fraudrisk.registry.versions import (
    CHAMPION,
    REJECTED,
    STATUS_TAG,
    get_alias_version,
)
from fraudrisk.release import canary
from fraudrisk.release import canary_judgement as canary_metrics
from fraudrisk.release.cluster import ClusterTarget, FileTarget, InferenceServicePatcher
from fraudrisk.serving import manifest as mf
from fraudrisk.serving.prometheus import scorer_metrics

ROOT = Path(__file__).resolve().parents[3]
LOCAL = ROOT / "manifests" / "local" / "inferenceservice.yaml"
GATES = CanarySettings()
SCORES = tuple(float(s) for s in np.random.default_rng(0).beta(1, 30, 100))
DECISIONS = ("approve",) * 90 + ("review",) * 6 + ("decline",) * 4
_KEEP_ALIVE: list[CollectorRegistry] = []  # scorer_metrics caches by id(registry)


# ------------------------------------------------------------------ synthetic service metrics


@dataclass(frozen=True)
class Traffic:
    """What one variant answered: one transaction per request, values cycled."""

    requests: int = 300
    latency_s: float = 0.002
    scores: tuple[float, ...] = SCORES
    decisions: tuple[str, ...] = DECISIONS
    errors: int = 0
    fallback: bool = False


def exposition(variants: dict[str, Traffic], process_start: float = 1000.0) -> str:
    """The /metrics text of a scorer that served ``variants``."""
    registry = CollectorRegistry()
    _KEEP_ALIVE.append(registry)
    metrics = scorer_metrics(registry)
    for name, t in variants.items():
        for i in range(t.requests):
            risk = np.array([t.scores[i % len(t.scores)]])
            decision = np.array([t.decisions[i % len(t.decisions)]])
            metrics.observe("fraud-risk", name, t.latency_s, risk, decision, t.fallback)
        for _ in range(t.errors):
            metrics.error("fraud-risk", name, "internal")
    start = f"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {process_start}\n"
    return generate_latest(registry).decode() + start


def window(
    champion: Traffic, candidate: Traffic, variant: str = "canary"
) -> canary_metrics.Snapshot:
    return canary_metrics.parse_metrics(exposition({"champion": champion, variant: candidate}))


@dataclass
class MetricsServer:
    """A loopback HTTP server answering ``/metrics`` with :attr:`text`."""

    text: str = ""
    url: str = ""
    hits: list[str] = field(default_factory=list)


@pytest.fixture()
def metrics_server() -> Iterator[MetricsServer]:
    state = MetricsServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            body = state.text.encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    # serve_forever polls its shutdown flag every poll_interval (0.5 s by default): shutdown()
    # at teardown would wait that long for each test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ measuring


def test_parse_keeps_the_variants_and_sums_other_labels() -> None:
    text = exposition({"champion": Traffic(requests=10), "canary": Traffic(requests=4, errors=2)})
    snapshot = canary_metrics.parse_metrics(text)
    assert snapshot.process_start == 1000.0
    champion, candidate = snapshot.variants["champion"], snapshot.variants["canary"]
    assert (champion.requests, candidate.requests, candidate.errors) == (10, 4, 2)
    assert champion.decisions == {"approve": 10}
    assert champion.latency[str(float("inf"))] == 10 and champion.latency["0.001"] == 0
    assert champion.latency["0.002"] == 10 and champion.scores[str(float("inf"))] == 10
    # a second pod of the same variant (as from a Prometheus /federate) adds up
    second_pod = text.replace('variant="canary"', 'pod="b",variant="canary"')
    twice = canary_metrics.parse_metrics(
        text
        + "\n".join(
            line for line in second_pod.splitlines() if 'pod="b"' in line and "_created" not in line
        )
        + "\n"
    )
    assert twice.variants["canary"].requests == 8
    # another model's series, shadow queue drops: not counted
    assert canary_metrics.parse_metrics(text, model="other").variants == {}
    skipped = text + (
        "# TYPE fraudrisk_request_errors_total counter\n"
        'fraudrisk_request_errors_total{kind="shadow_skipped",model="fraud-risk",'
        'variant="canary"} 7.0\n'
    )
    assert canary_metrics.parse_metrics(skipped).variants["canary"].errors == 2
    # a federated start time (labelled, one per pod) says nothing about one process
    federated = text.replace(
        "process_start_time_seconds 1000.0", 'process_start_time_seconds{pod="a"} 9'
    )
    assert canary_metrics.parse_metrics(federated).process_start is None


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    cumulative = {"0.001": 0.0, "0.002": 50.0, "0.005": 100.0, "inf": 100.0}
    assert canary_metrics.histogram_quantile(0.5, cumulative) == pytest.approx(0.002)
    assert canary_metrics.histogram_quantile(0.99, cumulative) == pytest.approx(
        0.002 + 0.003 * 49 / 50
    )
    assert canary_metrics.histogram_quantile(0.25, cumulative) == pytest.approx(0.0015)
    beyond = {"0.001": 10.0, "0.002": 10.0, "inf": 100.0}  # in +Inf: the highest finite bound
    assert canary_metrics.histogram_quantile(0.99, beyond) == 0.002
    assert canary_metrics.histogram_quantile(0.5, {"0.001": 0.0, "inf": 0.0}) is None
    assert canary_metrics.histogram_quantile(0.5, {}) is None


def test_psi_and_ks_of_identical_scaled_and_shifted_histograms() -> None:
    base = window(Traffic(), Traffic(requests=900)).variants
    same, scaled = base["champion"].scores, base["canary"].scores
    assert (
        canary_metrics.score_psi(same, same) == 0.0 and canary_metrics.score_ks(same, same) == 0.0
    )
    assert canary_metrics.score_psi(same, scaled) == pytest.approx(
        0.0, abs=1e-3
    )  # shares, not counts
    shifted_scores = tuple(min(1.0, s * 8) for s in SCORES)
    shifted = window(Traffic(), Traffic(scores=shifted_scores)).variants["canary"].scores
    assert canary_metrics.score_psi(same, shifted) > 1.0  # far beyond the 0.25 gate
    assert canary_metrics.score_ks(same, shifted) > 0.5
    assert canary_metrics.score_psi(same, {}) is None and canary_metrics.score_ks({}, same) is None


def test_window_subtracts_the_baseline() -> None:
    before = window(Traffic(requests=100), Traffic(requests=10))
    after = window(Traffic(requests=250), Traffic(requests=40, errors=3))
    since = after.since(before)
    assert since.variants["champion"].requests == 150
    assert since.variants["canary"].requests == 30 and since.variants["canary"].errors == 3
    assert since.variants["champion"].decisions == {
        "approve": 230 - 90,
        "review": 12 - 6,
        "decline": 8 - 4,
    }
    inf = str(float("inf"))
    assert since.variants["champion"].latency[inf] == 150
    assert after.since(None) == after
    restarted = canary_metrics.parse_metrics(exposition({"champion": Traffic(requests=5)}, 2000.0))
    assert restarted.since(before).variants["champion"].requests == 5  # a new server: from 0
    # a counter that went down is a reset even when the start time is not exposed
    lower = canary_metrics.VariantCounts(requests=5)
    assert lower.minus(canary_metrics.VariantCounts(requests=9)).requests == 5


# ------------------------------------------------------------------ judging


def test_gates_pass_on_equal_variants() -> None:
    evaluation = canary_metrics.evaluate(window(Traffic(), Traffic()), "canary", GATES)
    assert evaluation.verdict == "pass", evaluation.gates
    assert [c.verdict for c in evaluation.gates] == ["pass"] * 7
    assert evaluation.canary.p99_ms == pytest.approx(2.0 * 0.99 + 1.0 * 0.01, rel=1e-6)
    assert evaluation.canary.review_rate == pytest.approx(0.06, abs=0.01)
    assert evaluation.canary.fallback_rate == 0.0 and evaluation.breaches == []


@pytest.mark.parametrize(
    ("gate", "candidate"),
    [
        ("max_error_rate", Traffic(errors=10)),
        ("max_p99_latency_ms", Traffic(latency_s=0.2)),
        ("max_score_psi", Traffic(scores=tuple(min(1.0, s * 8) for s in SCORES))),
        (
            "max_review_rate_change",
            Traffic(decisions=("approve",) * 80 + ("review",) * 16 + ("decline",) * 4),
        ),
        (
            "max_decline_rate_change",
            Traffic(decisions=("approve",) * 84 + ("review",) * 6 + ("decline",) * 10),
        ),
        ("max_fallback_rate_change", Traffic(fallback=True)),
    ],
)
def test_each_gate_breaches_alone(gate: str, candidate: Traffic) -> None:
    evaluation = canary_metrics.evaluate(
        window(Traffic(), candidate, "challenger"), "challenger", GATES
    )
    breached = {c.gate for c in evaluation.gates if c.verdict == "breach"}
    assert breached == {gate}
    assert evaluation.verdict == "breach" and evaluation.breaches[0].startswith(f"{gate}=")
    # the same candidate passes once its gate is loosened (the breach is that gate's doing)
    loose = GATES.model_copy(update={gate: 1e6})
    assert (
        canary_metrics.evaluate(
            window(Traffic(), candidate, "challenger"), "challenger", loose
        ).verdict
        == "pass"
    )


def test_too_little_traffic_is_insufficient_not_a_breach() -> None:
    slow = Traffic(requests=50, latency_s=0.5, errors=40)
    evaluation = canary_metrics.evaluate(window(Traffic(), slow), "canary", GATES)
    assert evaluation.verdict == "insufficient" and evaluation.breaches == []
    assert {c.verdict for c in evaluation.gates} == {"insufficient"}
    enough = GATES.model_copy(update={"min_requests": 50})
    assert canary_metrics.evaluate(window(Traffic(), slow), "canary", enough).verdict == "breach"
    # a variant that answered nothing at all
    nothing = canary_metrics.evaluate(window(Traffic(), Traffic(requests=0)), "canary", GATES)
    assert nothing.verdict == "insufficient" and nothing.canary.p99_ms is None


def test_scrape_over_loopback(metrics_server: MetricsServer) -> None:
    metrics_server.text = exposition({"champion": Traffic(requests=3)})
    assert canary_metrics.scrape(metrics_server.url).variants["champion"].requests == 3
    assert metrics_server.hits == ["/metrics"]
    closed = metrics_server.url.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens
    with pytest.raises(canary_metrics.ServiceUnreachableError, match="not reachable at"):
        canary_metrics.scrape(closed, timeout_s=2)


# ------------------------------------------------------------------ the workflow


@pytest.fixture()
def home(served: Any, tmp_path: Path) -> Settings:
    """A copy of the served registry (champion = 1, 2 passed): promotions stay here."""
    settings = Settings(home=tmp_path / "home", mlflow=MlflowSettings())
    settings.home.mkdir()
    shutil.copy(served.settings.home / "mlflow.db", settings.home / "mlflow.db")
    return settings


@pytest.fixture()
def ws(home: Settings, tmp_path: Path, metrics_server: MetricsServer) -> canary.Workspace:
    path = tmp_path / "isvc.yaml"
    shutil.copy(LOCAL, path)
    metrics_server.text = exposition({"champion": Traffic(requests=40)})  # before the canary
    return canary.workspace(home, path, metrics_server.url, local=True)


def _plan(ws: canary.Workspace) -> mf.ServingPlan:
    return mf.plan_from_text(ws.target.read())


def _history(ws: canary.Workspace) -> list[dict[str, Any]]:
    lines = ws.state_path.with_name("canary-history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _serve(server: MetricsServer, champion: Traffic, candidate: Traffic) -> None:
    """The metrics after the canary ran: the champion's 40 earlier requests included."""
    server.text = exposition(
        {"champion": replace(champion, requests=champion.requests + 40), "canary": candidate}
    )


def test_start_rewrites_the_manifest_and_records_a_baseline(ws: canary.Workspace) -> None:
    change = canary.start(ws, 2, 30)
    plan = _plan(ws)
    assert [(r.model_uri, r.percent) for r in plan.routes] == [
        ("models:/fraud-risk@champion", 70),
        ("models:/fraud-risk/2", 30),
    ]
    assert change.before.candidate_uri is None and change.after == plan
    state = canary.load_state(ws.settings)
    assert state is not None and state.version == "2" and state.percent == 30
    assert state.baseline is not None and state.baseline.variants["champion"].requests == 40
    assert LOCAL.read_text() != ws.target.read()  # the committed file is never the target


def test_start_again_reweights_and_keeps_the_window(
    ws: canary.Workspace, metrics_server: MetricsServer
) -> None:
    first = canary.start(ws, 2, 30).state
    _serve(metrics_server, Traffic(requests=100), Traffic(requests=50))
    again = canary.start(ws, 2, 50).state
    assert first is not None and again is not None and again.percent == 50
    assert (again.started_at, again.baseline) == (first.started_at, first.baseline)
    assert _plan(ws).routes[1].percent == 50


@pytest.mark.parametrize(
    ("version", "setup", "message"),
    [
        (9, None, "has no version 9"),
        (1, None, "is the stable model"),
        (2, "reject", "rejected by the validation gate"),
    ],
)
def test_start_refuses(ws: canary.Workspace, version: int, setup: str | None, message: str) -> None:
    if setup == "reject":
        mlflow_client(ws.settings).set_model_version_tag("fraud-risk", "2", STATUS_TAG, REJECTED)
    before = ws.target.read()
    with pytest.raises(canary_metrics.CanaryError, match=message):
        canary.start(ws, version, 30)
    assert ws.target.read() == before and canary.load_state(ws.settings) is None


def test_start_needs_a_percent_except_in_shadow(ws: canary.Workspace) -> None:
    with pytest.raises(canary_metrics.CanaryError, match="needs --percent"):
        canary.start(ws, 2, None)
    with pytest.raises(canary_metrics.CanaryError, match="leave --percent out"):
        canary.start(ws, 2, 10, "shadow")
    canary.start(ws, 2, None, "shadow")
    plan = _plan(ws)
    assert plan.shadow_uri == "models:/fraud-risk/2" and plan.routes[0].percent == 100


def test_promote_when_the_gates_pass(ws: canary.Workspace, metrics_server: MetricsServer) -> None:
    canary.start(ws, 2, 30)
    _serve(metrics_server, Traffic(requests=400), Traffic(requests=250))
    change = canary.promote(ws)
    assert get_alias_version(ws.settings, CHAMPION) == "2"
    assert (change.champion_before, change.champion_after) == ("1", "2")
    assert [(r.model_uri, r.percent) for r in _plan(ws).routes] == [("models:/fraud-risk/2", 100)]
    assert canary.load_state(ws.settings) is None
    (record,) = _history(ws)
    assert (record["action"], record["version"], record["verdict"]) == ("promote", "2", "pass")
    with pytest.raises(canary_metrics.CanaryError, match="no canary running"):
        canary.promote(ws)


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (Traffic(requests=250, latency_s=0.2), "breach .*max_p99_latency_ms"),
        (Traffic(requests=20), "insufficient .*200 needed"),
    ],
)
def test_promote_refused_then_forced(
    ws: canary.Workspace, metrics_server: MetricsServer, candidate: Traffic, message: str
) -> None:
    canary.start(ws, 2, 30)
    _serve(metrics_server, Traffic(requests=400), candidate)
    started = ws.target.read()
    with pytest.raises(canary_metrics.CanaryError, match=message):
        canary.promote(ws)
    assert get_alias_version(ws.settings, CHAMPION) == "1" and ws.target.read() == started
    canary.promote(ws, force=True)
    assert get_alias_version(ws.settings, CHAMPION) == "2"
    assert _history(ws)[-1]["reason"] == "forced"


def test_promote_refused_by_the_registry(
    ws: canary.Workspace, metrics_server: MetricsServer
) -> None:
    canary.start(ws, 2, 30)
    mlflow_client(ws.settings).set_model_version_tag("fraud-risk", "2", STATUS_TAG, REJECTED)
    _serve(metrics_server, Traffic(requests=400), Traffic(requests=250))
    started = ws.target.read()
    with pytest.raises(canary_metrics.CanaryError, match="rejected"):
        canary.promote(ws)
    assert get_alias_version(ws.settings, CHAMPION) == "1" and ws.target.read() == started


def test_rollback_keeps_the_champion(ws: canary.Workspace) -> None:
    canary.start(ws, 2, 30)
    canary.rollback(ws, "review queue doubled")
    assert get_alias_version(ws.settings, CHAMPION) == "1"
    plan = _plan(ws)
    assert plan.candidate_uri is None
    assert [(r.model_uri, r.percent) for r in plan.routes] == [("models:/fraud-risk@champion", 100)]
    assert _history(ws)[-1]["reason"] == "review queue doubled"
    assert canary.load_state(ws.settings) is None
    with pytest.raises(canary_metrics.CanaryError, match="no canary running"):
        canary.rollback(ws, "again")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_watch_rolls_back_on_a_breach_only(
    ws: canary.Workspace, metrics_server: MetricsServer
) -> None:
    canary.start(ws, 2, 30)
    _serve(metrics_server, Traffic(requests=400), Traffic(requests=20, latency_s=0.3))
    seen: list[str] = []

    def report(evaluation: canary_metrics.Evaluation | None, problem: str) -> None:
        assert evaluation is not None, problem
        seen.append(evaluation.verdict)
        if len(seen) == 3:  # the canary gets its traffic, and it is slow
            _serve(metrics_server, Traffic(requests=400), Traffic(requests=250, latency_s=0.3))

    clock = FakeClock()
    change = canary.watch(ws, 5, 60, report, clock.sleep, clock)
    assert seen == ["insufficient"] * 3 + ["breach"]
    assert change is not None and _plan(ws).candidate_uri is None
    assert _history(ws)[-1]["reason"].startswith("automatic: max_p99_latency_ms=")
    assert get_alias_version(ws.settings, CHAMPION) == "1" and clock.now == 15


def test_watch_without_a_breach_stops_at_max_seconds(
    ws: canary.Workspace, metrics_server: MetricsServer
) -> None:
    canary.start(ws, 2, 30)
    _serve(metrics_server, Traffic(requests=400), Traffic(requests=20, latency_s=0.3))
    seen: list[str | None] = []
    clock = FakeClock()
    report = lambda e, problem: seen.append(e.verdict if e else problem)  # noqa: E731
    assert canary.watch(ws, 5, 20, report, clock.sleep, clock) is None
    assert seen == ["insufficient"] * 5 and clock.now == 20
    assert _plan(ws).candidate_uri == "models:/fraud-risk/2"  # still running
    # an unreachable service is reported, never a breach
    down = canary.Workspace(ws.settings, ws.target, "http://127.0.0.1:9", "fraudrisk serve ...")
    seen.clear()
    assert canary.watch(down, 5, 5, report, clock.sleep, clock) is None
    assert len(seen) == 2 and "fraudrisk serve ..." in str(seen[0])


# ------------------------------------------------------------------ the cluster


class FakeCustomObjectsApi:
    """One live InferenceService; merge patches are applied to it (RFC 7386)."""

    def __init__(self, live: dict[str, Any]) -> None:
        self.live = live
        self.patches: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, *args: str) -> dict[str, Any]:
        assert args == (
            "serving.kserve.io",
            "v1beta1",
            "fraudrisk",
            "inferenceservices",
            "fraud-risk",
        )
        return copy.deepcopy(self.live)

    def patch_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        self.patches.append(kwargs["body"])
        self.live = _merge(self.live, kwargs["body"])
        return copy.deepcopy(self.live)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


@pytest.fixture()
def cluster() -> FakeCustomObjectsApi:
    docs = YAML(typ="safe").load_all(LOCAL.read_text())
    live = next(d for d in docs if d["kind"] == "InferenceService")
    live["metadata"] |= {"resourceVersion": "41", "managedFields": [{"manager": "kubectl"}]}
    live["status"] = {"url": "http://fraud-risk.fraudrisk.example.com"}
    return FakeCustomObjectsApi(live)


def test_cluster_start_promote_patch_the_inferenceservice(
    home: Settings, metrics_server: MetricsServer, cluster: FakeCustomObjectsApi
) -> None:
    target = ClusterTarget(InferenceServicePatcher(cluster), "fraud-risk", "fraudrisk")
    ws = canary.Workspace(home, target, metrics_server.url, "kubectl get isvc")
    metrics_server.text = exposition({})
    canary.start(ws, 2, 20)
    (body,) = cluster.patches
    predictor = body["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20
    assert {"name": mf.MODEL_URI_ENV, "value": "models:/fraud-risk/2"} in predictor["model"]["env"]
    assert body["metadata"] == {"annotations": {mf.STABLE_MODEL_URI: "models:/fraud-risk@champion"}}
    assert "status" not in body and cluster.live["status"]  # only the change is sent
    _serve(metrics_server, Traffic(requests=400), Traffic(requests=250))
    canary.promote(ws)
    assert cluster.patches[-1]["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert "canaryTrafficPercent" not in cluster.live["spec"]["predictor"]
    assert get_alias_version(home, CHAMPION) == "2"
    assert mf.plan_from_text(target.read()).routes[0].model_uri == "models:/fraud-risk/2"


def test_cluster_rollback(home: Settings, cluster: FakeCustomObjectsApi) -> None:
    target = ClusterTarget(InferenceServicePatcher(cluster), "fraud-risk", "fraudrisk")
    ws = canary.Workspace(home, target, "", "kubectl get isvc")
    canary.start(ws, 2, 20)  # no endpoint: no baseline, the window starts with the service
    with pytest.raises(canary_metrics.CanaryError, match="give --endpoint"):
        canary.measure(ws)
    canary.rollback(ws, "manual")
    env = cluster.live["spec"]["predictor"]["model"]["env"]
    assert {"name": mf.MODEL_URI_ENV, "value": "models:/fraud-risk@champion"} in env
    assert "canaryTrafficPercent" not in cluster.live["spec"]["predictor"]


def test_workspace_goes_to_the_cluster_when_a_kubeconfig_is_set(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: FakeCustomObjectsApi
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\n")
    monkeypatch.setattr(
        InferenceServicePatcher, "from_kubeconfig", classmethod(lambda cls, path=None: cls(cluster))
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    target = canary.workspace(home, LOCAL).target
    assert isinstance(target, ClusterTarget) and target.namespace == "fraudrisk"
    assert canary.workspace(home, LOCAL).endpoint == ""  # the loopback default is not used
    assert isinstance(canary.workspace(home, LOCAL, local=True).target, FileTarget)
    monkeypatch.delenv("KUBECONFIG")
    assert isinstance(canary.workspace(home).target, FileTarget)
    assert canary.workspace(home).target.where == str(home.home / "serving/inferenceservice.yaml")


# ------------------------------------------------------------------ the commands


@pytest.fixture()
def cli(home: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fraudrisk.cli.main import app

    monkeypatch.setenv("FRAUDRISK_HOME", str(home.home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, ["canary", *args], terminal_width=160)
    get_settings.cache_clear()


def test_commands(cli: Any, home: Settings, metrics_server: MetricsServer) -> None:
    url = ["--endpoint", metrics_server.url]
    result = cli("status", *url)
    assert result.exit_code == 2 and "no canary running" in result.output
    metrics_server.text = exposition({"champion": Traffic(requests=40)})
    result = cli("start", "--version", "2", "--percent", "25", *url)
    assert result.exit_code == 0, result.output
    assert "models:/fraud-risk/2 25 %" in result.output
    _serve(metrics_server, Traffic(requests=400), Traffic(requests=250))
    result = cli("status", "--json")  # the endpoint recorded by start
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["variants"]) == {"champion", "canary"} and data["verdict"] == "pass"
    assert data["variants"]["champion"]["requests"] == 400 and data["version"] == "2"
    result = cli("status")
    assert (
        result.exit_code == 0
        and "p99 latency" in result.output
        and "verdict: pass" in result.output
    )
    result = cli("promote")
    assert result.exit_code == 0, result.output
    assert "champion: v1 → v2" in result.output and get_alias_version(home, CHAMPION) == "2"


def test_command_errors_say_what_to_do(cli: Any, home: Settings) -> None:
    closed = ["--endpoint", "http://127.0.0.1:9"]  # nothing listens on the discard port
    result = cli("start", "--version", "1", "--percent", "10", *closed)
    assert result.exit_code == 2 and "is the stable model" in result.output
    result = cli("start", "--version", "2", "--percent", "10", *closed)
    assert result.exit_code == 0 and "no service at http://127.0.0.1:9 yet" in result.output
    serve = f"fraudrisk serve --manifest {home.home / 'serving' / 'inferenceservice.yaml'}"
    result = cli("status")
    assert result.exit_code == 2 and "not reachable at http://127.0.0.1:9" in result.output
    assert serve in result.output.replace("\n", "")
    result = cli("watch", "--interval", "1", "--max-seconds", "0")
    assert result.exit_code == 0 and "no breach in 0 s" in result.output
    result = cli("rollback", "--reason", "test")
    assert result.exit_code == 0 and "rolled back (test)" in result.output
    result = cli("rollback")
    assert result.exit_code == 2 and "no canary running" in result.output
