"""Screenshots of the dashboard's main pages (``fraudrisk dashboard screenshots``).

A small world is built in a temporary folder — an application database with a few people (one
per role, the analyst and a risk manager with TOTP), the bundled queues, cases of a dozen
alerts with reason codes, and two policy versions (v1 active, v2 a pending change) — through
the public services: identity accounts and sessions, the alert store, the case ingester and
the policy versions. The dashboard is served on a free loopback port (uvicorn in a thread,
plain HTTP) and Debian's Chromium, headless, signs in (the TOTP code computed from the seed)
and saves PNGs of the sign-in page, my queue, a case, the policy list and a version with its
diff, and ``/live`` when the dashboard has it. No network; everything stops after.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import uvicorn
from sqlalchemy.engine import Engine

from fraudrisk.alerts.records import ScoreRecord
from fraudrisk.alerts.store import SCORES, AlertStore
from fraudrisk.cases.api import CaseServices
from fraudrisk.cases.queues import set_membership
from fraudrisk.cases.service import case_ingester
from fraudrisk.cases.work import CaseWork
from fraudrisk.config import DatabaseSettings, Settings
from fraudrisk.dashboard.app import create_dashboard
from fraudrisk.identity.audit import SYSTEM
from fraudrisk.identity.principal import Principal
from fraudrisk.identity.roles import Role
from fraudrisk.identity.service import identity_for
from fraudrisk.identity.totp import code_at
from fraudrisk.io.database import open_database
from fraudrisk.io.kafka_broker import free_port
from fraudrisk.policy.linting import policy_versions
from fraudrisk.policy.versions import PolicyVersions

CHROMIUM = "/usr/bin/chromium"
#: The browser window: width, height.
WIDTH, HEIGHT = 1280, 900
#: The world's people: username → (role, signs in with TOTP).
PEOPLE: dict[str, tuple[Role, bool]] = {
    "ana": (Role.ANALYST, True),
    "sam": (Role.SENIOR_ANALYST, False),
    "rita": (Role.RISK_MANAGER, True),
    "raj": (Role.RISK_MANAGER, False),
    "rob": (Role.RISK_MANAGER, False),
    "ada": (Role.ADMIN, False),
}
REASONS = ("terminal_risk_7d", "customer_nb_tx_1d", "tx_amount", "customer_avg_amount_7d")
POLICY = """\
name: card-desk
thresholds: {review: 0.1, decline: 0.9}
alert_budget: 200
rules:
  - {name: big, when: amount >= 250, action: route, queue: high-value, reason: Big amount}
"""
#: The second version: a lower review threshold and a tighter budget.
CHANGE = POLICY.replace("review: 0.1", "review: 0.08").replace("200", "150")
#: Page → file name, in the order they are shot.
SHOTS = ("01-sign-in", "02-my-queue", "03-case", "04-policies", "05-policy-diff", "06-live")


@dataclass
class World:
    """The screenshots' application database and its people's credentials."""

    settings: Settings
    engine: Engine
    passwords: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, str] = field(default_factory=dict)

    def code(self, username: str) -> str:
        """The person's TOTP code now ("" without TOTP)."""
        seed = self.seeds.get(username)
        return code_at(seed, _now()) if seed else ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def build_world(folder: Path) -> World:
    """People, queues, cases with alerts and reason codes, policy v1 active and v2 pending."""
    url = f"sqlite:///{folder / 'app.db'}"
    settings = Settings(home=folder, db=DatabaseSettings(url=url))
    world = World(settings, open_database(url))
    _add_people(world)
    _add_cases(world)
    _add_policies(world)
    return world


def _add_people(world: World) -> None:
    accounts = identity_for(world.settings, world.engine).accounts
    for username, (role, mfa) in PEOPLE.items():
        password = secrets.token_urlsafe(12)
        made = accounts.create(SYSTEM, username, role, password, mfa_required=mfa)
        world.passwords[username] = password
        if mfa:
            world.seeds[username] = parse_qs(urlparse(made.provisioning_uri).query)["secret"][0]


def _principal(world: World, username: str) -> Principal:
    sessions = identity_for(world.settings, world.engine).sessions
    token = sessions.login(username, world.passwords[username], world.code(username)).token
    return sessions.authenticate(token)


def _record(tx_id: int, customer: int, amount: float, risk: float, at: dt.datetime) -> ScoreRecord:
    """A scored transaction: approved below 0.1, an alert (review, decline from 0.9) above."""
    codes = [
        {"feature": name, "value": round(0.2 + 0.15 * i + risk / 3, 3), "contribution": c}
        for i, (name, c) in enumerate(zip(REASONS, (0.31, 0.18, 0.09, -0.04), strict=True))
    ]
    decision = "approve" if risk < 0.1 else "decline" if risk >= 0.9 else "review"
    return ScoreRecord(
        transaction_id=tx_id,
        customer_id=customer,
        terminal_id=4000 + customer % 17,
        tx_datetime=at,
        tx_amount=amount,
        risk_score=risk,
        decision=decision,
        reason_codes=json.dumps(codes),
        model_version="7" if tx_id % 5 else "8",
        variant="champion" if tx_id % 5 else "challenger",
        fallback=False,
    )


def _scored(now: dt.datetime) -> list[ScoreRecord]:
    """An hour of traffic: 14 alerts among 300 approved transactions."""
    alerts = [
        _record(
            9001 + i,
            101 + i % 8,
            [42.5, 118.0, 67.9, 310.0, 23.4, 89.0, 154.2, 940.0][i % 8] + i,
            [0.62, 0.35, 0.81, 0.44, 0.93, 0.27, 0.55, 0.71][i % 8],
            now - dt.timedelta(minutes=52 - 3.5 * i),
        )
        for i in range(14)
    ]
    approved = [
        _record(1 + i, 200 + i % 40, 10.0 + (i * 37) % 180, 0.01 + (i % 9) / 100, at)
        for i in range(300)
        for at in [now - dt.timedelta(seconds=58 * 60 - 11.5 * i)]
    ]
    return approved + alerts


class UsualValues:
    """Each customer's usual value of a feature (the feature table's stand-in)."""

    def customer_baseline(
        self, customer_id: int, features: Sequence[str], before: dt.datetime
    ) -> dict[str, float]:
        """A third to a half of this case's values: the customer's last weeks."""
        return {name: round(0.12 + 0.09 * i, 3) for i, name in enumerate(features)}


def _add_cases(world: World) -> None:
    store = AlertStore(world.settings.db_url)
    try:
        store.write(_scored(_now()))
    finally:
        store.close()
    with world.engine.begin() as connection:  # as if scored live over the hour
        connection.execute(SCORES.update().values(scored_at=SCORES.c.tx_datetime))
    case_ingester(world.settings, world.engine).ingest_all()
    admin = _principal(world, "ada")
    for queue in ("general", "high-value", "declines"):
        set_membership(world.engine, admin, queue, "ana", True)


def _add_policies(world: World) -> None:
    versions = policy_versions(world.engine)
    author, approver = _principal(world, "raj"), _principal(world, "rob")
    first = versions.draft(author, "card-desk", POLICY, note="the desk's first thresholds")
    versions.submit(author, first.number, "ready for review")
    versions.approve(approver, first.number, "checked on last week's backtest")
    versions.activate(approver, first.number)
    change = versions.draft(
        author, "card-desk", CHANGE, note="review more, smaller budget", based_on=first.number
    )
    versions.submit(author, change.number, "lower review threshold")


def services_of(world: World) -> CaseServices:
    """The case services the dashboard runs on, over the world's database."""
    versions: PolicyVersions = policy_versions(world.engine)
    identity = identity_for(world.settings, world.engine)
    return CaseServices(
        world.engine, identity, CaseWork(world.engine), baselines=UsualValues(), policies=versions
    )


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free loopback port; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"screenshots-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def take_screenshots(out: Path, assets_dir: Path) -> list[Path]:
    """Build the world, serve the dashboard, shoot its pages into ``out``; the PNGs written.

    Args:
        out: The folder of the PNGs (made if missing).
        assets_dir: The vendored front-end files (htmx, ECharts).
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fraudrisk-screenshots-") as folder:
        world = build_world(Path(folder))
        try:
            app = create_dashboard(services_of(world), secure_cookies=False, assets_dir=assets_dir)
            with serving(app) as url:
                return _shoot_all(world, url, out)
        finally:
            world.engine.dispose()


def _shoot_all(world: World, url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright  # heavy: the browser driver

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
            context.set_default_timeout(20_000)
            page = context.new_page()
            shots = [*_analyst_pages(page, world, url, out), *_policy_pages(page, world, url, out)]
            return shots + _live_page(page, url, out)
        finally:
            browser.close()


def _shoot(page: Any, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)  # charts finish their animation
    page.screenshot(path=str(path))
    return path


def _sign_in(page: Any, world: World, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(world.passwords[username])
    page.get_by_label("Authenticator code").fill(world.code(username))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def _analyst_pages(page: Any, world: World, url: str, out: Path) -> list[Path]:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill("ana")
    shots = [_shoot(page, out, SHOTS[0])]
    _sign_in(page, world, url, "ana")
    for queue in ("high-value", "general"):
        page.get_by_role("button", name=f"Claim next in {queue}").click()
        page.wait_for_load_state("networkidle")
        page.goto(f"{url}/queue")
    shots.append(_shoot(page, out, SHOTS[1]))
    page.locator('a[href^="/cases/"]').first.click()
    page.wait_for_selector("[data-chart] canvas")
    shots.append(_shoot(page, out, SHOTS[2]))
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_load_state("networkidle")
    return shots


def _policy_pages(page: Any, world: World, url: str, out: Path) -> list[Path]:
    _sign_in(page, world, url, "rita")
    page.goto(f"{url}/policies")
    shots = [_shoot(page, out, SHOTS[3])]
    page.goto(f"{url}/policies/2")
    shots.append(_shoot(page, out, SHOTS[4]))
    return shots


def _live_page(page: Any, url: str, out: Path) -> list[Path]:
    """``/live`` when the dashboard has it (a 404 skips it)."""
    response = page.goto(f"{url}/live")
    if response is None or response.status == httpx.codes.NOT_FOUND:
        return []
    return [_shoot(page, out, SHOTS[5])]
