"""Fixtures of the connector unit tests: a local recorded-API server and throwaway settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import Settings
from tests.unit.connectors.recorded_api import recorded_api  # noqa: F401 - the fixture, shared with integration tests


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, topic_prefix="test.")
