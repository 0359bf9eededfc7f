"""A registered champion and a small lake, shared by the batch and Kinesis unit tests."""

from __future__ import annotations

import pytest
from tests.unit.jobs.helpers import Platform, build_platform


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return build_platform(tmp_path_factory.mktemp("streaming-home"))
