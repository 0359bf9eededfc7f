"""The real ``kustomize``, built from the Go module proxy, cached under ``$FRAUDRISK_HOME/bin``.

:func:`ensure_kustomize` returns a ``kustomize`` binary of :data:`KUSTOMIZE_VERSION`: the cached
one if its ``kustomize version`` matches, else it runs ``go install`` of
:data:`KUSTOMIZE_MODULE` once (about a minute on a fresh machine, seconds with Go's caches) into
a staging directory and moves the binary into place. The bin dir is ``$FRAUDRISK_BIN_DIR`` if
set, else ``$FRAUDRISK_HOME/bin``. Only the ``go`` command and the Go module proxy are used.

``python -m fraudrisk.release.kustomize DIR [-o FILE]`` renders an overlay, e.g. to regenerate
``manifests/local/inferenceservice.yaml`` from ``manifests/overlays/local``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fraudrisk.config import get_settings
from fraudrisk.console import err_console

KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
# v5.8.2 is the newest release whose go.mod accepts this machine's Go 1.26 (v5.8.3 needs 1.27).
KUSTOMIZE_VERSION = "v5.8.2"
BIN_DIR_ENV = "FRAUDRISK_BIN_DIR"
_GO_TIMEOUT_S = 900
_BUILD_TIMEOUT_S = 120


class KustomizeError(RuntimeError):
    """Go is missing, ``go install`` failed, or ``kustomize build`` failed."""


def bin_dir() -> Path:
    """Where tool binaries are cached: ``$FRAUDRISK_BIN_DIR`` or ``$FRAUDRISK_HOME/bin``."""
    override = os.environ.get(BIN_DIR_ENV, "").strip()
    return Path(override) if override else get_settings().bin_dir


def installed_version(binary: Path) -> str | None:
    """The version a ``kustomize`` binary reports (e.g. ``v5.8.2``), None if it cannot run."""
    if not binary.is_file():
        return None
    try:
        done = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_kustomize(root: Path | None = None, version: str = KUSTOMIZE_VERSION) -> Path:
    """A ``kustomize`` binary of ``version``, installed with ``go install`` on first use.

    Args:
        root: The bin dir; default: :func:`bin_dir`.
        version: The kustomize release (a tag of :data:`KUSTOMIZE_MODULE`).

    Returns:
        The absolute path of the binary.

    Raises:
        KustomizeError: ``go`` is not on PATH or ``go install`` failed.
    """
    target_dir = (root or bin_dir()).resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    binary = target_dir / "kustomize"
    with _locked(target_dir / ".kustomize.lock"):
        if installed_version(binary) != version:
            _go_install(binary, version)
    return binary


def build(kustomization: Path, binary: Path | None = None) -> str:
    """Render a kustomization directory with ``kustomize build``.

    Args:
        kustomization: A directory holding ``kustomization.yaml``.
        binary: The ``kustomize`` to run; default: :func:`ensure_kustomize`.

    Returns:
        The rendered multi-document YAML.

    Raises:
        KustomizeError: The build failed (the message holds kustomize's error).
    """
    exe = binary or ensure_kustomize()
    done = subprocess.run(
        [str(exe), "build", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=_BUILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise KustomizeError(f"kustomize build {kustomization} failed: {done.stderr.strip()}")
    return done.stdout


def rendered_header(kustomization: Path) -> str:
    """The comment put on top of a committed rendering of ``kustomization``."""
    return (
        f"# Rendered from {kustomization.as_posix()} by kustomize {KUSTOMIZE_VERSION}; "
        "do not edit by hand. Regenerate with:\n"
        f"#   python -m fraudrisk.release.kustomize {kustomization.as_posix()} -o <this file>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Render a kustomization to stdout or to a file (``-o``) with a header comment."""
    parser = argparse.ArgumentParser(prog="python -m fraudrisk.release.kustomize")
    parser.add_argument("kustomization", type=Path, help="directory holding kustomization.yaml")
    parser.add_argument("-o", "--output", type=Path, help="write here, with a header comment")
    args = parser.parse_args(argv)
    text = build(args.kustomization)
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(rendered_header(args.kustomization) + text, encoding="utf-8")
        err_console.print(f"[green]wrote[/green] {args.output}")
    return 0


def _go_install(binary: Path, version: str) -> None:
    go = shutil.which("go")
    if go is None:
        raise KustomizeError(
            "go not found on PATH: kustomize is built from the Go module proxy "
            "(install Go, e.g. apt-get install golang-go)"
        )
    staging = binary.parent / ".kustomize.staging"
    shutil.rmtree(staging, ignore_errors=True)
    env = {**os.environ, "GOBIN": str(staging), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    command = [go, "install", f"{KUSTOMIZE_MODULE}@{version}"]
    with err_console.status(
        f"building kustomize {version} with go install into {binary.parent} "
        "(about a minute the first time, cached afterwards)…"
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=_GO_TIMEOUT_S, check=False
        )
    built = staging / "kustomize"
    if done.returncode != 0 or not built.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        shutil.rmtree(staging, ignore_errors=True)
        raise KustomizeError(f"go install {KUSTOMIZE_MODULE}@{version} failed:\n{tail}")
    os.replace(built, binary)  # atomic: a concurrent reader sees the old or the new binary
    shutil.rmtree(staging, ignore_errors=True)
    err_console.print(f"[green]built[/green] kustomize {version} → {binary}")


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    # Two test processes (or a test and a CLI) may install at once.
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    raise SystemExit(main())
