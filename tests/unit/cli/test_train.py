"""``fraudrisk train`` and ``fraudrisk evaluate`` on a small 183-day synthetic lake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.data import build_lake
from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.config import get_settings

KEYS = {"auc_roc", "average_precision", "card_precision_at_100"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("training-cli")
    patch = pytest.MonkeyPatch()
    patch.setenv("FRAUDRISK_HOME", str(root / "home"))
    patch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield root
    patch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def lake(home: Path) -> tuple[str, str]:
    return build_lake(home)


@pytest.fixture(scope="module")
def trained(home: Path, lake: tuple[str, str]) -> str:
    table_uri, lake_uri = lake
    args = ["train", "--table", table_uri, "--lake", lake_uri, "--recipe", "XGBOOST_ALL_FEATURES"]
    result = CliRunner().invoke(app, [*args, "--workdir", str(home / "work")])
    assert result.exit_code == 0, result.output
    return result.output


def test_train_prints_version_gate_and_book_comparison(trained: str) -> None:
    assert "models:/fraud-risk/1" in trained
    assert "passed" in trained or "rejected" in trained
    assert "0.694" in trained  # the book's best AP beside ours


def test_evaluate_model_prints_the_protocol_json(trained: str, lake: tuple[str, str]) -> None:
    table_uri, lake_uri = lake
    args = ["evaluate", "--model", "models:/fraud-risk/1", "--lake", lake_uri]
    result = CliRunner().invoke(
        app, [*args, "--table", table_uri, "--protocol", "handbook", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"baseline", "test_folds"}
    assert set(data["baseline"]) == KEYS
    assert set(data["test_folds"]) == {"mean", "std"}
    assert set(data["test_folds"]["mean"]) == KEYS == set(data["test_folds"]["std"])


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_missing_feature_table_exits_2_with_a_hint(
    command: str, home: Path, lake: tuple[str, str]
) -> None:
    args = [command, "--table", str(home / "nowhere"), "--lake", lake[1]]
    if command == "evaluate":
        args += ["--recipe", "TUNED_56DAY"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "fraudrisk features build" in result.output
    assert len(result.output.strip().splitlines()) == 1
