"""The Evidently workspace: every drift report's snapshot, one project per model name.

``settings.monitoring.workspace`` is a folder (default ``HOME/monitoring/workspace``) or the
URL of a running Evidently UI service. A project is created on first use with a dashboard of
the history: share of drifted features, risk-score PSI and drift, rows per report.
``fraudrisk monitor ui`` runs Evidently's own UI service (``evidently ui``) over the folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from fraudrisk.config import Settings
from fraudrisk.errors import MonitoringError
from fraudrisk.registry.references import SCORE_COLUMN

#: Evidently's UI phones home unless this is set; nothing here leaves the machine.
NO_TELEMETRY = {"DO_NOT_TRACK": "1"}
_REMOTE = ("http://", "https://")


def workspace_location(settings: Settings) -> str:
    """The workspace folder or URL (default ``HOME/monitoring/workspace``)."""
    return settings.monitoring_workspace


def is_remote(location: str) -> bool:
    """Whether the workspace is an Evidently UI service (URL) rather than a folder."""
    return location.startswith(_REMOTE)


def open_workspace(settings: Settings) -> Any:
    """A local ``Workspace`` on the folder, or a ``RemoteWorkspace`` on the URL."""
    from evidently.ui.workspace import RemoteWorkspace, Workspace  # type: ignore[import-untyped,unused-ignore]

    location = workspace_location(settings)
    if is_remote(location):
        return RemoteWorkspace(location)
    Path(location).mkdir(parents=True, exist_ok=True)
    return Workspace(location)


def add_snapshot(settings: Settings, model_name: str, snapshot: Any, name: str) -> str:
    """Add a report's snapshot to the model's project (created with its dashboard if new).

    Returns:
        The snapshot's id in the workspace.
    """
    location = workspace_location(settings)
    if is_remote(location):
        return _add(open_workspace(settings), model_name, snapshot, name)
    from filelock import FileLock  # deferred: filelock comes with evidently (monitoring extra)

    Path(location).mkdir(parents=True, exist_ok=True)
    # Two reports of one model at once must not both create its project.
    with FileLock(str(Path(location) / ".fraudrisk-projects.lock"), timeout=60):
        return _add(open_workspace(settings), model_name, snapshot, name)


def _add(workspace: Any, model_name: str, snapshot: Any, name: str) -> str:
    found = workspace.search_project(model_name)
    project = found[0] if found else _create_project(workspace, model_name)
    ref = workspace.add_run(project.id, snapshot, include_data=False, name=name)
    return str(ref.id)


def _create_project(workspace: Any, model_name: str) -> Any:
    from evidently.sdk.models import PanelMetric  # type: ignore[import-untyped,unused-ignore]
    from evidently.sdk.panels import counter_panel, line_plot_panel  # type: ignore[import-untyped,unused-ignore]

    project = workspace.create_project(
        model_name, description=f"Drift of {model_name} against each version's reference"
    )
    drifted = PanelMetric(
        legend="share", metric="DriftedColumnsCount", metric_labels={"value_type": "share"}
    )
    psi = PanelMetric(
        legend="PSI", metric="ValueDrift", metric_labels={"column": SCORE_COLUMN, "method": "psi"}
    )
    panels = [
        counter_panel("Share of drifted features (last report)", [drifted], size="half"),
        counter_panel(
            "Rows compared (last report)",
            [PanelMetric(legend="rows", metric="RowCount")],
            size="half",
        ),
        line_plot_panel("Share of drifted features", [drifted]),
        line_plot_panel("Risk-score PSI", [psi]),
    ]
    for panel in panels:
        project.dashboard.add_panel(panel)
    return project


def ui_command(settings: Settings, host: str, port: int) -> list[str]:
    """The ``evidently ui`` command serving the local workspace.

    Raises:
        MonitoringError: If the workspace is a remote service (it has its own UI).
    """
    location = workspace_location(settings)
    if is_remote(location):
        raise MonitoringError(f"the workspace is the Evidently service at {location}: open it")
    Path(location).mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).with_name("evidently")
    program = str(beside) if beside.exists() else shutil.which("evidently")
    if program is None:
        raise MonitoringError("the `evidently` command is not installed (extra: monitoring)")
    return [program, "ui", "--workspace", location, "--host", host, "--port", str(port)]


def ui_environment() -> dict[str, str]:
    """The environment of the UI service: this one, with Evidently's telemetry off."""
    return os.environ | NO_TELEMETRY


def run_ui(command: list[str]) -> int:
    """Run the UI service until it exits, Ctrl-C or SIGTERM (passed on to it); its exit code.

    Terminating this process terminates the service too: it is never left running alone.
    """
    service = subprocess.Popen(command, env=ui_environment())

    def stop(signum: int, frame: Any) -> None:
        service.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return service.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to the service too
        service.terminate()
        service.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
