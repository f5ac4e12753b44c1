"""Connector integration tests use the shared broker fixtures plus the recorded-API server of the unit tests."""

from tests.unit.connectors.recorded_api import recorded_api  # noqa: F401 - fixture
