"""The dashboard's front-end assets (htmx, ECharts), vendored from npm at build time.

``npm ci`` of ``dashboard/npm/package.json`` + ``package-lock.json`` runs once into
``$XDG_CACHE_HOME/fraudrisk/dashboard-assets/<checksum of the two>/`` (default ``~/.cache``),
outside the repository, and the dist files the pages load are copied beside it into
``vendor/``, which the app serves under ``/static/vendor/``. A second run finds them there and
installs nothing; a changed pin installs beside the old one. The install goes to a temporary
folder renamed into place, so an interrupted or concurrent one never leaves half a tree.

Nothing is fetched at run time: a page never names a CDN, and production (possibly
air-gapped) builds the assets with ``make assets`` (``python -m fraudrisk.dashboard.assets``)
when its image is built. ``axe-core`` (a dev dependency of the same lockfile) is for the
browser tests, which inject it; it is never served.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

PINNED = ("package.json", "package-lock.json")
#: What the pages load: the served name → its path inside ``node_modules``.
VENDORED = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "echarts.min.js": "echarts/dist/echarts.min.js",
}
#: axe-core's browser build, for the accessibility checks of the browser tests.
AXE = "axe-core/axe.min.js"
NPM_TIMEOUT_S = 600


class AssetBuildError(RuntimeError):
    """npm is missing, or ``npm ci`` failed."""


def _npm_folder() -> Path:
    return Path(str(resources.files("fraudrisk.dashboard") / "npm"))


def checksum() -> str:
    """The SHA-256 (first 16 hex digits) of the pinned files."""
    digest = hashlib.sha256()
    for name in PINNED:
        digest.update((_npm_folder() / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Where the installs are kept: ``$XDG_CACHE_HOME/fraudrisk/dashboard-assets``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fraudrisk" / "dashboard-assets"


def build_dir() -> Path:
    """The install of the current pins (it may not exist yet)."""
    return cache_root() / checksum()


def vendor_dir() -> Path:
    """Where the served files of the current pins are (it may not exist yet)."""
    return build_dir() / "vendor"


def is_built() -> bool:
    """Whether every vendored file of the current pins is in place."""
    return all((vendor_dir() / name).is_file() for name in VENDORED)


def ensure_built() -> Path:
    """The vendor folder of the current pins, installed and copied if missing.

    Raises:
        AssetBuildError: If npm is missing or ``npm ci`` fails.
    """
    if is_built():
        return vendor_dir()
    npm = shutil.which("npm")
    if npm is None:
        raise AssetBuildError(
            "npm is not installed: the dashboard's assets are built with it "
            "(Debian: apt-get install nodejs npm, or `make sysdeps`)"
        )
    cache_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=cache_root()))
    try:
        _install(npm, staging)
        try:
            if build_dir().exists() and not is_built():  # a tree of an older layout
                shutil.rmtree(build_dir(), ignore_errors=True)
            staging.rename(build_dir())
        except OSError:  # another install finished first: keep it
            if not is_built():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return vendor_dir()


def _install(npm: str, staging: Path) -> None:
    """``npm ci`` into ``staging`` and copy the served files to ``staging/vendor``."""
    for name in PINNED:
        shutil.copyfile(_npm_folder() / name, staging / name)
    command = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    done = subprocess.run(
        command, cwd=staging, capture_output=True, text=True, timeout=NPM_TIMEOUT_S
    )
    if done.returncode != 0:
        raise AssetBuildError(f"npm ci failed ({done.returncode}): {done.stderr[-2000:]}")
    vendor = staging / "vendor"
    vendor.mkdir()
    for served, source in VENDORED.items():
        shutil.copyfile(staging / "node_modules" / source, vendor / served)


def axe_script() -> Path:
    """axe-core's browser build (installed if missing), for the browser tests.

    Raises:
        AssetBuildError: If npm is missing or ``npm ci`` fails.
    """
    ensure_built()
    return build_dir() / "node_modules" / AXE


def main() -> int:
    """``make assets``: build if needed, print where."""
    try:
        vendor = ensure_built()
    except AssetBuildError as error:
        print(f"dashboard assets: {error}", file=sys.stderr)
        return 1
    print(f"dashboard assets: {vendor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
