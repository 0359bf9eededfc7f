"""`fraudrisk demo` (what `make demo` runs) on a fresh FRAUDRISK_HOME."""

import os
import re
import subprocess
import sys

import pytest

from fraudrisk.config import get_settings
from fraudrisk.registry import versions as registry
from fraudrisk.training.steps import BOOK_BEST

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]


def test_demo_runs_lake_features_online_store_and_training(tmp_path, monkeypatch):
    home = tmp_path / "home"
    env = {**os.environ, "FRAUDRISK_HOME": str(home), "COLUMNS": "400"}
    done = subprocess.run(
        [sys.executable, "-m", "fraudrisk", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in (
        "1,754,155",
        "14,681",
        "973",
        "9,077",
        "4,631",
        "all lake checks passed",
        "2018-04-01 → 2018-09-30",
        "registered fraud-risk version 1, aliases: ['challenger', 'champion']",
    ):
        assert expected in out
    plot = home / "reports" / "daily_transactions.png"
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 30_000
    # the handbook's 183 days, then step 9's 42 changed days (features rebuilt over all of them)
    assert len(list((home / "lake").glob("dt=*"))) == 183 + 42
    assert len(list((home / "features").glob("dt=*"))) == 183 + 42
    assert (home / "feast" / "online.db").stat().st_size > 1_000_000
    assert_model_registered(out, home, monkeypatch)
    assert (home / "kfp" / "local_outputs").is_dir()
    assert not (tmp_path / "local_outputs").exists()  # kfp.local ran under HOME, not the cwd
    pipeline = re.search(r"pipeline finished in (\d+) s", out)
    assert pipeline and int(pipeline.group(1)) <= 600  # #4's budget: ≤ 10 minutes on 2 cores
    assert_canary_served(out)
    assert_stream_replayed(out)
    assert_cases_worked(out)
    assert_drift_retrained(out, home)


def assert_canary_served(out):
    """Step 6: a second model got its canary share of the test week, with reason codes."""
    shares = re.search(r"answered by: canary v2: ([\d,]+) \((\d+)%\), champion v1: ([\d,]+)", out)
    assert shares, out[-3000:]
    assert 10 <= int(shares.group(2)) <= 30  # 20 % of the requests, within noise
    assert "highest risks, with their reason codes" in out and "decline" in out
    assert "canary gates:" in out


def assert_stream_replayed(out):
    """Step 7: the test week went through the API and Kafka; each transaction scored once."""
    out = out[out.index("7. stream") :]  # step 6 sent (part of) the same week to the endpoint
    week = r"transactions of the test week \(2018-09-24 → 2018-09-30\)"
    sent = re.search(rf"sent ([\d,]+) {week}", out)
    assert sent, out[-3000:]
    assert int(sent.group(1).replace(",", "")) >= 50_000  # the handbook's week (or the cap)
    scored = re.search(r"scored ([\d,]+) of ([\d,]+) in [\d.]+ s end to end \(([\d,]+) tx/s\)", out)
    assert scored and scored.group(1) == scored.group(2) == sent.group(1), out[-3000:]
    decisions = re.search(r"alerts by decision: review ([\d,]+), decline ([\d,]+)", out)
    assert decisions and all(int(n.replace(",", "")) > 0 for n in decisions.groups())
    assert "top alerts by expected loss" in out and "customer_id_" in out  # reason codes
    agreement = re.search(r"offline feature table's for ([\d.]+) % of ([\d,]+) transactions", out)
    assert agreement and float(agreement.group(1)) >= 99.9, out[-3000:]


def assert_model_registered(out, home, monkeypatch):
    """Version 1 is champion; its test metrics are printed beside the book's, plots on disk."""
    line = re.search(r"test folds \(mean\): (.*)", out)
    assert line, out[-2000:]
    printed = {m: float(v) for m, v in re.findall(r"(\w+) (0\.\d+) \(book", line.group(1))}
    assert set(printed) == set(BOOK_BEST)
    assert f"(book {BOOK_BEST['average_precision']:.3f})" in line.group(1)
    monkeypatch.setenv("FRAUDRISK_HOME", str(home))
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert registry.get_alias_version(settings, registry.CHAMPION) == "1"
        metrics = registry.champion_metrics(settings)
    finally:
        get_settings.cache_clear()
    assert metrics is not None
    assert printed["average_precision"] == pytest.approx(metrics["average_precision"], abs=5e-4)
    assert metrics["average_precision"] > BOOK_BEST["average_precision"]
    for name in ("pr_curve", "reliability", "shap_summary", "feature_importance"):
        assert (
            home / "reports" / "fraud-risk-v1" / "plots" / f"{name}.png"
        ).stat().st_size > 10_000


def assert_cases_worked(out):
    """Step 8: alerts in cases, resolved by the demo analyst, labels back and counted."""
    out = out[out.index("8. cases") :]
    ingested = re.search(r"case ingester: ([\d,]+) alerts → ([\d,]+) cases", out)
    assert ingested and int(ingested.group(2).replace(",", "")) > 0, out[-3000:]
    assert re.search(r"ana +analyst +password \S+ +TOTP seed [A-Z2-7]+", out)
    assert re.search(r"│ \w+ = [\d.]+ \(usually [\d.e+-]+\)", out)  # the customer's baseline
    labels = re.search(r"labels: (\d+) transactions resolved → (\d+) in .* (\d+) on the", out)
    assert labels and labels.group(1) == labels.group(2) == labels.group(3), out[-3000:]
    assert re.search(rf"on labels from {labels.group(1)} analyst, [\d,]+ lake", out)


def assert_drift_retrained(out, home):
    """Step 9: no trigger before the change, drift fires retraining once, then a cool-down."""
    decisions = re.findall(r"│ drift\s+│ (\S+)\s+│.*?│ (no_trigger|fired|suppressed)", out)
    assert [d for _, d in decisions] == ["no_trigger", "fired", "suppressed"], decisions
    assert [w for w, _ in decisions][1] == "2018-10-01..2018-10-03"
    fired = re.search(r"retraining triggered once \(cause fraud-risk/drift\); report: (\S+)", out)
    assert fired, out[-3000:]
    report = home / "monitoring" / "reports" / "fraud-risk_v1_lake_2018-10-01_2018-10-03.html"
    assert fired.group(1) == str(report) and report.stat().st_size > 10_000
    assert report.with_suffix(".json").is_file()
    version = re.search(r"new challenger: fraud-risk version (\d+)", out)
    assert version and int(version.group(1)) >= 3  # after v1 (champion) and step 6's v2
    # The default gate, champion and challenger scored on the same (changed) hold-out week.
    gate = re.search(r"gate: passed, head-to-head with champion v1 on the hold-out 2018-1", out)
    assert gate, out[-3000:]
    rows = dict(re.findall(r"│ (champion|challenger v\d+)\s+│ \d+\s+│ (0\.\d+)", out))
    assert float(rows[f"challenger v{version.group(1)}"]) > float(rows["champion"]) + 0.2
