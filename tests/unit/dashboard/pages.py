"""What the dashboard tests share: a world of cases and people, and a browser-like client.

The world is the case tests' (:mod:`tests.unit.cases.case_doubles`): the bundled queues, three
customers' cases in ``general``, and one person of each role. ``ana`` and ``bo`` are analysts
of ``general``; ``totp`` is an analyst who signs in with a TOTP code. The browser tests build
the same world over a file of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.unit.cases.case_doubles import BOOT, DAY, PASSWORD, CaseWorld, add_member, alert

from fraudrisk.cases.tables import CASES
from fraudrisk.dashboard.app import create_dashboard
from fraudrisk.identity.roles import Role

#: customer → (amount, risk): expected losses 90, 40 and 10.
LOSSES = {1: (100.0, 0.9), 2: (200.0, 0.2), 3: (50.0, 0.2)}
REASONS = ("customer_nb_tx_1d", "terminal_risk_7d", "tx_amount")
PEOPLE = {
    "ana": Role.ANALYST,
    "bo": Role.ANALYST,
    "sam": Role.SENIOR_ANALYST,
    "rita": Role.RISK_MANAGER,
    "mo": Role.MLOPS_ENGINEER,
    "adm": Role.ADMIN,
}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')
LOGIN_NONCE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Floor:
    """A world of cases and people, and the case id of each customer."""

    world: CaseWorld
    case_of: dict[int, int]
    totp_secret: str

    def totp_code(self) -> str:
        """The TOTP code of ``totp`` now (by the world's clock)."""
        return pyotp.TOTP(self.totp_secret).at(self.world.clock())


def populate(world: CaseWorld) -> Floor:
    """Cases of three customers, one person of each role, an analyst with MFA."""
    world.store.write(
        [alert(c, c, DAY, amount, risk, reasons=REASONS) for c, (amount, risk) in LOSSES.items()]
    )
    world.ingester().ingest_all()
    for username, role in PEOPLE.items():
        world.add_user(username, role, ["general"] if role is Role.ANALYST else [])
    enrolment = world.identity.accounts.create(BOOT, "totp", Role.ANALYST, PASSWORD)
    add_member(world.engine, "general", "totp")
    secret = pyotp.parse_uri(enrolment.provisioning_uri).secret
    with world.engine.connect() as connection:
        case_of = dict(connection.execute(sa.select(CASES.c.customer_id, CASES.c.id)).all())
    return Floor(world, case_of, secret)


def dashboard(world: CaseWorld, *, secure: bool = False, assets_dir: Path | None = None) -> FastAPI:
    """The dashboard over the world's services (plain HTTP unless ``secure``)."""
    return create_dashboard(world.services, secure_cookies=secure, assets_dir=assets_dir)


def sign_in(client: TestClient, username: str, code: str = "", **extra: str) -> Any:
    """Fill in the sign-in form as a browser does (its double-submit value included)."""
    page = client.get("/login")
    nonce = LOGIN_NONCE.search(page.text)
    assert nonce is not None, page.text
    form = {"username": username, "password": PASSWORD, "code": code, "csrf_token": nonce[1]}
    return client.post("/login", data={**form, **extra}, follow_redirects=False)


def csrf_of(client: TestClient, path: str = "/queue") -> str:
    """The CSRF token a page of the signed-in person carries."""
    found = CSRF_META.search(client.get(path).text)
    assert found is not None and found[1], "no CSRF token on the page"
    return found[1]
