"""Optuna studies on a real PostgreSQL server: a tuning run resumes from the database."""

import optuna
import pytest

pytestmark = pytest.mark.integration


def test_optuna_study_persists_and_resumes_in_postgres(postgres_server):
    url = f"{postgres_server}/optuna"
    first = optuna.create_study(study_name="fraud-risk-tune", storage=url, direction="maximize")
    first.optimize(lambda trial: -((trial.suggest_float("x", -3, 3) - 1) ** 2), n_trials=3)
    again = optuna.load_study(study_name="fraud-risk-tune", storage=url)
    again.optimize(lambda trial: -((trial.suggest_float("x", -3, 3) - 1) ** 2), n_trials=2)
    reloaded = optuna.load_study(study_name="fraud-risk-tune", storage=url)
    assert len(reloaded.trials) == 5
    assert reloaded.best_value == max(t.value for t in reloaded.trials)
