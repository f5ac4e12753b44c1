"""The fault suite's broker: the embedded default (tansu on loopback S3, persistent), its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.settings import Settings
from pipeline.stack import EmbeddedStack, free_port


@pytest.fixture(scope="session")
def persistent_stack(tmp_path_factory) -> Iterator[EmbeddedStack]:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp_path_factory.mktemp("faults"))
    with EmbeddedStack(settings) as stack:  # the default: persistent
        yield stack
