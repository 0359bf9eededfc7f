"""The live monitor in Chromium: new scores behind the running app show up without a reload.

ana opens ``/live``; the test writes scored transactions into the alert store the served app
reads (the site's world), and the headline transaction count changes on the page through the
Server-Sent Events stream while the page stays the same document. axe-core finds no serious
or critical violation in either theme, and no CSP violation is reported. Under uvicorn, a
stream whose client goes away stops computing snapshots.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.dashboard.conftest import Site
from tests.integration.dashboard.test_browser import shoot, sign_in
from tests.integration.dashboard.test_browser_policies import axe_both_themes
from tests.support.asgi import serve_in_thread
from tests.unit.cases.case_doubles import alert, world
from tests.unit.dashboard.pages import dashboard, populate

from fraudrisk.dashboard import live_pages

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

HEADLINE = "#headline-transactions"
#: The stream sends a snapshot every 5 s: a change shows within two of them, or not at all.
WAIT_MS = 20_000


def score_more(site: Site, count: int) -> None:
    """New scored transactions in the store behind the app: canary approvals, one decline."""
    records = [
        replace(alert(500 + i, 60 + i, decision="approve", variant="canary"), policy_version=1)
        for i in range(count - 1)
    ]
    records.append(alert(599, 99, decision="decline", variant="canary"))
    site.floor.world.store.write(records)


def test_new_scores_show_on_the_live_monitor_without_a_reload(
    site: Site, page: Any, artifacts: Path, axe_source: str
) -> None:
    sign_in(page, site, "ana")
    page.get_by_role("link", name="Live monitor").click()
    page.wait_for_selector("[data-live-chart] canvas")
    assert page.locator(HEADLINE).inner_text() == "3"  # the world's three alerts
    page.wait_for_function("() => document.getElementById('live-status').textContent")
    page.evaluate("() => { window.sameDocument = true; }")

    score_more(site, 6)
    page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent.trim() === '9'",
        arg=HEADLINE,
        timeout=WAIT_MS,
    )
    assert page.evaluate("() => window.sameDocument === true")  # no reload
    assert "canary" in page.locator("#live-groups").inner_text()
    assert "fraudrisk_request_latency_seconds" in page.content()
    shoot(page, artifacts, "31-live-monitor")
    page.get_by_role("button", name="Dark theme").click()
    shoot(page, artifacts, "32-live-monitor-dark")
    page.get_by_role("button", name="Dark theme").click()
    assert axe_both_themes(page, axe_source) == {}
    assert page.csp_violations == []


def test_a_stream_stops_when_its_client_goes_away(
    tmp_path: Path, vendor_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = world(f"sqlite:///{tmp_path / 'app.db'}")
    populate(made)
    app = dashboard(made, assets_dir=vendor_dir)
    app.state.live_stream = live_pages.Stream(every_seconds=0.1, for_seconds=60)
    calls: list[float] = []
    counted = live_pages.snapshot
    monkeypatch.setattr(
        live_pages, "snapshot", lambda *args: calls.append(time.monotonic()) or counted(*args)
    )
    cookies = {"fraudrisk_session": made.login("ana")}
    try:
        with serve_in_thread(app) as url, httpx.Client(cookies=cookies) as client:
            with client.stream("GET", f"{url}/live/events") as answer:
                events = (line for line in answer.iter_lines() if line.startswith("data: "))
                for _ in range(3):
                    next(events)
            seen = len(calls)
            time.sleep(1.0)  # ten intervals: a stream still running would compute ten more
            assert len(calls) <= seen + 1
    finally:
        made.close()
