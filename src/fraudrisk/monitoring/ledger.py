"""The trigger ledger: every retraining decision, and one claim per cause, in SQL.

``retraining_decisions`` keeps a row per check result the trigger decided about, with its
outcome — ``no_trigger``, ``suppressed`` (cool-down), ``fired`` or ``failed`` — the report that
caused it, and the run and version the launch produced. ``retraining_claims`` holds one row per
cause (primary key): fire-once is a compare-and-set on that row in the same transaction that
writes the decision, never an in-memory flag, so two watchers racing, or a watcher restarted,
meet the same row and exactly one wins. SQLite by default, PostgreSQL by setting.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fraudrisk.config import MODEL_URI
from fraudrisk.monitoring.results import DriftResult, PerformanceResult

if TYPE_CHECKING:
    from fraudrisk.training.launch import LaunchResult

Kind = Literal["drift", "performance"]
CheckResult = DriftResult | PerformanceResult
Clock = Callable[[], dt.datetime]

FIRED, SUPPRESSED, NO_TRIGGER, FAILED = "fired", "suppressed", "no_trigger", "failed"
LAUNCHING = "launching"  # a claim (and its decision) while the pipeline runs
SUPPORTED = ("sqlite", "postgresql")

METADATA = sa.MetaData()
DECISIONS = sa.Table(
    "retraining_decisions",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False, index=True),
    sa.Column("decided_at", sa.DateTime, nullable=False, index=True),
    sa.Column("model_uri", sa.String(500), nullable=False),
    sa.Column("report", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(200)),
    sa.Column("run_state", sa.String(32)),
    sa.Column("registered_version", sa.String(32)),
    sa.Column("detail", sa.Text, nullable=False),
)
CLAIMS = sa.Table(
    "retraining_claims",
    METADATA,
    sa.Column("model_name", sa.Text, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
    sa.Column("decision_id", sa.Integer),
)


@dataclass(frozen=True)
class Cause:
    """Why retraining may run: a model name and a kind of check."""

    model_name: str
    kind: Kind

    def __str__(self) -> str:
        return f"{self.model_name}/{self.kind}"


@dataclass(frozen=True)
class Decision:
    """One row of the trigger ledger."""

    id: int
    cause: Cause
    outcome: str
    decided_at: dt.datetime
    model_uri: str
    report: str
    evidence: dict[str, Any]
    run_id: str | None = None
    run_state: str | None = None
    registered_version: str | None = None
    detail: str = ""


def cause_of(result: CheckResult) -> Cause:
    """The cause a check result speaks for (model name from a ``models:/`` URI)."""
    found = MODEL_URI.match(result.model_uri)
    name = found.group("name") if found else result.model_uri
    return Cause(name, "drift" if isinstance(result, DriftResult) else "performance")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TriggerLedger:
    """The trigger ledger and the per-cause claims, in a SQL database (SQLAlchemy URL)."""

    def __init__(self, url: str, clock: Clock = _utc_now) -> None:
        """Open the database at ``url`` and create the tables if missing.

        Raises:
            ValueError: If the URL is not SQLite or PostgreSQL.
        """
        parsed = sa.engine.make_url(url)
        backend = parsed.get_backend_name()
        if backend not in SUPPORTED:
            raise ValueError(f"the trigger ledger supports SQLite and PostgreSQL, not {backend}")
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # a fresh HOME
        self.engine = sa.create_engine(url, future=True)
        self.clock = clock
        if self.engine.dialect.name == "sqlite":
            _serialise_sqlite_writers(self.engine)
        METADATA.create_all(self.engine)

    def record(
        self, cause: Cause, result: CheckResult, report: str, cooldown_hours: float
    ) -> Decision:
        """Write the decision about ``result``: no trigger, or a claim granted or suppressed.

        The claim and the decision are one transaction: of two writers, exactly one is granted.

        Returns:
            The decision: ``no_trigger``, ``suppressed`` or ``launching`` (the claim is ours).
        """
        now = self.clock().astimezone(dt.UTC).replace(tzinfo=None)  # naive UTC in the database
        row = {
            "model_name": cause.model_name,
            "kind": cause.kind,
            "decided_at": now,
            "model_uri": result.model_uri,
            "report": report,
            "detail": "",
            "evidence": json.dumps(evidence_of(result)),
        }
        with self.engine.begin() as connection:
            if not result.triggered:
                row["outcome"] = NO_TRIGGER
            elif self._claim(connection, cause, now, now - dt.timedelta(hours=cooldown_hours)):
                row["outcome"] = LAUNCHING
            else:
                row |= {"outcome": SUPPRESSED, "detail": self._holder(connection, cause)}
            insert = sa.insert(DECISIONS).values(**row).returning(DECISIONS.c.id)
            decision_id = int(connection.execute(insert).scalar_one())
            if row["outcome"] == LAUNCHING:
                connection.execute(_claim_of(cause).values(decision_id=decision_id))
        return self.get(decision_id)

    def _claim(
        self, connection: sa.Connection, cause: Cause, now: dt.datetime, cutoff: dt.datetime
    ) -> bool:
        """Take the cause's claim: a new row, or one whose last firing expired or failed."""
        values = {
            "model_name": cause.model_name,
            "kind": cause.kind,
            "state": LAUNCHING,
            "claimed_at": now,
            "decision_id": None,
        }
        inserted = connection.execute(
            _insert(self.engine.dialect.name, CLAIMS)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["model_name", "kind"])
            .returning(CLAIMS.c.kind)
        )
        if inserted.first() is not None:  # RETURNING, not rowcount: psycopg says -1 here
            return True
        retaken = connection.execute(
            _claim_of(cause)
            .where(sa.or_(CLAIMS.c.state == FAILED, CLAIMS.c.claimed_at <= cutoff))
            .values(state=LAUNCHING, claimed_at=now, decision_id=None)
            .returning(CLAIMS.c.kind)
        )
        return retaken.first() is not None

    def _holder(self, connection: sa.Connection, cause: Cause) -> str:
        """Why a claim was refused: the decision holding it, and since when."""
        held = connection.execute(
            sa.select(CLAIMS.c.decision_id, CLAIMS.c.claimed_at, CLAIMS.c.state).where(
                CLAIMS.c.model_name == cause.model_name, CLAIMS.c.kind == cause.kind
            )
        ).one()
        return f"cool-down: decision {held.decision_id} ({held.state}) at {held.claimed_at:%F %T}"

    def finish(
        self,
        decision: Decision,
        outcome: str,
        launched: LaunchResult | None = None,
        detail: str = "",
    ) -> Decision:
        """Record how a granted launch ended; a failure releases the cause's claim."""
        values: dict[str, Any] = {"outcome": outcome, "detail": detail}
        if launched is not None:
            # kfp.local has no run id: its log (or outputs folder) identifies the run
            local = launched.task_log or launched.outputs
            run_id = launched.run_id or (f"local:{local}" if local else None)
            values |= {
                "run_id": run_id,
                "run_state": launched.state,
                "registered_version": launched.version,
            }
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(DECISIONS).where(DECISIONS.c.id == decision.id).values(**values)
            )
            connection.execute(
                _claim_of(decision.cause)
                .where(CLAIMS.c.decision_id == decision.id)
                .values(state=outcome)
            )
        return self.get(decision.id)

    def get(self, decision_id: int) -> Decision:
        """One decision by id."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(DECISIONS).where(DECISIONS.c.id == decision_id))
            return _decision(row.one())

    def decisions(self, cause: Cause | None = None, outcome: str | None = None) -> list[Decision]:
        """The decisions, oldest first, optionally of one cause and one outcome."""
        query = sa.select(DECISIONS).order_by(DECISIONS.c.id)
        if cause is not None:
            query = query.where(
                DECISIONS.c.model_name == cause.model_name, DECISIONS.c.kind == cause.kind
            )
        if outcome is not None:
            query = query.where(DECISIONS.c.outcome == outcome)
        with self.engine.connect() as connection:
            return [_decision(row) for row in connection.execute(query)]

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def _claim_of(cause: Cause) -> sa.Update:
    return sa.update(CLAIMS).where(
        CLAIMS.c.model_name == cause.model_name, CLAIMS.c.kind == cause.kind
    )


def _decision(row: sa.Row[Any]) -> Decision:
    return Decision(
        id=int(row.id),
        cause=Cause(row.model_name, row.kind),
        outcome=row.outcome,
        decided_at=row.decided_at.replace(tzinfo=dt.UTC),
        model_uri=row.model_uri,
        report=row.report,
        evidence=json.loads(row.evidence),
        run_id=row.run_id,
        run_state=row.run_state,
        registered_version=row.registered_version,
        detail=row.detail,
    )


def _serialise_sqlite_writers(engine: sa.Engine) -> None:
    """WAL, wait on locks, and BEGIN IMMEDIATE: a transaction holds the write lock from its start.

    pysqlite's deferred BEGIN would let two claims read first and then fail to upgrade their
    locks (SQLITE_BUSY without waiting); an immediate transaction makes the second one wait.
    """

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def _insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that can skip conflicting rows (both dialects spell it the same)."""
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](table)


def evidence_of(result: CheckResult) -> dict[str, Any]:
    """The numbers that made the decision, kept in the ledger beside the report path."""
    window = {
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "model_version": result.model_version,
    }
    if isinstance(result, DriftResult):
        return window | {
            "drift_share": result.drift_share,
            "weighted_drift_share": result.weighted_drift_share,
            "drift_verdict": result.drift_verdict,
            "score_drift": result.score_drift,
            "drifted_features": result.drifted_features,
            "report_json": result.report_json,
        }
    return window | {
        "average_precision": result.average_precision,
        "drop": result.drop,
        "expected_average_precision": result.expected_average_precision,
    }
