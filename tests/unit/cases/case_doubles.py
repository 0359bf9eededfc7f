"""What the case tests share: a migrated database with the alert store, people, alerts, a clock.

Shared by the unit tests of ``fraudrisk.cases`` (SQLite) and by
``tests/integration/cases`` (PostgreSQL). People are made without MFA (they log in with the
password alone) and Argon2id runs at its cheapest while a :func:`fast_argon2` block is open:
the tests are of what surrounds the hash (``tests/unit/identity`` checks the real one).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from fraudrisk.alerts.store import ALERTS, AlertStore, ScoreRecord
from fraudrisk.cases.api import CaseServices, create_app
from fraudrisk.cases.ingest import CaseIngester
from fraudrisk.cases.routing import RoutingRules, load_rules
from fraudrisk.cases.tables import CASE_ALERTS, CASES, QUEUE_MEMBERS, QUEUES
from fraudrisk.cases.work import CaseWork
from fraudrisk.config import IdentitySettings
from fraudrisk.identity import hashing
from fraudrisk.identity.accounts import Accounts
from fraudrisk.identity.audit import Actor, AuditLog
from fraudrisk.identity.roles import Role
from fraudrisk.identity.sealing import Sealer
from fraudrisk.identity.service import Identity
from fraudrisk.identity.sessions import Sessions
from fraudrisk.identity.tables import USERS
from fraudrisk.io.database import create_engine, open_database, upgrade, utcnow

PASSWORD = "correct horse battery staple"
BOOT = Actor("boot", "test")
ROLES = tuple(Role)
#: Alerts happen on this day (the join window is measured between alerts' times).
DAY = dt.datetime(2026, 3, 2, 9, 0)


@contextlib.contextmanager
def fast_argon2() -> Iterator[None]:
    """Argon2id at its cheapest (1 pass, 1 MiB): a user costs ~1 ms instead of ~50-300 ms."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hashing, "_HASHER", cheap)
        yield


@dataclass
class Clock:
    """A clock the test moves by hand (naive UTC, as the database stores times)."""

    now: dt.datetime = field(default_factory=utcnow)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def alert(
    tx_id: int,
    customer: int,
    at: dt.datetime = DAY,
    amount: float = 100.0,
    risk: float = 0.5,
    decision: str = "review",
    reasons: Sequence[str] = (),
    variant: str = "champion",
) -> ScoreRecord:
    """One scored transaction that alerts (``review`` or ``decline``)."""
    codes = json.dumps([{"feature": f, "value": 1.0, "contribution": 0.1} for f in reasons])
    return ScoreRecord(
        transaction_id=tx_id,
        customer_id=customer,
        terminal_id=1000 + customer % 17,
        tx_datetime=at,
        tx_amount=amount,
        risk_score=risk,
        decision=decision,
        reason_codes=codes,
        model_version="7",
        variant=variant,
        fallback=False,
    )


@dataclass
class CaseWorld:
    """One application database with the alert store, identity, the case work and the API."""

    url: str
    engine: Engine
    store: AlertStore
    identity: Identity
    clock: Clock
    work: CaseWork
    services: CaseServices
    rules: RoutingRules
    tokens: dict[str, str] = field(default_factory=dict)

    def app(self) -> FastAPI:
        """The case API over this world."""
        return create_app(self.services)

    def ingester(self, batch: int = 5000, join_hours: float = 72.0) -> CaseIngester:
        """An ingester of the bundled routing rules."""
        return CaseIngester(self.engine, self.rules, dt.timedelta(hours=join_hours), batch)

    def add_user(self, username: str, role: Role | str, queues: Sequence[str] = ()) -> str:
        """Create a user (no MFA) in ``queues``; returns their username."""
        self.identity.accounts.create(BOOT, username, role, PASSWORD, mfa_required=False)
        for queue in queues:
            add_member(self.engine, queue, username)
        return username

    def login(self, username: str) -> str:
        """A fresh session token of the user."""
        return self.identity.sessions.login(username, PASSWORD).token

    def token(self, username: str) -> str:
        """The user's session token (one login per user, kept)."""
        if username not in self.tokens:
            self.tokens[username] = self.login(username)
        return self.tokens[username]

    def bearer(self, username: str) -> dict[str, str]:
        """The Authorization header of the user's kept session."""
        return {"Authorization": f"Bearer {self.token(username)}"}

    def principal(self, username: str) -> Any:
        """The authenticated person behind the user's kept session."""
        return self.identity.sessions.authenticate(self.token(username))

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()


def add_member(engine: Engine, queue: str, username: str) -> None:
    """Put a user in a queue straight in the tables (the API route is tested on its own)."""
    with engine.begin() as connection:
        queue_id = connection.execute(sa.select(QUEUES.c.id).where(QUEUES.c.name == queue)).scalar()
        user_id = connection.execute(
            sa.select(USERS.c.id).where(USERS.c.username == username)
        ).scalar()
        assert queue_id is not None and user_id is not None, (queue, username)
        connection.execute(QUEUE_MEMBERS.insert().values(queue_id=queue_id, user_id=user_id))


def world(
    url: str, clock: Clock | None = None, *, migrate: bool = True, pool_size: int | None = None
) -> CaseWorld:
    """The case service over ``url``: migrated, the alert store's tables, the bundled queues.

    ``pool_size``: connections of the engine's pool (for tests of many concurrent callers).
    """
    clock = clock or Clock()
    if pool_size is None:
        engine = open_database(url, migrate=migrate)
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
        if migrate:
            upgrade(engine)
    store = AlertStore(url)
    sealer = Sealer(Fernet.generate_key())
    settings = IdentitySettings()
    identity = Identity(
        Accounts(engine, sealer, settings.totp_issuer, clock),
        Sessions(engine, settings, sealer, clock),
        AuditLog(engine),
    )
    work = CaseWork(engine, clock=clock)
    rules = load_rules()
    services = CaseServices(engine, identity, work, clock=clock)
    made = CaseWorld(url, engine, store, identity, clock, work, services, rules)
    made.ingester()  # creates the routing file's queues
    return made


def counts(engine: Engine) -> dict[str, Any]:
    """What ingestion must keep consistent: cases, case alerts, open alerts, Σ alert_count."""
    with engine.connect() as connection:

        def one(query: Any) -> Any:
            return connection.execute(query).scalar_one()

        return {
            "cases": one(sa.select(sa.func.count()).select_from(CASES)),
            "case_alerts": one(sa.select(sa.func.count()).select_from(CASE_ALERTS)),
            "alert_count": one(sa.select(sa.func.coalesce(sa.func.sum(CASES.c.alert_count), 0))),
            "open_alerts": one(
                sa.select(sa.func.count()).select_from(ALERTS).where(ALERTS.c.status == "open")
            ),
        }


def inconsistent_cases(engine: Engine) -> list[Any]:
    """Cases whose alert_count or priority disagree with the alerts ``case_alerts`` gives them."""
    held = (
        sa.select(
            CASE_ALERTS.c.case_id,
            sa.func.count().label("n"),
            sa.func.sum(CASE_ALERTS.c.risk_score * CASE_ALERTS.c.tx_amount).label("loss"),
        )
        .group_by(CASE_ALERTS.c.case_id)
        .subquery()
    )
    query = (
        sa.select(CASES.c.id, CASES.c.alert_count, held.c.n, CASES.c.priority, held.c.loss)
        .outerjoin(held, held.c.case_id == CASES.c.id)
        .where(
            sa.or_(
                held.c.n.is_(None),
                CASES.c.alert_count != held.c.n,
                sa.func.abs(CASES.c.priority - held.c.loss) > 1e-6 * (1 + sa.func.abs(held.c.loss)),
            )
        )
    )
    with engine.connect() as connection:
        return list(connection.execute(query))
