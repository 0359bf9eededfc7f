"""Four eyes in Chromium: a risk manager drafts and submits, another approves and activates.

rita drafts a policy in the browser (a text with errors first: they are shown beside it with
their positions, and nothing is stored), submits it, and is refused her own approval; rob
signs in, approves and activates it. axe-core finds no serious or critical violation on the
list and version pages (light and dark), and no page raises a CSP violation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.integration.dashboard.conftest import Site
from tests.integration.dashboard.test_browser import axe_violations, shoot, sign_in
from tests.unit.policy.desk import LOWER, POLICY

from fraudrisk.identity.roles import Role

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

BROKEN = POLICY.replace("when: amount >= 250", "when: amount >= ")


def click(page: Any, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_load_state("networkidle")


def axe_both_themes(page: Any, axe_source: str) -> dict[str, list[dict[str, Any]]]:
    """axe's serious and critical findings on the page in the light and the dark theme."""
    found = {"light": axe_violations(page, axe_source)}
    page.get_by_role("button", name="Dark theme").click()
    found["dark"] = axe_violations(page, axe_source)
    page.get_by_role("button", name="Dark theme").click()
    return {theme: problems for theme, problems in found.items() if problems}


def draft_and_submit(page: Any, site: Site, artifacts: Path) -> str:
    """rita's draft (refused once for its errors), submitted; the version page's path."""
    sign_in(page, site, "rita")
    page.get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="New draft").click()
    page.get_by_label("Policy YAML").fill(BROKEN)
    click(page, "Save draft")
    assert "policy.yaml:5:32: expected a value" in page.locator("#lint-errors").inner_text()
    shoot(page, artifacts, "21-policy-lint-errors")
    page.get_by_label("Policy YAML").fill(POLICY)
    page.get_by_label("Note (why)").fill("route big amounts to high-value")
    click(page, "Save draft")
    assert "Version 1 drafted." in page.content()
    click(page, "Submit")
    assert page.locator("h1 .status").inner_text() == "pending"
    return "/policies/1"


def draft_a_change(page: Any, artifacts: Path, axe_source: str) -> dict[str, Any]:
    """rob's draft based on the active v1: its page shows the diff (and axe's findings)."""
    page.get_by_role("link", name="v1", exact=True).click()
    page.get_by_role("link", name="New draft based on v1").click()
    page.get_by_label("Policy YAML (based on v1)").fill(LOWER)
    click(page, "Save draft")
    assert "Changes from v1" in page.content()
    assert page.locator("pre.diff .add").inner_text().startswith("+thresholds: {review: 0.08")
    page.get_by_role("button", name="Dark theme").click()
    shoot(page, artifacts, "25-policy-diff-dark")
    page.get_by_role("button", name="Dark theme").click()
    return axe_both_themes(page, axe_source)


def test_four_eyes_one_risk_manager_drafts_another_approves(
    page: Any, site: Site, artifacts: Path, axe_source: str
) -> None:
    site.floor.world.add_user("rob", Role.RISK_MANAGER)
    path = draft_and_submit(page, site, artifacts)
    click(page, "Approve")
    assert "may not approve it (four eyes)" in page.get_by_role("alert").inner_text()
    assert page.locator("h1 .status").inner_text() == "pending"
    shoot(page, artifacts, "22-policy-own-approval-refused")
    click(page, "Sign out")

    sign_in(page, site, "rob")
    page.goto(f"{site.url}{path}")
    click(page, "Approve")
    assert page.locator("h1 .status").inner_text() == "approved"
    click(page, "Activate")
    assert page.locator("h1 .status").inner_text() == "active"
    assert "activate</strong> by rob" in page.content()
    shoot(page, artifacts, "23-policy-activated")
    problems = {path: axe_both_themes(page, axe_source)}

    page.get_by_role("link", name="Policies").click()
    page.wait_for_load_state("networkidle")
    assert "(in force)" in page.locator("tbody tr").first.inner_text()
    shoot(page, artifacts, "24-policy-list")
    problems["/policies"] = axe_both_themes(page, axe_source)
    problems["/policies/2"] = draft_a_change(page, artifacts, axe_source)
    assert {where: found for where, found in problems.items() if found} == {}
    assert page.csp_violations == []
