"""The live monitor: throughput, decisions and alert rate by variant and policy version.

``/live`` draws the last 15, 60 or 240 minutes of the alert store's scores
(:func:`fraudrisk.cases.analytics.live_window`, one GROUP BY in the database) as ECharts lines:
transactions per second and alert rate for each model variant or policy version, decisions
per minute by decision, and the window's headline figures. ``/live/data`` answers the same
snapshot as JSON (the first paint, and tests); ``/live/events`` streams it as Server-Sent
Events every few seconds, which ``static/live.js`` draws in place without reloading.

The store stamps ``scored_at`` with the wall clock, so the window ends at the wall clock
(:func:`fraudrisk.io.database.utcnow`), not at the case service's clock. A stream
re-authenticates its session before every event (a revoked session ends it), stops when the
client goes away, and ends after :attr:`Stream.for_seconds`: ``EventSource`` reconnects
after :attr:`Stream.retry_ms`. Latency is not stored per transaction: the page names the
Prometheus histograms of :data:`~fraudrisk.cases.analytics.LATENCY_METRICS` instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from fraudrisk.cases.analytics import LATENCY_METRICS, LiveRow, live_window
from fraudrisk.cases.api import CaseServices
from fraudrisk.dashboard.nav import guard
from fraudrisk.dashboard.rendering import percent, render
from fraudrisk.dashboard.session import Seen, Viewer, current_viewer
from fraudrisk.identity.errors import AuthenticationError
from fraudrisk.io.database import utcnow

#: The windows offered (minutes) and the bucket of each (seconds): 60 points each.
WINDOWS: dict[int, int] = {15: 15, 60: 60, 240: 240}
DEFAULT_MINUTES = 60
_EPOCH = dt.datetime(1970, 1, 1)
_DECISIONS = ("approve", "review", "decline")


class Split(StrEnum):
    """What the per-group charts are split by (a :class:`LiveRow` dimension)."""

    VARIANT = "variant"
    POLICY_VERSION = "policy_version"


SPLIT_LABELS = {Split.VARIANT: "model variant", Split.POLICY_VERSION: "policy version"}
Minutes = Annotated[int, Query()]


@dataclass(frozen=True)
class Stream:
    """How ``/live/events`` streams: an event every ``every_seconds``, for ``for_seconds``."""

    every_seconds: float = 5.0
    for_seconds: float = 300.0
    retry_ms: int = 3000


def install(
    app: FastAPI,
    services: CaseServices,
    stream: Stream | None = None,
    now: Callable[[], dt.datetime] = utcnow,
) -> None:
    """The live page, its JSON snapshot and its event stream."""
    app.state.live_stream = stream or Stream()
    app.state.live_now = now
    _page(app, services.engine)
    _data(app, services.engine)
    _events(app, services.engine)


def _window(minutes: int) -> int:
    """The window asked for, checked against :data:`WINDOWS`.

    Raises:
        HTTPException: 422 for a window not offered.
    """
    if minutes not in WINDOWS:
        raise HTTPException(422, f"the window is one of {', '.join(map(str, WINDOWS))} minutes")
    return minutes


def snapshot(engine: Engine, minutes: int, split: Split, until: dt.datetime) -> dict[str, Any]:
    """The live figures of the ``minutes`` before ``until``: rows, headline, table, charts."""
    bucket = WINDOWS[minutes]
    until = until.replace(microsecond=0)
    since = until - dt.timedelta(minutes=minutes)
    rows = live_window(engine, since, until, bucket)
    starts = _bucket_starts(since, until, bucket)
    groups = sorted({r.value for r in rows if r.dimension == split.value})
    return {
        "minutes": minutes,
        "bucket_seconds": bucket,
        "split": split.value,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "updated": f"{until:%H:%M:%S} UTC",
        "headline": headline(rows, minutes * 60),
        "groups": _group_table(rows, split, minutes * 60),
        "charts": {
            "tps": _lines_chart(rows, starts, split, groups, "transactions_per_second"),
            "decisions": _decisions_chart(rows, starts),
            "alerts": _lines_chart(rows, starts, split, groups, "alert_rate"),
        },
        "rows": [_row_json(r) for r in rows],
    }


def _row_json(row: LiveRow) -> dict[str, Any]:
    values = asdict(row)
    values["bucket_start"] = row.bucket_start.isoformat()
    return values


def _totals(rows: Iterable[LiveRow]) -> dict[str, int]:
    chosen = list(rows)
    return {
        key: sum(getattr(r, key) for r in chosen)
        for key in ("transactions", "approve", "review", "decline")
    }


def headline(rows: list[LiveRow], seconds: int) -> dict[str, str]:
    """The window's figures as the page prints them: count, tx/s, decisions/min, alert rate."""
    return _figures([r for r in rows if r.dimension == "all"], seconds)


def _figures(rows: list[LiveRow], seconds: int) -> dict[str, str]:
    """The printed figures of some rows of one group, over a window of ``seconds``."""
    totals = _totals(rows)
    count = totals["transactions"]
    alerted = totals["review"] + totals["decline"]
    return {
        "transactions": f"{count:,}",
        "tps": _rate(count / seconds),
        "dpm": _rate(count * 60 / seconds),
        "alert_rate": percent(alerted / count) if count else "—",
    }


def _rate(value: float) -> str:
    """A rate as people read it: three decimals below one (a quiet window), else two."""
    return f"{value:.3f}" if value < 1 else f"{value:,.2f}"


def _group_table(rows: list[LiveRow], split: Split, seconds: int) -> list[dict[str, str]]:
    """One line per variant or policy version over the whole window."""
    by_value: dict[str, list[LiveRow]] = {}
    for row in rows:
        if row.dimension == split.value:
            by_value.setdefault(row.value, []).append(row)
    return [
        {"value": value, **_figures(group, seconds)} for value, group in sorted(by_value.items())
    ]


def _bucket_starts(since: dt.datetime, until: dt.datetime, bucket: int) -> list[dt.datetime]:
    first = int((since - _EPOCH).total_seconds()) // bucket * bucket
    last = int((until - _EPOCH).total_seconds() - 1) // bucket * bucket
    return [_EPOCH + dt.timedelta(seconds=s) for s in range(first, last + 1, bucket)]


def _labels(starts: list[dt.datetime]) -> list[str]:
    return [f"{s:%H:%M:%S}" for s in starts]


def _base_chart(starts: list[dt.datetime], y_name: str) -> dict[str, Any]:
    return {
        "aria": {"enabled": True},
        "animation": False,
        "tooltip": {"trigger": "axis", "renderMode": "richText"},
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 24, "right": 24, "bottom": 8, "top": 36, "containLabel": True},
        "xAxis": {"type": "category", "data": _labels(starts), "boundaryGap": False},
        "yAxis": {"type": "value", "name": y_name, "min": 0},
        "series": [],
    }


def _series(
    rows: list[LiveRow], starts: list[dt.datetime], key: tuple[str, str], field: str
) -> list[float | None]:
    """One figure per bucket of one group: a bucket without transactions is 0 (a rate: none)."""
    found = {r.bucket_start: r for r in rows if (r.dimension, r.value) == key}
    empty = None if field == "alert_rate" else 0.0
    return [round(getattr(found[s], field), 4) if s in found else empty for s in starts]


def _lines_chart(
    rows: list[LiveRow], starts: list[dt.datetime], split: Split, groups: list[str], field: str
) -> dict[str, Any]:
    """A line of ``field`` overall and for each group of the split."""
    chart = _base_chart(starts, "tx/s" if field == "transactions_per_second" else "alert rate")
    keys = [("all", "all"), *((split.value, g) for g in groups)]
    chart["series"] = [
        {
            "name": "all" if dim == "all" else value,
            "type": "line",
            "showSymbol": field == "alert_rate",  # a rate has gaps: its points must show
            "connectNulls": False,
            "data": _series(rows, starts, (dim, value), field),
        }
        for dim, value in keys
    ]
    return chart


def _decisions_chart(rows: list[LiveRow], starts: list[dt.datetime]) -> dict[str, Any]:
    """Decisions per minute by decision (approve, review, decline), stacked."""
    chart = _base_chart(starts, "per minute")
    overall = {r.bucket_start: r for r in rows if r.dimension == "all"}

    def per_minute(start: dt.datetime, decision: str) -> float:
        row = overall.get(start)
        if row is None:
            return 0.0
        share: int = getattr(row, decision)
        return round(row.decisions_per_minute * share / row.transactions, 4)

    chart["series"] = [
        {
            "name": decision,
            "type": "line",
            "stack": "decisions",
            "areaStyle": {},
            "showSymbol": False,
            "data": [per_minute(s, decision) for s in starts],
        }
        for decision in _DECISIONS
    ]
    return chart


def _split_of(split: str) -> Split:
    try:
        return Split(split)
    except ValueError:
        raise HTTPException(422, "split by variant or policy_version") from None


def _now(request: Request) -> dt.datetime:
    clock: Callable[[], dt.datetime] = request.app.state.live_now
    return clock()


def _page(app: FastAPI, engine: Engine) -> None:
    @app.get("/live", include_in_schema=False)
    def live(
        request: Request, viewer: Seen, minutes: Minutes = DEFAULT_MINUTES, split: str = "variant"
    ) -> Response:
        guard(viewer.principal, "live")
        chosen = _split_of(split)
        data = snapshot(engine, _window(minutes), chosen, _now(request))
        return render(
            request,
            "live.html",
            viewer,
            current="live",
            data=data,
            windows=list(WINDOWS),
            splits=SPLIT_LABELS,
            split_label=SPLIT_LABELS[chosen],
            latency=LATENCY_METRICS,
            events=f"/live/events?minutes={minutes}&split={chosen.value}",
        )


def _signed_in(request: Request) -> Viewer:
    """The person of a data request: 401 (not a redirect to the sign-in page) without one.

    Raises:
        HTTPException: 401 without a valid session.
        PermissionDeniedError: 403 for a role without the live page's permission.
    """
    try:
        viewer = current_viewer(request)
    except AuthenticationError:
        raise HTTPException(401, "sign in first") from None
    guard(viewer.principal, "live")
    return viewer


def _data(app: FastAPI, engine: Engine) -> None:
    @app.get("/live/data", include_in_schema=False)
    def live_data(
        request: Request, minutes: Minutes = DEFAULT_MINUTES, split: str = "variant"
    ) -> JSONResponse:
        _signed_in(request)
        data = snapshot(engine, _window(minutes), _split_of(split), _now(request))
        return JSONResponse(data, headers={"Cache-Control": "no-store"})


def _still_allowed(request: Request) -> bool:
    """Whether the stream's session is still valid and permitted (checked before each event)."""
    try:
        _signed_in(request)
    except (HTTPException, AuthenticationError):
        return False
    return True


async def _event_stream(
    request: Request, engine: Engine, minutes: int, split: Split
) -> AsyncIterator[str]:
    """``retry:``, then a ``data:`` snapshot every few seconds until the stream's end."""
    stream: Stream = request.app.state.live_stream
    ends = time.monotonic() + stream.for_seconds
    yield f"retry: {stream.retry_ms}\n\n"
    number = 0
    while not await request.is_disconnected():
        if not await run_in_threadpool(_still_allowed, request):
            return
        data = await run_in_threadpool(snapshot, engine, minutes, split, _now(request))
        number += 1
        yield f"id: {number}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        if time.monotonic() + stream.every_seconds > ends:
            return
        await asyncio.sleep(stream.every_seconds)


def _events(app: FastAPI, engine: Engine) -> None:
    @app.get("/live/events", include_in_schema=False)
    def live_events(
        request: Request, minutes: Minutes = DEFAULT_MINUTES, split: str = "variant"
    ) -> StreamingResponse:
        _signed_in(request)
        chosen, window = _split_of(split), _window(minutes)
        return StreamingResponse(
            _event_stream(request, engine, window, chosen),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
