"""run_view refuses missing or unexpected parameters before any query reaches ClickHouse."""

from __future__ import annotations

import pytest

from pipeline.analytics.views import VIEWS, render_sql, run_view


def _unreachable(sql, params):
    raise AssertionError("query must not run")


def test_parameters_are_read_from_the_sql():
    assert VIEWS["volume_by_topic"].parameters == {"start", "end", "bucket"}
    assert VIEWS["watch_detail"].parameters == {"start", "end", "watch"}
    assert VIEWS["open_alerts"].parameters == frozenset()


def test_missing_or_extra_parameters_raise():
    with pytest.raises(ValueError, match="bucket"):
        run_view(_unreachable, "pd", "volume_by_topic", start=1, end=2)
    with pytest.raises(ValueError, match="watch"):
        run_view(_unreachable, "pd", "open_alerts", watch="w")
    with pytest.raises(KeyError):
        run_view(_unreachable, "pd", "no_such_view")


def test_database_placeholder_is_replaced_and_parameters_kept():
    sql = render_sql(VIEWS["volume_by_topic"], "analytics")
    assert "analytics.posts_by_minute" in sql and "{db}" not in sql
    assert "{start:DateTime64(3, 'UTC')}" in sql

