"""``make demo``: the main job end to end on embedded defaults (all state under FRAUDRISK_HOME).

1. simulate the handbook dataset into the lake; 2. validate and summarise it (plot);
3. build the features with Spark; 4. register the Feast repo, materialise the online store and
check an online lookup against the batch feature table; 5. run the Kubeflow training pipeline
under ``kfp.local`` (configuration ``pipelines/configs/training.yaml`` with the demo's trial and
time budget, ``bootstrap`` on) and print the registered version, its aliases, its test metrics
beside the book's best and where its plots are; 6. serve the local InferenceService manifest
with a canary of a second model and send it the test week (:mod:`fraudrisk.demo.serving_step`);
7. start Kafka, the stream scorer and the Transaction API, send the test week through the API
and print the throughput, the alerts and their reason codes (:mod:`fraudrisk.demo.stream_step`);
8. put the week's alerts into cases, create the demo users (credentials printed), let a scripted
analyst log in with password + TOTP and resolve the top cases through the case API, and show
the labels on the topic, in the labels table and counted by the performance report
(:mod:`fraudrisk.demo.cases_step`); 9. a risk manager drafts the default policy, a second
approves it, a live stream scorer applies it to half the week; she backtests a budget-optimal
review threshold, her own approval of it is refused, the second approves it and the scorer
applies it without a restart to the other half (:mod:`fraudrisk.demo.policy_step`);
10. change the world for six weeks, let the watcher find the drift and fire retraining once,
and compare the new challenger with the champion on the changed weeks
(:mod:`fraudrisk.demo.drift_step`).
"""

from __future__ import annotations

from functools import partial

from fraudrisk.config import Settings, get_settings
from fraudrisk.demo.cases_step import Credentials, run_cases_step
from fraudrisk.demo.drift_step import run_drift_scenario
from fraudrisk.demo.policy_step import run_policy_step
from fraudrisk.demo.serving_step import serve_with_canary
from fraudrisk.demo.steps import (
    build_feature_table,
    serve_online_features,
    simulate_lake,
    summarise_lake,
    train_model,
)
from fraudrisk.demo.stream_step import StreamOutcome, run_stream_step
from fraudrisk.io.lake import Lake


def run_demo() -> int:
    """Run every stage of the demo; returns an exit code."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    lake = Lake.open(settings.lake_uri, settings.lake)
    simulate_lake(lake)
    if not summarise_lake(lake, settings):
        return 1
    table_uri = settings.feature_table_uri
    build_feature_table(settings, table_uri)
    if not serve_online_features(settings, table_uri):
        return 1
    if not train_model(settings, table_uri):
        return 1
    if not serve_with_canary(settings, table_uri):
        return 1
    if not run_stream_step(settings, table_uri, then=partial(work_cases, settings)):
        return 1
    return 0 if run_drift_scenario(settings, table_uri) else 1


def work_cases(settings: Settings, outcome: StreamOutcome) -> bool:
    """Steps 8 and 9, on step 7's alert store while its broker still runs."""
    week = (outcome.week.first, outcome.week.last)

    def policy(case_settings: Settings, url: str, people: dict[str, Credentials]) -> bool:
        return run_policy_step(case_settings, outcome, url, people)

    return run_cases_step(
        settings, outcome.store_url, outcome.bootstrap, outcome.work, week, then=policy
    )
