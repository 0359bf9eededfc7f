"""Java jars resolved from Maven Central by ``mvn``: the Kafka broker and Spark's Kafka connector.

Each jar set is a jars-only pom, package data of ``fraudrisk.io``
(``maven-poms/<name>/pom.xml``, so the installed wheel carries it). :func:`resolve_jars` runs
``mvn dependency:copy-dependencies`` once into ``<jars dir>/<name>/`` and writes a stamp file
holding the pom's hash; later calls return the cached jars without running Maven. The jars dir is
``$FRAUDRISK_JARS_DIR`` if set, else ``$FRAUDRISK_HOME/jars`` — tests point it at one shared
cache. Nothing is downloaded at run time by Kafka or Spark: only ``mvn``, from Maven Central.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

from fraudrisk.config import get_settings
from fraudrisk.console import err_console

JarSet = Literal["kafka", "spark-kafka"]
JARS_DIR_ENV = "FRAUDRISK_JARS_DIR"
STAMP_NAME = ".pom.sha256"
INSTALL_HINT = "install Java 17 + Maven (apt-get install openjdk-17-jdk-headless maven)"
_MVN_TIMEOUT_S = 900


class JarResolutionError(RuntimeError):
    """Maven or Java is missing, the poms are not found, or ``mvn`` failed."""


def java_dir() -> Path:
    """The folder of the jars-only poms: ``maven-poms/``, package data of ``fraudrisk.io``.

    Raises:
        JarResolutionError: The poms are absent (a broken installation).
    """
    root = Path(str(resources.files("fraudrisk.io") / "maven-poms"))
    if not root.is_dir():
        raise JarResolutionError(
            f"{root} not found: reinstall fraudrisk (the poms are package data)"
        )
    return root


def pom_path(name: JarSet) -> Path:
    """The pom of jar set ``name``."""
    pom = java_dir() / name / "pom.xml"
    if not pom.is_file():
        raise JarResolutionError(f"{pom} not found")
    return pom


def jars_root() -> Path:
    """Where jar sets are cached: ``$FRAUDRISK_JARS_DIR`` or ``$FRAUDRISK_HOME/jars``."""
    override = os.environ.get(JARS_DIR_ENV, "").strip()
    return Path(override) if override else get_settings().jars_dir


def pom_hash(pom: Path) -> str:
    """The SHA-256 of a pom's bytes: what a cached jar set's stamp must match."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def stamp_matches(target: Path, digest: str) -> bool:
    """Whether ``target`` holds jars copied from a pom whose hash is ``digest``.

    Args:
        target: A jar set directory.
        digest: The current pom's :func:`pom_hash`.

    Returns:
        True if the stamp file holds ``digest`` and at least one jar is present.
    """
    stamp = target / STAMP_NAME
    if not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() != digest:
        return False
    return any(target.glob("*.jar"))


def require_tools() -> None:
    """Fail clearly unless ``mvn`` and ``java`` are on PATH.

    Raises:
        JarResolutionError: One of them is missing.
    """
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise JarResolutionError(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")


def resolve_jars(name: JarSet, root: Path | None = None) -> list[Path]:
    """The jars of set ``name``, resolved by Maven on first use and cached by pom hash.

    Args:
        name: ``"kafka"`` (the broker) or ``"spark-kafka"`` (Spark's Kafka connector).
        root: The jars cache; default: :func:`jars_root`.

    Returns:
        The jar files, sorted by name.

    Raises:
        JarResolutionError: Unknown set, missing tools or poms, or ``mvn`` failed.
    """
    if name not in get_args(JarSet):
        raise JarResolutionError(f"unknown jar set {name!r}; expected one of {get_args(JarSet)}")
    pom = pom_path(name)
    digest = pom_hash(pom)
    target = (root or jars_root()).resolve() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{name}.lock"):
        if not stamp_matches(target, digest):
            require_tools()
            _copy_dependencies(pom, target, digest)
    return sorted(target.glob("*.jar"))


def _copy_dependencies(pom: Path, target: Path, digest: str) -> None:
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    output = f"-DoutputDirectory={staging}"
    flags = ["-B", "-q", "-Dstyle.color=never", "-f", str(pom)]
    command = ["mvn", *flags, "dependency:copy-dependencies", output]
    with err_console.status(
        f"resolving {target.name} jars with Maven into {target} "
        "(about a minute the first time, cached afterwards)…"
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False
        )
    if done.returncode != 0 or not any(staging.glob("*.jar")):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        shutil.rmtree(staging, ignore_errors=True)
        raise JarResolutionError(f"mvn failed (exit {done.returncode}) for {pom}:\n{tail}")
    (staging / STAMP_NAME).write_text(digest + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    err_console.print(f"[green]resolved[/green] {len(list(target.glob('*.jar')))} jars → {target}")


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    # Two processes (a test session and a CLI it spawns) may resolve the same set at once.
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
