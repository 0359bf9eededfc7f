"""The stream scorer applies the active policy version live, against a real Kafka broker.

A version is activated (four eyes) mid-stream: the batches after it carry the new version and
decide by it (decision counts change), the batches before it the old one; a shadow version that
declines everything runs beside both and changes no output, while its table fills with
declines.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.support.data import synthetic_frame
from tests.support.models import register_xgboost
from tests.support.stream import produce, read_topic, replay, unique_topics
from tests.unit.cases.case_doubles import CaseWorld
from tests.unit.policy.desk import approved

from fraudrisk.alerts.shadow import ShadowStore
from fraudrisk.config import (
    DatabaseSettings,
    KafkaSettings,
    MlflowSettings,
    PolicySettings,
    Settings,
)
from fraudrisk.io.kafka import ensure_topics
from fraudrisk.jobs.runtime import StreamTotals
from fraudrisk.jobs.stream_job import StreamJob, StreamOptions
from fraudrisk.policy.live import LivePolicy
from fraudrisk.policy.versions import PolicyVersions
from fraudrisk.registry.versions import bootstrap_champion

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
N = 6000
V1 = "name: calm\nthresholds: {review: 0.5, decline: 0.97}\nalert_budget: 100\n"
V2 = V1.replace("calm", "strict") + (
    "rules:\n  - {name: big, when: amount >= 60, action: decline, reason: big amount}\n"
)
V3 = V1.replace("calm", "paranoid") + (
    "rules:\n  - {name: all, when: amount >= 0, action: decline, reason: everything}\n"
)


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("live-home")
    settings = Settings(home=home, mlflow=MlflowSettings())
    version = register_xgboost(settings, synthetic_frame(customers=60, days=40), n_estimators=20)
    bootstrap_champion(settings, version.version)
    return home


def test_activation_mid_stream_changes_later_decisions_and_their_version(
    kafka_settings: KafkaSettings, model_home: Path, desk: tuple[CaseWorld, PolicyVersions]
) -> None:
    made, versions = desk
    first, second, shadow = (approved(desk, t) for t in (V1, V2, V3))
    versions.activate(made.principal("rob"), first)
    kafka = unique_topics(kafka_settings)
    ensure_topics(kafka)
    settings = Settings(
        home=model_home,
        mlflow=MlflowSettings(),
        kafka=kafka,
        db=DatabaseSettings(url=made.url),
        policy=PolicySettings(reload_seconds=0.1, shadow_version=shadow),
    )
    options = StreamOptions(group_id="live", batch_size=500, idle_exit_s=4, transactional_id="l0")
    job = StreamJob.from_settings(settings, options, online_state=False)
    live = job.variants.policy
    assert isinstance(live, LivePolicy) and live.version == first
    produce(kafka, replay(N, bad_every=10**9).messages)
    switched_at: list[int] = []

    def on_batch(totals: StreamTotals) -> None:
        if not switched_at and totals.scored >= N // 2:
            versions.activate(made.principal("rita"), second)  # no restart
            deadline = time.monotonic() + 10
            while live.version != second and time.monotonic() < deadline:
                time.sleep(0.02)
            switched_at.append(totals.scored)

    totals = job.run(on_batch)
    assert totals.scored == N and switched_at
    messages = [json.loads(m) for m in read_topic(kafka, kafka.scores_topic)]
    by_version = Counter(m["policy_version"] for m in messages)
    assert by_version == {first: switched_at[0], second: N - switched_at[0]}
    for m in messages:  # each decided by its own version, never by the shadow
        if m["policy_version"] == first:
            risk = m["risk_score"]
            assert m["decision"] == (
                "decline" if risk >= 0.97 else "review" if risk >= 0.5 else "approve"
            )
        elif m["tx_amount"] >= 60:
            assert m["decision"] == "decline" and m["policy_rules"][0]["rule"] == "big"
    declines = {
        v: sum(m["decision"] == "decline" for m in messages if m["policy_version"] == v) / n
        for v, n in by_version.items()
    }
    assert declines[second] > declines[first] + 0.2  # the counts changed accordingly
    assert live.shadow is not None and live.shadow.drain(30)
    rows = ShadowStore(made.url).read(shadow)
    assert len(rows) == N and {r["shadow_decision"] for r in rows} == {"decline"}
    assert {r["active_version"] for r in rows} == {first, second}
    live.stop()
