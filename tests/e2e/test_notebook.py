"""notebooks/01-launch-training.ipynb executed headless (nbclient) on a small synthetic lake."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from tests.support.data import PERMISSIVE, build_lake

from fraudrisk.config import get_settings
from fraudrisk.registry import versions as registry
from fraudrisk.registry.mlflow_io import mlflow_client

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "01-launch-training.ipynb"


def with_parameters(notebook: nbformat.NotebookNode, **values: object) -> None:
    """Insert an ``injected-parameters`` cell after the ``parameters`` cell (as papermill)."""
    index = next(
        i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])
    )
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)


def outputs_of(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    """Every output of ``mime`` type (``text/plain``, ``image/png``, ...), in cell order."""
    return [
        output["data"][mime]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if mime in output.get("data", {})
    ]


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the cells printed (stream outputs)."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output["output_type"] == "stream"
    )


def test_notebook_launches_the_pipeline_and_shows_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    table_uri, lake_uri = build_lake(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("FRAUDRISK_HOME", str(home))  # the kernel inherits the environment
    monkeypatch.delenv("KFP_HOST", raising=False)
    with_parameters(
        notebook,
        TABLE_URI=table_uri,
        LAKE_URI=lake_uri,
        N_TRIALS=1,
        WINDOW_DAYS=14,
        BOOTSTRAP=True,
        GATE=PERMISSIVE.model_dump(),
    )
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()

    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert registry.get_alias_version(settings, registry.CHAMPION) == "1"
        version = mlflow_client(settings).get_model_version("fraud-risk", "1")
        run = mlflow_client(settings).get_run(str(version.run_id))
        assert 0 < run.data.metrics["average_precision"] <= 1
    finally:
        get_settings.cache_clear()
    text = "\n".join(outputs_of(notebook, "text/plain"))
    assert "version='1'" in text and "state='SUCCEEDED'" in text  # the launch result
    assert "fraud-risk version 1, aliases ['challenger', 'champion']" in printed(notebook)
    html = "\n".join(outputs_of(notebook, "text/html"))
    assert "book best" in html and "0.694" in html  # metrics beside the book's best
    assert "challenger, champion" in html  # the versions table
    shown = [m for m in outputs_of(notebook, "text/markdown") if m.startswith("### ")]
    assert shown == [
        "### feature_importance",
        "### pr_curve",
        "### reliability",
        "### shap_summary",
    ]
    assert len(outputs_of(notebook, "image/png")) == 4
    assert (tmp_path / "home" / "kfp" / "local_outputs").is_dir()
    assert not (tmp_path / "local_outputs").exists()  # kfp.local ran under HOME/kfp
