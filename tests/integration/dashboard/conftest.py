"""The dashboard in a real browser: Debian's Chromium driven by Playwright, never a download.

The app runs under uvicorn in a background thread on a free loopback port (plain HTTP, so
the session cookie is set without ``Secure``), over a SQLite world of cases and people built
as the unit tests build it. Screenshots go to ``$FRAUDRISK_TEST_ARTIFACTS/dashboard`` (default
``<repo>/.fraudrisk/artifacts/dashboard``, ignored by git) for people to look at.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support.asgi import serve_in_thread
from tests.unit.cases.case_doubles import fast_argon2, world
from tests.unit.dashboard.pages import Floor, dashboard, populate

from fraudrisk.dashboard import assets

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Site:
    """The served dashboard and its world."""

    url: str
    floor: Floor


@pytest.fixture(scope="module", autouse=True)
def _fast_argon2() -> Iterator[None]:
    with fast_argon2():
        yield


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the screenshots go."""
    base = os.environ.get("FRAUDRISK_TEST_ARTIFACTS") or str(REPO_ROOT / ".fraudrisk" / "artifacts")
    folder = Path(base) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def vendor_dir() -> Path:
    """The vendored htmx and ECharts (npm ci once, cached outside the repository)."""
    return assets.ensure_built()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's browser build, from the same lockfile."""
    return assets.axe_script().read_text()


class UsualValues:
    """The customer's baseline of each feature (the feature table's stand-in): a third."""

    def customer_baseline(
        self, customer_id: int, features: Sequence[str], before: dt.datetime
    ) -> dict[str, float]:
        return {name: 0.3 + 0.1 * i for i, name in enumerate(features)}


@pytest.fixture()
def site(tmp_path: Path, vendor_dir: Path) -> Iterator[Site]:
    made = world(f"sqlite:///{tmp_path / 'app.db'}")
    made.services.baselines = UsualValues()
    floor = populate(made)
    try:
        with serve_in_thread(dashboard(made, assets_dir=vendor_dir)) as url:
            yield Site(url, floor)
    finally:
        made.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (``apt-get install chromium``; ``make sysdeps`` does).

    Module-scoped: while the sync Playwright API is open its event loop runs in this thread, so
    a later test file on the same worker could not ``asyncio.run``; each file closes it.
    """
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make sysdeps does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no storage) and its page; CSP reports collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    made = context.new_page()
    made.csp_violations = []
    made.on(
        "console",
        lambda message: (
            made.csp_violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    try:
        yield made
    finally:
        context.close()
