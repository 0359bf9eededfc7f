"""Prometheus metrics of the ASGI data plane summed over worker processes (child interpreters)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from fraudrisk.serving.asgi import ScorerApp

pytestmark = pytest.mark.integration


def test_metrics_are_summed_over_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes count in one PROMETHEUS_MULTIPROC_DIR; /metrics shows their sum."""
    script = (
        "from prometheus_client import Counter\n"
        "c = Counter('fraudrisk_requests', 'Scored.', ['model', 'variant'])\n"
        "c.labels('fraud-risk', 'champion').inc(3)\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": ""}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    app = ScorerApp(dataplane=None, app=FastAPI())

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scorer") as client:
            return await client.get("/metrics")

    text = asyncio.run(scrape()).text
    assert 'fraudrisk_requests_total{model="fraud-risk",variant="champion"} 6.0' in text
