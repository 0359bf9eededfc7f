"""The local InferenceService runner: one ModelServer process serving what a manifest asks.

The stable and candidate models of the manifest (see :mod:`fraudrisk.serving.manifest`) are
served side by side in one process and split as KServe would split revisions. The manifest file
is watched: when ``fraudrisk canary`` rewrites it (start, promote, rollback), the new models are
loaded in the background and swapped in once ready — the old split serves until then.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from fraudrisk.serving.manifest import ManifestError, ServingPlan, load_plan
from fraudrisk.serving.router import TrafficSplit
from fraudrisk.serving.variants import ServedVariants, ServiceSpec
from fraudrisk.vocab import CANARY, SHADOW

log = logging.getLogger(__name__)


def spec_from_plan(plan: ServingPlan) -> ServiceSpec:
    """The service spec of a plan: the stable route, the candidate and the split."""
    stable = plan.routes[0].model_uri
    percent = plan.canary_percent if plan.canary_percent is not None else 100
    if plan.candidate_uri is None:
        return ServiceSpec(stable, None, TrafficSplit(CANARY, 0, plan.ab_key), plan.name)
    split = TrafficSplit(plan.mode, 0 if plan.mode == SHADOW else percent, plan.ab_key)
    return ServiceSpec(stable, plan.candidate_uri, split, plan.name)


def apply_env(plan: ServingPlan) -> list[str]:
    """Export the manifest's settings (its env and ConfigMaps) unless the shell sets them.

    Returns:
        The names exported.
    """
    exported = [name for name in plan.env if name not in os.environ]
    for name in exported:
        os.environ[name] = plan.env[name]
    return exported


class ManifestWatcher:
    """Polls a manifest file and reconfigures the model when its content changes."""

    def __init__(
        self, path: Path, model: ServedVariants, interval_s: float = 1.0, seen: str | None = None
    ) -> None:
        """Watch ``path`` for ``model`` every ``interval_s`` seconds.

        Args:
            path: The manifest file.
            model: The variants to reconfigure.
            interval_s: Seconds between checks.
            seen: The text ``model`` serves (default: the file now); a worker process passes
                the text its parent read, so a change made while it started is applied.
        """
        self.path = path
        self.model = model
        self.interval_s = interval_s
        self._seen = path.read_text() if seen is None else seen
        self._stop = threading.Event()

    def check(self) -> bool:
        """Apply the file if it changed since last seen; True when a new spec now serves."""
        text = self.path.read_text()
        if text == self._seen:
            return False
        try:
            spec = spec_from_plan(load_plan(self.path))
        except ManifestError as error:
            self._seen = text  # unusable until edited again: say so once
            log.error(
                "manifest %s changed but is not usable, still serving %s: %s",
                self.path,
                self.model.describe(),
                error,
            )
            return False
        log.info("manifest %s changed: loading %s", self.path, spec)
        applied = self.model.reconfigure(spec)
        if applied:  # a failed load (e.g. MLflow unreachable) is retried at the next check
            self._seen = text
        return applied

    def start(self) -> threading.Thread:
        """Watch in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.check()
                except OSError as error:
                    log.error("cannot read manifest %s: %s", self.path, error)

        thread = threading.Thread(target=loop, name="manifest-watcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
