"""The live monitor: who may see it, its snapshot against ``live_window``, its event stream."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import asdict, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.cases.case_doubles import BOOT, alert
from tests.unit.dashboard.pages import Floor, sign_in

from fraudrisk.cases.analytics import LATENCY_METRICS, live_window
from fraudrisk.dashboard import live_pages
from fraudrisk.dashboard.live_pages import Split, Stream, snapshot
from fraudrisk.io.database import utcnow

#: A minute after the seeded scores were stamped (the store stamps them with the wall clock).
AHEAD = dt.timedelta(minutes=1)


def seed(floor: Floor) -> dt.datetime:
    """Scores of two variants and two policy versions, beside the world's three alerts."""
    records = [
        replace(alert(100 + i, 40 + i, decision=d, variant=v), policy_version=p)
        for i, (d, v, p) in enumerate(
            [
                ("approve", "champion", 1),
                ("approve", "canary", 2),
                ("decline", "canary", 2),
                ("approve", "champion", None),
            ]
        )
    ]
    floor.world.store.write(records)
    return utcnow() + AHEAD


def frozen(client: TestClient, at: dt.datetime) -> None:
    client.app.state.live_now = lambda: at  # type: ignore[attr-defined]


@pytest.mark.parametrize("username", ["ana", "sam", "rita", "mo", "adm"])
def test_the_live_page_renders_for_every_role_that_reads_monitoring(
    client: TestClient, username: str
) -> None:
    sign_in(client, username)
    page = client.get("/live")
    assert page.status_code == 200, page.text
    assert "<h1>Live monitor</h1>" in page.text
    assert 'href="/live" aria-current="page"' in page.text
    assert 'data-events="/live/events?minutes=60&amp;split=variant"' in page.text
    for metric in LATENCY_METRICS.values():
        assert metric in page.text  # latency is named, not invented


def test_a_session_without_monitoring_read_gets_403(client: TestClient, floor: Floor) -> None:
    issued = floor.world.identity.sessions.create_api_token(BOOT, "ana", "cases:read")
    client.cookies.set("fraudrisk_session", issued.token)
    assert client.get("/queue").status_code == 200
    refused = client.get("/live")
    assert refused.status_code == 403
    assert "monitoring:read" in refused.text
    assert client.get("/live/data").status_code == 403
    assert client.get("/live/events").status_code == 403


def test_the_page_has_no_inline_script_or_style(client: TestClient) -> None:
    sign_in(client, "rita")
    html = client.get("/live").text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None
    assert '<script src="/static/live.js" defer></script>' in html


def test_the_data_equals_live_window_on_the_seeded_store(client: TestClient, floor: Floor) -> None:
    until = seed(floor)
    frozen(client, until)
    sign_in(client, "ana")
    data = client.get("/live/data", params={"minutes": 15}).json()
    since, end = dt.datetime.fromisoformat(data["since"]), dt.datetime.fromisoformat(data["until"])
    assert end - since == dt.timedelta(minutes=15) and data["bucket_seconds"] == 15
    expected = live_window(floor.world.engine, since, end, 15)
    assert expected and data["rows"] == [
        {**asdict(r), "bucket_start": r.bucket_start.isoformat()} for r in expected
    ]
    assert data["rows"] == snapshot(floor.world.engine, 15, Split.VARIANT, until)["rows"]
    assert data["headline"]["transactions"] == "7"  # 3 alerts of the world + 4 seeded
    assert data["headline"]["alert_rate"] == "57.1\u00a0%"  # 3 reviews + 1 decline of 7


def test_the_split_by_policy_version_groups_and_draws_each_version(
    client: TestClient, floor: Floor
) -> None:
    frozen(client, seed(floor))
    sign_in(client, "mo")
    data = client.get("/live/data", params={"split": "policy_version"}).json()
    assert [g["value"] for g in data["groups"]] == ["1", "2", "none"]
    assert [g["transactions"] for g in data["groups"]] == ["1", "2", "4"]
    names = [s["name"] for s in data["charts"]["tps"]["series"]]
    assert names == ["all", "1", "2", "none"]
    assert [s["name"] for s in data["charts"]["decisions"]["series"]] == [
        "approve",
        "review",
        "decline",
    ]
    assert len(data["charts"]["tps"]["xAxis"]["data"]) in (60, 61)  # 61 when unaligned


@pytest.mark.parametrize("query", [{"minutes": 30}, {"split": "queue"}])
def test_a_window_or_split_not_offered_is_refused(client: TestClient, query: dict) -> None:
    sign_in(client, "ana")
    assert client.get("/live/data", params=query).status_code == 422
    assert client.get("/live", params=query).status_code == 422


def test_the_event_stream_sends_well_formed_snapshots_and_ends(
    client: TestClient, floor: Floor
) -> None:
    frozen(client, seed(floor))
    client.app.state.live_stream = Stream(every_seconds=0.01, for_seconds=0.05)  # type: ignore[attr-defined]
    sign_in(client, "rita")
    with client.stream("GET", "/live/events") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = "".join(answer.iter_text())
    events = [block for block in body.split("\n\n") if block]
    assert events[0] == "retry: 3000"
    data = [
        line.removeprefix("data: ")
        for e in events[1:]
        for line in e.split("\n")
        if line.startswith("data: ")
    ]
    assert data, body
    first = json.loads(data[0])
    assert first["headline"]["transactions"] == "7"
    assert set(first["charts"]) == {"tps", "decisions", "alerts"}


def test_the_event_stream_and_data_need_a_session(client: TestClient) -> None:
    assert client.get("/live/events").status_code == 401
    assert client.get("/live/data").status_code == 401
    page = client.get("/live", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/live"


def test_a_session_revoked_mid_stream_ends_it(
    client: TestClient, floor: Floor, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = Stream(every_seconds=0.01, for_seconds=30)
    client.app.state.live_stream = stream  # type: ignore[attr-defined]
    sign_in(client, "ana")

    def then_revoke(*args: Any) -> dict[str, Any]:
        floor.world.identity.sessions.logout_everywhere(BOOT, "ana")
        return snapshot(*args)

    monkeypatch.setattr(live_pages, "snapshot", then_revoke)
    started = time.monotonic()
    with client.stream("GET", "/live/events") as answer:
        body = "".join(answer.iter_text())
    assert body.count("data: ") == 1
    assert time.monotonic() - started < stream.for_seconds / 2
    assert client.get("/live/events").status_code == 401
