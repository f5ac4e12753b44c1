"""Topics are created with the configs of their purpose (the embedded broker takes them at creation)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from pipeline.settings import PROJECT_ROOT, Topics
from pipeline.testing import settings_env
from pipeline.topics import _admin, apply_topic_configs, current_configs, ensure_topics, topic_configs

pytestmark = pytest.mark.integration


def test_topics_are_created_with_their_configs(make_settings):
    settings = make_settings(dlq_retention_days=7)
    assert asyncio.run(ensure_topics(settings)) == [settings.topic(name) for name in Topics.ALL]

    async def configs() -> dict[str, dict[str, str]]:
        admin = _admin(settings)
        await admin.start()
        try:
            return {name: await current_configs(admin, settings.topic(name), list(topic_configs(settings, name))) for name in Topics.ALL}
        finally:
            await admin.close()

    found = asyncio.run(configs())
    assert found[Topics.RAW]["retention.ms"] == "-1"  # a backfill (record time = post time) is never aged out
    assert found[Topics.ALERTS]["cleanup.policy"] == "compact"
    assert found[Topics.DLQ]["retention.ms"] == str(7 * 24 * 3600 * 1000)
    assert found == {name: topic_configs(settings, name) for name in Topics.ALL}
    assert asyncio.run(apply_topic_configs(settings)) == {}  # nothing differs

    cli = subprocess.run(
        [sys.executable, "-m", "pipeline", "topics"], cwd=PROJECT_ROOT, env=settings_env(settings),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert cli.stdout.splitlines() == ["created: none", "configs changed: none"]
