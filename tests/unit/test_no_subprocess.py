"""The guard of tests/unit/conftest.py: a unit test that starts a process fails loudly."""

from __future__ import annotations

import multiprocessing
import os
import subprocess

import pytest
from tests.unit.conftest import RULE, SubprocessGuard, SubprocessInUnitTestError


def test_subprocess_run_is_refused(no_subprocess: SubprocessGuard) -> None:
    with pytest.raises(SubprocessInUnitTestError, match="tests/unit starts no subprocess"):
        subprocess.run(["true"], check=True)
    assert no_subprocess.attempts and RULE in no_subprocess.attempts[0]
    no_subprocess.attempts.clear()  # refused on purpose: do not fail this test


def test_os_and_multiprocessing_starts_are_refused(no_subprocess: SubprocessGuard) -> None:
    with pytest.raises(SubprocessInUnitTestError):
        os.system("true")
    with pytest.raises(SubprocessInUnitTestError):
        os.posix_spawn("/bin/true", ["true"], os.environ)
    with pytest.raises(SubprocessInUnitTestError):
        multiprocessing.get_context("spawn").Process(target=print).start()
    assert len(no_subprocess.attempts) == 3
    no_subprocess.attempts.clear()
