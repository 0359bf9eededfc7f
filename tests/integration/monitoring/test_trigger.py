"""The retraining trigger across processes: a restarted watcher process, a real kfp.local launch."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.unit.monitoring.test_trigger import db_url, make_trigger
from tests.unit.monitoring.trigger_fixtures import (
    T0,
    RecordingLauncher,
    drift,
)

from fraudrisk.monitoring.ledger import FIRED, SUPPRESSED, TriggerLedger
from fraudrisk.monitoring.trigger import CAUSE_TAG, REPORT_TAG, RetrainingTrigger, TriggerOptions

pytestmark = pytest.mark.integration


RESTART_SCRIPT = """
import datetime as dt, sys
from fraudrisk.config import Settings
from fraudrisk.monitoring.results import DriftResult
from fraudrisk.monitoring.ledger import TriggerLedger
from fraudrisk.monitoring.trigger import RetrainingTrigger, TriggerOptions
url, now, result = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2]), sys.argv[3]
launches = []
ledger = TriggerLedger(url, clock=lambda: now)
trigger = RetrainingTrigger(Settings(), ledger, TriggerOptions(cooldown_hours=168),
                            launcher=launches.append, tagger=lambda *_: None)
print(trigger.decide(DriftResult.model_validate_json(result), "/r.html").outcome, len(launches))
"""


def test_a_watcher_restarted_as_a_new_process_does_not_fire_twice(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    assert make_trigger(tmp_path, launcher).decide(drift(True), "/r.html").outcome == FIRED
    later = (T0 + dt.timedelta(hours=5)).isoformat()  # within the week of cool-down
    arguments = [db_url(tmp_path), later, drift(True).model_dump_json()]
    done = subprocess.run(
        [sys.executable, "-c", RESTART_SCRIPT, *arguments],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == [SUPPRESSED, "0"]
    assert len(launcher.configs) == 1


@pytest.mark.slow
@pytest.mark.integration
def test_a_real_kfp_local_launch_registers_a_tagged_challenger_never_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default launcher: kfp.local trains on a small lake; the gate makes it challenger."""
    from tests.support.data import PERMISSIVE, build_lake

    from fraudrisk.config import get_settings
    from fraudrisk.registry import versions as registry
    from fraudrisk.registry.mlflow_io import mlflow_client

    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KFP_HOST", raising=False)
    get_settings.cache_clear()
    try:
        table_uri, lake_uri = build_lake(tmp_path, customers=100)
        config = tmp_path / "training.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "table_uri": table_uri,
                    "lake_uri": lake_uri,
                    "n_trials": 1,
                    "timeout_s": 0.0,
                    "window_days": 14,
                    "bootstrap": True,  # the trigger turns it off
                    "gate": PERMISSIVE.model_dump(),
                }
            )
        )
        settings = get_settings()
        ledger = TriggerLedger(settings.db_url)
        trigger = RetrainingTrigger(settings, ledger, TriggerOptions(168, training_config=config))
        fired = trigger.decide(drift(True), "/reports/drift.html")
        assert fired.outcome == FIRED, fired.detail
        assert (
            fired.registered_version == "1" and fired.run_id and fired.run_id.startswith("local:")
        )
        assert registry.get_alias_version(settings, registry.CHALLENGER) == "1"
        assert registry.get_alias_version(settings, registry.CHAMPION) is None
        tags = mlflow_client(settings).get_model_version("fraud-risk", "1").tags
        assert tags[CAUSE_TAG] == "drift" and tags[REPORT_TAG] == "/reports/drift.html"
        assert trigger.decide(drift(True), "/reports/drift.html").outcome == SUPPRESSED
        ledger.close()
    finally:
        get_settings.cache_clear()
