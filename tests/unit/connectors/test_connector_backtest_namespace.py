"""Backtest namespaces never collide with the live one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipeline.backtest_range import backtest_settings, default_run_id
from pipeline.replay import in_range
from pipeline.settings import Settings, Topics


def test_backtest_settings_move_topics_group_and_database_but_keep_the_broker():
    live = Settings(topic_prefix="prod.", app_id="pd-monitor", clickhouse_database="pd")
    backtest = backtest_settings(live, "2019-03")
    assert backtest.topic(Topics.RAW) == "prod.backtest-2019-03.posts.raw"
    assert (backtest.app_id, backtest.clickhouse_database) == ("pd-monitor-backtest-2019-03", "pd_backtest_2019_03")
    assert backtest.kafka_bootstrap_servers == live.kafka_bootstrap_servers
    with pytest.raises(ValueError):
        backtest_settings(live, "../etc")


def test_default_run_id_names_the_range_in_utc_and_ranges_are_half_open():
    start, end = datetime(2019, 3, 16, 8, tzinfo=timezone.utc), datetime(2019, 3, 17, tzinfo=timezone.utc)
    assert default_run_id(start, end) == "20190316T0800-20190317T0000"
    start_ms = int(start.timestamp() * 1000)
    assert in_range(start_ms, start, end) and not in_range(int(end.timestamp() * 1000), start, end)
    assert not in_range(start_ms - 1, start, end)
