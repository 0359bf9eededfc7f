"""Jar resolution: the pom-hash stamp decides whether Maven runs at all."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fraudrisk.io import jars


@pytest.fixture()
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "java"
    (root / "kafka").mkdir(parents=True)
    (root / "kafka" / "pom.xml").write_text("<project>v1</project>")
    monkeypatch.setattr(jars, "java_dir", lambda: root)
    return root


def _cache(target: Path, digest: str, n_jars: int = 2) -> None:
    target.mkdir(parents=True)
    for i in range(n_jars):
        (target / f"lib-{i}.jar").write_bytes(b"PK")
    (target / jars.STAMP_NAME).write_text(digest + "\n")


def test_stamp_matches_only_the_same_pom_with_jars(fake_java: Path, tmp_path: Path) -> None:
    pom = fake_java / "kafka" / "pom.xml"
    digest = jars.pom_hash(pom)
    target = tmp_path / "cache" / "kafka"
    assert not jars.stamp_matches(target, digest)  # nothing cached
    _cache(target, digest)
    assert jars.stamp_matches(target, digest)
    pom.write_text("<project>v2</project>")
    assert jars.pom_hash(pom) != digest
    assert not jars.stamp_matches(target, jars.pom_hash(pom))
    for jar in target.glob("*.jar"):
        jar.unlink()
    assert not jars.stamp_matches(target, digest)  # a stamp without jars is no cache


def test_cached_jars_are_returned_without_maven(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    _cache(cache / "kafka", jars.pom_hash(fake_java / "kafka" / "pom.xml"))

    def no_maven(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("mvn must not run when the stamp matches")

    monkeypatch.setattr(subprocess, "run", no_maven)
    monkeypatch.setenv(jars.JARS_DIR_ENV, str(cache))
    found = jars.resolve_jars("kafka")
    assert [p.name for p in found] == ["lib-0.jar", "lib-1.jar"]
    assert all(p.is_absolute() for p in found)


def test_a_stale_cache_needs_maven_and_says_how_to_install_it(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache(tmp_path / "cache" / "kafka", "an-old-pom-hash")
    monkeypatch.setattr(shutil, "which", lambda _tool: None)
    with pytest.raises(jars.JarResolutionError, match="openjdk-17-jdk-headless maven"):
        jars.resolve_jars("kafka", tmp_path / "cache")


def test_unknown_jar_set_is_refused() -> None:
    with pytest.raises(jars.JarResolutionError, match="unknown jar set"):
        jars.resolve_jars("flink")  # type: ignore[arg-type]


def test_the_repository_poms_are_found() -> None:
    assert (jars.java_dir() / "kafka" / "pom.xml").is_file()
    assert (jars.java_dir() / "spark-kafka" / "pom.xml").is_file()
