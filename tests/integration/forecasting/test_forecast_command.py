"""`python -m pipeline forecast`: refit from the database and print one series' newest forecast."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.cli import main
from pipeline.sinks.clickhouse import ClickHouseSink, migrate
from tests.integration.analytics.analytics_samples import make_post

pytestmark = pytest.mark.integration


def test_refit_and_print(open_chdb, tmp_path, monkeypatch, capsys):
    client = open_chdb("db")
    migrate(client, "pd", ttl_days=3650)
    start = datetime(2015, 2, 1, tzinfo=timezone.utc)
    ClickHouseSink(client, "pd").insert_posts(
        [make_post(f"p{h}-{i}", start + timedelta(hours=h, minutes=i), topic="political_affairs")
         for h in range(4 * 24) for i in range(1 + h % 3)]
    )  # fmt: skip
    client.close()  # the command opens the engine itself, as an operator's shell would
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{tmp_path / 'db'}")
    monkeypatch.setenv("CLICKHOUSE_DATABASE", "pd")

    main(["forecast", "--key", "topic:political_affairs"])
    assert "no forecast yet" in capsys.readouterr().out

    main(["forecast", "--key", "topic:political_affairs", "--refit", "--format", "json"])
    found = json.loads(capsys.readouterr().out)
    assert found["origin"] == "2015-02-04T23:00:00Z" and found["model"] == "seasonal-ensemble-v1"
    assert len(found["steps"]) == 24 and found["steps"][0]["t"] == found["origin"]
    assert all(s["lower_95"] <= s["lower_80"] <= s["forecast"] <= s["upper_80"] <= s["upper_95"] for s in found["steps"])

    main(["forecast", "--key", "topic:political_affairs", "--resolution", "day"])
    text = capsys.readouterr().out
    assert text.startswith("(all posts) topic:political_affairs volume per day, from 2015-02-04T00:00:00+00:00")
    assert len(text.splitlines()) == 2 + 14
