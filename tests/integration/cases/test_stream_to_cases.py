"""Stream scorer → alert store → cases, exactly once, while both sides are SIGKILLed (#13).

A replay of 16,000 transactions goes through the stream scorer (real Kafka) into the case
database (real PostgreSQL, the alert store's tables beside the case tables); the review
threshold sits just above the model's lowest risk step, so about three transactions in four
alert (review or decline): more than 10,000 alerts. While it runs, case ingestion runs beside
it as processes of their own. Both sides die:

- the scorer is SIGKILLed from outside at 35 % of the scores, then kills itself right after
  its third sink write, before the Kafka commit (the batch is replayed on restart); a third
  scorer finishes the log;
- the first ingester (``fraudrisk cases ingest --every 0.2``) is SIGKILLed while its database
  session is inside a transaction; the second (``dying_ingester.py``, the same ingester) kills
  itself inside its second batch, after writing the cases and before marking the alerts; a
  third ``cases ingest --every`` ingests until the scorers are done, stops on SIGTERM, and a
  last ``fraudrisk cases ingest`` runs once.

Then :func:`reconcile` must find every alert in exactly one case, no case row of no alert,
every case's count and priority those of its alerts, and one alert per review/decline score.
The negative control runs the same ingesters (6,000 transactions, the scorer not killed: each
scorer restart waits ~40 s for the dead member's Kafka session to expire) with the dying one
replaced by a variant that marks the alerts and writes their cases in two transactions, killed
between them: :func:`reconcile` reports exactly the alerts of that batch lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.support.data import synthetic_frame
from tests.support.models import register_xgboost
from tests.support.stream import Replay, kafka_env, produce, replay, unique_topics
from tests.unit.cases.case_doubles import inconsistent_cases

from fraudrisk.alerts.store import ALERTS, SCORES
from fraudrisk.alerts.store import METADATA as ALERT_STORE_TABLES
from fraudrisk.cases.tables import CASE_ALERTS, CASES
from fraudrisk.config import KafkaSettings, MlflowSettings, Settings
from fraudrisk.io.database import create_engine, upgrade
from fraudrisk.io.kafka import ensure_topics
from fraudrisk.jobs.stream_job import CRASH_AFTER_SINK_ENV
from fraudrisk.registry.versions import bootstrap_champion
from fraudrisk.vocab import ALERT_DECISIONS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

N, NEGATIVE_N = 16_000, 6_000
#: Just above the model's lowest risk step (0): about three transactions in four alert.
REVIEW_THRESHOLD = "0.005"
SCORER_BATCH, INGEST_BATCH = 1_000, 250
INGESTER_APP = "case-ingester"  # application_name of the CLI ingesters' sessions
DYING_INGESTER = Path(__file__).with_name("dying_ingester.py")


@dataclass
class Process:
    """A process the test started, with its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        """The end of its log (for failure messages)."""
        return f"--- {self.name} ---\n{self.log.read_text(errors='replace')[-3000:]}"

    def exit_code(self, timeout_s: float) -> int:
        """Wait for it to exit (bounded); its return code."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} did not exit in {timeout_s} s\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL it and reap it."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)


@dataclass
class Pipeline:
    """One test's scorers and ingesters: processes on its topics and the case database."""

    kafka: KafkaSettings
    env: dict[str, str]
    engine: Engine
    logs: Path
    group: str = field(default_factory=lambda: f"scorers-{uuid.uuid4().hex[:6]}")
    started: list[Process] = field(default_factory=list)

    def _start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Process:
        log = self.logs / f"{len(self.started):02d}-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command, env=env or self.env, stdout=out, stderr=subprocess.STDOUT
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def scorer(self, crash_after: int | None = None) -> Process:
        """A stream scorer (``crash_after``: it SIGKILLs itself after that many sink writes)."""
        env = dict(self.env)
        if crash_after is not None:
            env[CRASH_AFTER_SINK_ENV] = str(crash_after)
        command = [sys.executable, "-m", "fraudrisk", "stream", "score", "--no-online-state"]
        command += ["--idle-exit", "3", "--kafka-call-timeout", "15", "--group", self.group]
        command += ["--transactional-id", f"{self.group}-0", "--batch-size", str(SCORER_BATCH)]
        return self._start("scorer", command, env)

    def cli_ingester(self) -> Process:
        """``fraudrisk cases ingest --every 0.2``, its sessions named :data:`INGESTER_APP`."""
        url = f"{self.env['FRAUDRISK_DB__URL']}?application_name={INGESTER_APP}"
        command = [sys.executable, "-m", "fraudrisk", "cases", "ingest", "--every", "0.2"]
        return self._start("ingester", command, {**self.env, "FRAUDRISK_DB__URL": url})

    def dying_ingester(self, split: bool) -> Process:
        """:mod:`dying_ingester`: dies in its second batch (``split``: the negative control)."""
        command = [sys.executable, str(DYING_INGESTER), "--die-in-batch", "2"]
        return self._start("dying-ingester", command + ["--split-transactions"] * split)

    def ingest_once(self) -> str:
        """``fraudrisk cases ingest`` once; its output."""
        command = [sys.executable, "-m", "fraudrisk", "cases", "ingest"]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    def scored(self) -> int:
        """Rows of the ``scores`` table."""
        with self.engine.connect() as connection:
            return _count(connection, sa.select(SCORES.c.transaction_id))

    def cased(self) -> int:
        """Rows of the ``case_alerts`` table."""
        with self.engine.connect() as connection:
            return _count(connection, sa.select(CASE_ALERTS.c.transaction_id))

    def ingester_in_transaction(self) -> bool:
        """Whether a CLI ingester's session is inside a transaction right now."""
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
            " AND state IN ('active', 'idle in transaction')"
        )
        with self.engine.connect() as connection:
            return bool(connection.execute(query, {"app": INGESTER_APP}).scalar())

    def stop_all(self) -> None:
        """SIGKILL every process still running (the test's ``finally``)."""
        for process in self.started:
            if process.popen.poll() is None:
                process.kill()


def wait_until(
    condition: Callable[[], bool], what: str, watching: Process, timeout_s: float = 180
) -> None:
    """Poll ``condition`` until true; fail if ``watching`` exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert watching.popen.poll() is None, f"{watching.name} exited early\n{watching.tail()}"
        assert time.monotonic() < deadline, f"not {what} in {timeout_s} s\n{watching.tail()}"
        time.sleep(0.01)


# ------------------------------------------------------------------------------ the checker
@dataclass
class Reconciliation:
    """What the scores, alerts, cases and case alerts say about each other."""

    transactions: int
    scores: int
    flagged_scores: int
    alerts: int
    open_alerts: int
    cases: int
    case_alerts: int
    unscored: int
    lost: list[int]
    duplicated: dict[int, int]
    orphans: int
    unmatched: int
    inconsistent_cases: int

    def problems(self) -> list[str]:
        """Every way the exactly-once effect is broken (empty when it holds)."""
        found = {
            "transactions never scored": self.unscored,
            "scores beyond the transactions": self.scores - (self.transactions - self.unscored),
            "alerts in no case (lost)": len(self.lost),
            "alerts in a case twice (duplicated)": len(self.duplicated),
            "case alerts of no alert": self.orphans,
            "review/decline scores and alerts that do not pair up": self.unmatched,
            "cases whose count or priority is not their alerts'": self.inconsistent_cases,
            "alerts still open": self.open_alerts,
        }
        return [f"{count} {what}" for what, count in found.items() if count]

    def summary(self) -> str:
        """The counts, one line."""
        return (
            f"{self.transactions:,} transactions, {self.scores:,} scores "
            f"({self.flagged_scores:,} review/decline), {self.alerts:,} alerts, "
            f"{self.case_alerts:,} case alerts in {self.cases:,} cases; "
            f"problems: {self.problems() or 'none'}"
        )


def _count(connection: sa.Connection, query: sa.Select[Any]) -> int:
    """Rows of ``query``."""
    counted = sa.select(sa.func.count()).select_from(query.subquery())
    return int(connection.execute(counted).scalar_one())


def _unmatched(connection: sa.Connection) -> int:
    """Review/decline scores without their alert, and alerts without such a score."""
    flagged = SCORES.c.decision.in_(ALERT_DECISIONS)
    paired = ALERTS.c.transaction_id == SCORES.c.transaction_id
    both = SCORES.outerjoin(ALERTS, paired, full=True)
    query = sa.select(SCORES.c.transaction_id, ALERTS.c.transaction_id).select_from(both)
    alone = query.where(
        sa.or_(
            sa.and_(flagged, ALERTS.c.transaction_id.is_(None)),
            sa.and_(ALERTS.c.transaction_id.is_not(None), SCORES.c.transaction_id.is_(None)),
            sa.and_(ALERTS.c.transaction_id.is_not(None), ~flagged),
            ALERTS.c.decision != SCORES.c.decision,
        )
    )
    return _count(connection, alone)


def reconcile(engine: Engine, expected: frozenset[int]) -> Reconciliation:
    """Check every alert against the cases (the test's one checker, for both outcomes)."""
    linked = ALERTS.outerjoin(CASE_ALERTS, CASE_ALERTS.c.transaction_id == ALERTS.c.transaction_id)
    orphaned = CASE_ALERTS.outerjoin(
        ALERTS, CASE_ALERTS.c.transaction_id == ALERTS.c.transaction_id
    )
    with engine.connect() as connection:
        scored = set(connection.execute(sa.select(SCORES.c.transaction_id)).scalars())
        lost = connection.execute(
            sa.select(ALERTS.c.transaction_id)
            .select_from(linked)
            .where(CASE_ALERTS.c.transaction_id.is_(None))
        )
        duplicated = connection.execute(
            sa.select(CASE_ALERTS.c.transaction_id, sa.func.count())
            .group_by(CASE_ALERTS.c.transaction_id)
            .having(sa.func.count() > 1)
        )
        return Reconciliation(
            transactions=len(expected),
            scores=len(scored),
            flagged_scores=_count(
                connection, sa.select(SCORES).where(SCORES.c.decision.in_(ALERT_DECISIONS))
            ),
            alerts=_count(connection, sa.select(ALERTS)),
            open_alerts=_count(connection, sa.select(ALERTS).where(ALERTS.c.status == "open")),
            cases=_count(connection, sa.select(CASES)),
            case_alerts=_count(connection, sa.select(CASE_ALERTS)),
            unscored=len(expected - scored),
            lost=sorted(lost.scalars()),
            duplicated={int(tx): int(n) for tx, n in duplicated},
            orphans=_count(
                connection,
                sa.select(CASE_ALERTS.c.transaction_id)
                .select_from(orphaned)
                .where(ALERTS.c.transaction_id.is_(None)),
            ),
            unmatched=_unmatched(connection),
            inconsistent_cases=len(inconsistent_cases(engine)),
        )


# ------------------------------------------------------------------------------ the story
def score_with_two_kills(pipeline: Pipeline, n: int) -> None:
    """SIGKILL at 35 % of the scores, a crash after the 3rd sink write, then to the end."""
    first = pipeline.scorer()
    wait_until(lambda: pipeline.scored() >= 0.35 * n, "35 % scored", first)
    first.kill()
    print(f"scorer SIGKILLed at {pipeline.scored():,} scores")
    crashed = pipeline.scorer(crash_after=3)
    assert crashed.exit_code(180) == -signal.SIGKILL, crashed.tail()
    score_to_the_end(pipeline, n)


def score_to_the_end(pipeline: Pipeline, n: int) -> None:
    """One scorer, until the log is read (its idle exit)."""
    last = pipeline.scorer()
    assert last.exit_code(300) == 0, last.tail()


def ingest_with_two_kills(
    pipeline: Pipeline, n: int, scoring_done: threading.Event, split: bool
) -> str:
    """Ingesters beside the scorers: one SIGKILLed mid-transaction, one dying in a batch."""
    first = pipeline.cli_ingester()
    wait_until(lambda: pipeline.scored() >= 0.15 * n, "15 % scored", first)
    wait_until(lambda: pipeline.cased() > 0, "ingesting", first, 60)
    wait_until(pipeline.ingester_in_transaction, "inside a transaction", first, 30)
    first.kill()
    at = f"{pipeline.scored():,} scores, {pipeline.cased():,} case alerts"
    print(f"ingester SIGKILLed in a transaction at {at}")
    dying = pipeline.dying_ingester(split)
    assert dying.exit_code(180) == -signal.SIGKILL, dying.tail()
    last = pipeline.cli_ingester()
    assert scoring_done.wait(420), "the scorers did not finish"
    wait_until(lambda: "until SIGTERM" in last.log.read_text(), "looping", last, 60)
    last.popen.send_signal(signal.SIGTERM)
    assert last.exit_code(60) == 0, last.tail()
    return last.log.read_text().strip().splitlines()[-1]


def run_story(
    pipeline: Pipeline,
    transactions: Replay,
    score: Callable[[Pipeline, int], None],
    split: bool = False,
) -> Reconciliation:
    """Scoring and ingestion side by side; then a last ingest and the reconciliation."""
    n = len(transactions.valid_ids)
    scoring_done = threading.Event()
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        ingesting = pool.submit(ingest_with_two_kills, pipeline, n, scoring_done, split)
        try:
            score(pipeline, n)
        except BaseException:
            pipeline.stop_all()  # the ingesters' thread then fails at once, not at its timeouts
            raise
        finally:
            scoring_done.set()
        print(f"ingester stopped: {ingesting.result(timeout=120)}")
    print(f"last ingest: {pipeline.ingest_once()}")
    outcome = reconcile(pipeline.engine, transactions.valid_ids)
    print(f"{time.monotonic() - started:.0f} s: {outcome.summary()}")
    return outcome


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("stream-to-cases-home")
    settings = Settings(home=home, mlflow=MlflowSettings())
    version = register_xgboost(settings, synthetic_frame(customers=60, days=40), n_estimators=30)
    bootstrap_champion(settings, version.version)
    return home


@pytest.fixture(scope="module")
def migrated(case_db: str) -> Iterator[Engine]:
    """The module's case database, migrated, with the alert store's tables."""
    engine = create_engine(case_db)
    upgrade(engine)
    ALERT_STORE_TABLES.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def pipeline(
    migrated: Engine,
    case_db: str,
    kafka_settings: KafkaSettings,
    model_home: Path,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    """Fresh topics, an empty case database; every process stopped afterwards."""
    kafka = unique_topics(kafka_settings)
    ensure_topics(kafka)
    env = {
        **os.environ,
        **kafka_env(kafka),
        "FRAUDRISK_HOME": str(model_home),
        "FRAUDRISK_DB__URL": case_db,
        "FRAUDRISK_SERVING__REVIEW_THRESHOLD": REVIEW_THRESHOLD,
        "FRAUDRISK_CASES__INGEST_BATCH": str(INGEST_BATCH),
    }
    made = Pipeline(kafka, env, migrated, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()
        with migrated.begin() as connection:  # the next test starts from no score, no case
            connection.exec_driver_sql("TRUNCATE cases, alerts, scores CASCADE")  # + referrers


# ------------------------------------------------------------------------------ the tests
def test_every_alert_lands_in_exactly_one_case_through_four_kills(pipeline: Pipeline) -> None:
    transactions = replay(N)
    produce(pipeline.kafka, transactions.messages)
    outcome = run_story(pipeline, transactions, score_with_two_kills)
    assert outcome.problems() == [], outcome.summary()
    assert outcome.alerts >= 10_000, outcome.summary()
    assert outcome.alerts == outcome.flagged_scores == outcome.case_alerts
    assert outcome.scores == N and not outcome.lost and not outcome.duplicated
    assert 0 < outcome.cases <= outcome.alerts


def test_negative_control_marking_before_casing_loses_the_killed_batch(
    pipeline: Pipeline,
) -> None:
    transactions = replay(NEGATIVE_N)
    produce(pipeline.kafka, transactions.messages)
    outcome = run_story(pipeline, transactions, score_to_the_end, split=True)
    problems = outcome.problems()
    assert problems == [f"{len(outcome.lost)} alerts in no case (lost)"], outcome.summary()
    assert 0 < len(outcome.lost) <= INGEST_BATCH
    with pipeline.engine.connect() as connection:  # lost as "taken": marked, in no case
        statuses = connection.execute(
            sa.select(ALERTS.c.status).distinct().where(ALERTS.c.transaction_id.in_(outcome.lost))
        )
        assert list(statuses.scalars()) == ["cased"]
    assert outcome.case_alerts == outcome.alerts - len(outcome.lost)
