"""Analysts' flows in Chromium: sign in with TOTP, claim next, resolve; a 403; accessibility.

Each test saves screenshots (see ``conftest.py`` for where) and checks the page raised no
Content-Security-Policy violation. axe-core is evaluated through the DevTools protocol
(never injected as a page script, which the CSP rightly refuses) and must find no serious or
critical violation, in the light and the dark theme.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.integration.dashboard.conftest import Site
from tests.unit.cases.case_doubles import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def sign_in(page: Any, site: Site, username: str, code: str = "") -> None:
    page.goto(f"{site.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    if code:
        page.get_by_label("Authenticator code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def shoot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_an_analyst_signs_in_with_totp_claims_next_and_resolves(
    page: Any, site: Site, artifacts: Path
) -> None:
    page.goto(f"{site.url}/login")
    shoot(page, artifacts, "01-sign-in")
    sign_in(page, site, "totp", "000000")
    assert "the username, password or code is wrong" in page.content()
    shoot(page, artifacts, "02-sign-in-refused")
    sign_in(page, site, "totp", site.floor.totp_code())
    assert page.url.endswith("/queue")
    shoot(page, artifacts, "03-my-queue-empty")

    page.get_by_role("button", name="Claim next in general").click()
    page.wait_for_load_state("networkidle")
    case_id = site.floor.case_of[1]  # the highest expected loss
    assert page.url.endswith(f"/cases/{case_id}")
    page.wait_for_selector("[data-chart] canvas")
    shoot(page, artifacts, "04-case-claimed")

    page.get_by_role("button", name="Start investigating").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Add a comment").fill("card testing pattern at a new terminal")
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_selector("text=card testing pattern at a new terminal")
    assert page.get_by_label("Add a comment").input_value() == ""  # htmx swapped, form reset
    page.get_by_label("Disposition").select_option("confirmed-fraud")
    page.get_by_label("Note").fill("customer confirmed")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1 .status").inner_text() == "resolved"
    shoot(page, artifacts, "05-case-resolved")

    page.get_by_role("link", name="My queue").click()
    page.wait_for_load_state("networkidle")
    assert page.locator(f'a[href="/cases/{case_id}"]').count() == 0  # no longer open
    assert page.csp_violations == []


def test_the_status_filter_and_the_theme_toggle(page: Any, site: Site, artifacts: Path) -> None:
    sign_in(page, site, "ana")
    page.goto(f"{site.url}/queues/general")
    assert page.locator("#cases tbody a").count() == 3
    shoot(page, artifacts, "06-queue")
    page.get_by_label("new").uncheck()  # htmx reloads the table on change
    page.wait_for_selector("#cases >> text=No case here.")
    assert "status=" in page.url
    page.get_by_label("new").check()
    page.wait_for_selector("#cases tbody a")
    page.get_by_role("button", name="Dark theme").click()
    assert page.locator("html").get_attribute("data-theme") == "dark"
    page.reload()
    assert page.locator("html").get_attribute("data-theme") == "dark"  # kept in this browser
    shoot(page, artifacts, "07-queue-dark")
    page.goto(f"{site.url}/cases/{site.floor.case_of[2]}")
    page.wait_for_selector("[data-chart] canvas")
    shoot(page, artifacts, "08-case-dark")
    assert page.csp_violations == []


def test_an_analyst_s_direct_url_to_an_admin_page_is_403(
    page: Any, site: Site, artifacts: Path
) -> None:
    sign_in(page, site, "ana")
    assert page.get_by_role("link", name="Users").count() == 0
    answer = page.goto(f"{site.url}/admin/users")
    assert answer.status == 403
    assert "Not allowed" in page.content()
    shoot(page, artifacts, "09-forbidden")


def test_the_csp_check_of_these_tests_sees_a_violation(page: Any, site: Site) -> None:
    """The negative control: an inline script added to a page is refused and reported."""
    page.goto(f"{site.url}/login")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran === true") is False
    assert page.csp_violations, "the inline script ran or was not reported"


def axe_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    page.evaluate(axe_source)
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document)).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_the_pages(
    page: Any, site: Site, axe_source: str, artifacts: Path, theme: str
) -> None:
    page.goto(f"{site.url}/login")
    page.evaluate(f"localStorage.setItem('fraudrisk-theme', '{theme}')")
    problems = {"/login": axe_violations(page, axe_source)}
    sign_in(page, site, "sam")
    paths = ["/queue", "/queues", "/queues/general", f"/cases/{site.floor.case_of[1]}"]
    for path in paths:
        page.goto(f"{site.url}{path}")
        page.wait_for_load_state("networkidle")
        problems[path] = axe_violations(page, axe_source)
    shoot(page, artifacts, f"10-axe-case-{theme}")
    assert {path: found for path, found in problems.items() if found} == {}
    assert page.csp_violations == []
