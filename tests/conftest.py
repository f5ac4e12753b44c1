"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from clickhouse_connect.driver.client import Client

from pipeline.sinks.clickhouse import connect


@pytest.fixture
def open_chdb(tmp_path) -> Iterator[Callable[..., Client]]:
    """Open chdb clients under tmp_path, all closed after the test: a process may hold one chdb path
    at a time, so a client left open would break every later test that opens another path."""
    clients: list[Client] = []

    def open_(name: str = "chdb") -> Client:
        client = connect(f"chdb://{tmp_path / name}")
        clients.append(client)
        return client

    yield open_
    for client in clients:
        client.close()
