"""The test OIDC provider's npm packages, installed once outside the repository.

``npm ci`` of this folder's ``package.json`` and ``package-lock.json`` into
``$XDG_CACHE_HOME/fraudrisk/oidc-provider/<checksum of the two>/node_modules`` (default
``~/.cache``): a second run, or a run after ``make oidc-provider``, finds it there and installs
nothing; a changed pin installs beside it. The install goes to a temporary folder renamed into
place, so an interrupted or concurrent install never leaves half a tree.

Run by ``make oidc-provider`` (a prerequisite of ``make test``) and by the integration test's
fixture; both fail, never skip, without node or npm.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED = ("package.json", "package-lock.json")
NPM_TIMEOUT_S = 600


class ProviderInstallError(RuntimeError):
    """node or npm is missing, or ``npm ci`` failed."""


def cache_root() -> Path:
    """Where the installs are kept: ``$XDG_CACHE_HOME/fraudrisk/oidc-provider``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fraudrisk" / "oidc-provider"


def checksum() -> str:
    """The SHA-256 (first 16 hex digits) of the pinned files."""
    digest = hashlib.sha256()
    for name in PINNED:
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def require_tool(name: str) -> str:
    """The path of ``node`` or ``npm``.

    Raises:
        ProviderInstallError: If it is not on PATH.
    """
    found = shutil.which(name)
    if found is None:
        raise ProviderInstallError(
            f"{name} is not installed: the OIDC provider tests need Node.js and npm "
            "(Debian: apt-get install nodejs npm)"
        )
    return found


def ensure_installed() -> Path:
    """The ``node_modules`` folder of the pinned packages, installed if missing.

    Raises:
        ProviderInstallError: If node or npm is missing or the install fails.
    """
    require_tool("node")
    target = cache_root() / checksum()
    modules = target / "node_modules"
    if (modules / "oidc-provider" / "package.json").is_file():
        return modules
    npm = require_tool("npm")
    cache_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=cache_root()))
    try:
        for name in PINNED:
            shutil.copyfile(HERE / name, staging / name)
        command = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
        done = subprocess.run(
            command, cwd=staging, capture_output=True, text=True, timeout=NPM_TIMEOUT_S
        )
        if done.returncode != 0:
            raise ProviderInstallError(f"npm ci failed ({done.returncode}): {done.stderr[-2000:]}")
        try:
            staging.rename(target)
        except OSError:  # another install finished first: keep it
            if not (modules / "oidc-provider").is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return modules


def main() -> int:
    """``make oidc-provider``: install if needed, print where."""
    try:
        modules = ensure_installed()
    except ProviderInstallError as error:
        print(f"oidc-provider: {error}", file=sys.stderr)
        return 1
    print(f"oidc-provider: {modules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
