"""``make demo`` step 6: the local InferenceService with a canary of a second model.

A second model (the champion's recipe with another seed) is trained and registered as the
challenger; the local manifest is served by ``fraudrisk serve`` in a subprocess; ``canary
start`` sends it a share of the traffic; the test week of the lake is sent as V1 batches; the
decisions (with reason codes), the share each variant answered and the canary's gates print.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from typing import Any

import httpx
from rich.table import Table

from fraudrisk.config import Settings
from fraudrisk.console import console
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.io.lake import Lake
from fraudrisk.release import canary
from fraudrisk.training.recipes import TUNED_56DAY
from fraudrisk.vocab import APPROVE, CANARY, MODEL_NAME, VARIANT_NAMES

#: The canary's share of requests in the demo.
CANARY_PERCENT = 20
#: Transactions per V1 request (a request goes to one variant, as KServe routes it).
REQUEST_SIZE = 20
#: Requests sent (the test week, in order, up to this many).
MAX_REQUESTS = 1200


def serve_with_canary(settings: Settings, table_uri: str) -> bool:
    """Train the challenger, serve the manifest, start a canary, send the test week."""
    console.rule("[bold]6. serve: the local InferenceService (KServe ModelServer) with a canary")
    version = _register_challenger(settings, table_uri)
    if version is None:
        return False
    manifest = canary.default_manifest(settings)
    with _Server(settings, str(manifest)) as url:
        workspace = canary.workspace(settings, manifest, endpoint=url, local=True)
        change = canary.start(workspace, int(version), CANARY_PERCENT, CANARY)
        routes = ", ".join(f"{r.variant} {r.model_uri} {r.percent} %" for r in change.after.routes)
        console.print(f"canary started: {routes}")
        _wait_for_variant(url, VARIANT_NAMES[CANARY])
        answers = _send_test_week(settings, url)
        _print_answers(answers)
        evaluation = canary.measure(workspace)
        breaches = ", ".join(evaluation.breaches) or "no breach"
        console.print(f"canary gates: {evaluation.verdict} ({breaches})")
        console.print("next: fraudrisk canary status | promote | rollback")
    return True


def _register_challenger(settings: Settings, table_uri: str) -> str | None:
    from fraudrisk.training.run import run_training  # deferred: pulls mlflow, kfp, optuna (≈2 s)

    console.print("training a challenger: the champion's recipe with seed 1 (no tuning)")
    result = run_training(
        settings,
        table_uri=table_uri,
        lake_uri=settings.lake_uri,
        n_trials=0,
        timeout_s=None,
        workdir=settings.home / "demo-challenger",
        recipe=TUNED_56DAY.model_copy(update={"seed": 1}),
    )
    verdict = "passed" if result.gate.passed else "rejected: " + "; ".join(result.gate.reasons)
    console.print(
        f"registered version {result.version.version}, aliases {result.aliases}, gate {verdict}"
    )
    return result.version.version if result.gate.passed else None


class _Server:
    """``fraudrisk serve --manifest`` in a subprocess on a free port, stopped on exit."""

    def __init__(self, settings: Settings, manifest: str) -> None:
        self.port = free_port()
        self.log = settings.serving_dir / "serve.log"
        self.command = [
            sys.executable,
            "-m",
            "fraudrisk",
            "serve",
            "--manifest",
            manifest,
            "--http-port",
            str(self.port),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        url = f"http://127.0.0.1:{self.port}"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        console.print(f"$ {' '.join(self.command[1:])}   (log: {self.log})")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the scorer exited; see {self.log}")
            try:
                if httpx.get(f"{url}/v2/models/{MODEL_NAME}/ready", timeout=1).status_code == 200:
                    console.print(f"scorer ready at {url}")
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the scorer was not ready in 120 s; see {self.log}")

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def _wait_for_variant(url: str, variant: str, timeout_s: float = 60) -> None:
    """Wait until the server (watching its manifest) has loaded the new variant."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metadata = httpx.get(f"{url}/v2/models/{MODEL_NAME}", timeout=5).json()
        if len(metadata.get("versions") or []) > 1:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the {variant} variant was not loaded in {timeout_s} s")


def _send_test_week(settings: Settings, url: str) -> list[dict[str, Any]]:
    lake = Lake.open(settings.lake_uri)
    days = lake.days()
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    week = lake.read_days(days[-7], days[-1], columns)
    rows = week.to_pylist()[: REQUEST_SIZE * MAX_REQUESTS]
    answers: list[dict[str, Any]] = []
    began = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(rows), REQUEST_SIZE):
            instances = [
                {**row, "tx_datetime": row["tx_datetime"].isoformat()}
                for row in rows[start : start + REQUEST_SIZE]
            ]
            body = {"instances": instances}
            response = client.post(f"/v1/models/{MODEL_NAME}:predict", json=body)
            response.raise_for_status()
            answers += response.json()["predictions"]
    seconds = time.perf_counter() - began
    console.print(
        f"sent {len(rows):,} transactions of the test week ({days[-7]} → {days[-1]}) "
        f"in {len(rows) // REQUEST_SIZE} V1 requests: "
        f"{len(rows) / seconds:,.0f} tx/s"
    )
    return answers


def _print_answers(answers: list[dict[str, Any]]) -> None:
    by_variant = collections.Counter((a["variant"], a["model_version"]) for a in answers)
    shares = ", ".join(
        f"{v} v{m}: {n:,} ({n / len(answers):.0%})" for (v, m), n in sorted(by_variant.items())
    )
    console.print(f"answered by: {shares} (canary target {CANARY_PERCENT} % of requests)")
    decisions = collections.Counter(a["decision"] for a in answers)
    console.print("decisions: " + ", ".join(f"{d} {n:,}" for d, n in decisions.most_common()))
    flagged = sorted(
        (a for a in answers if a["decision"] != APPROVE), key=lambda a: -a["risk_score"]
    )[:5]
    table = Table(title="highest risks, with their reason codes")
    for column in ("transaction", "risk", "decision", "variant", "top reasons"):
        table.add_column(column)
    for a in flagged:
        reasons = "; ".join(
            f"{r['feature']} = {r['value']:g} (+{r['contribution']:.2f})" for r in a["reason_codes"]
        )
        table.add_row(
            str(a["transaction_id"]),
            f"{a['risk_score']:.3f}",
            a["decision"],
            f"{a['variant']} v{a['model_version']}",
            reasons,
        )
    console.print(table)
