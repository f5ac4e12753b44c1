"""ClickHouse sink rows/s next to one bulk clickhouse-connect insert of the same rows, in one run.

First the whole store stage: N enriched posts wait as messages on `posts.enriched` (produced while
a warmed-up worker is paused) and the worker consumes, checks and inserts them (what the issue asks
for); then one bulk insert of the same rows.
Then, to isolate the sink class itself, rounds of the in-process comparison below.

The sink path is `ClickHouseSink.insert_encoded_posts` of the messages in batches of 2000; the
baseline is a single `client.insert` of all rows as Python tuples (`post_row`), the usual way to
load rows with clickhouse-connect. Both write into freshly migrated databases of the same chdb
engine (materialized views included). Rounds alternate the order; the median ratios are printed,
of wall time and of this process's CPU time (chdb runs in-process, so CPU time covers the engine
too and is far less disturbed by other load on a shared machine than wall time).

    .venv/bin/python -m bench.sink --posts 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.schemas import EnrichedPost, PostMetrics
from pipeline.sinks.clickhouse import ClickHouseSink, connect, migrate

SINK_BATCH = 2000
TOPICS = ("political_affairs", "cultural_exchanges", "economic_trade", "other")
LABELS = (("negative", -0.6), ("neutral", 0.0), ("positive", 0.7))


def make_posts(n: int) -> list[EnrichedPost]:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    posts = []
    for i in range(n):
        label, score = LABELS[i % 3]
        created = start + timedelta(seconds=i)
        text = f"Embassy statement number {i} on cooperation and exchanges"
        posts.append(EnrichedPost(
            id=f"s{i}", source=("wechat", "weibo", "x", "rss")[i % 4], account=f"acct{i % 50}", author=None,
            title=f"title {i}", url=f"https://example.org/{i}", created_at=created, text=text, text_norm=text.lower(),
            lang="en", urls=[], mentions=[], hashtags=["diplomacy"], countries=[("RU", "CN", "US")[i % 3]],
            organisations=[], content_hash=f"h{i}", is_repost=False, repost_of=None, topic=TOPICS[i % 4],
            secondary_topic=f"sub{i % 9}", topic_score=0.8, sentiment_score=score, sentiment_label=label,
            model_path="transformer", metrics=PostMetrics(pageviews=i, looking_at=i % 100),
            received_at=created, processed_at=created + timedelta(seconds=1),
        ))  # fmt: skip
    return posts


POST_COLUMNS = (
    "id", "source", "account", "author", "title", "url", "created_at", "text", "text_norm", "lang", "urls",
    "mentions", "hashtags", "countries", "organisations", "content_hash", "is_repost", "repost_of", "topic",
    "secondary_topic", "topic_score", "sentiment_score", "sentiment_label", "model_path", "pageviews", "likes",
    "reposts", "comments", "looking_at", "processed_at",
)  # fmt: skip


def post_row(post: EnrichedPost) -> tuple:
    """The baseline's row: the post as a tuple of `posts` columns."""
    m = post.metrics
    return (
        post.id, post.source, post.account or "", post.author or "", post.title or "", post.url or "",
        post.created_at, post.text, post.text_norm, post.lang, post.urls, post.mentions, post.hashtags,
        post.countries, post.organisations, post.content_hash, post.is_repost, post.repost_of or "", post.topic,
        post.secondary_topic, post.topic_score, post.sentiment_score, post.sentiment_label, post.model_path,
        m.pageviews, m.likes, m.reposts, m.comments, m.looking_at, post.processed_at,
    )  # fmt: skip


def insert_with_sink(sink: ClickHouseSink, messages: list[bytes], posts: list[EnrichedPost]) -> None:
    for i in range(0, len(messages), SINK_BATCH):
        sink.insert_encoded_posts(messages[i : i + SINK_BATCH])


def insert_in_bulk(sink: ClickHouseSink, messages: list[bytes], posts: list[EnrichedPost]) -> None:
    sink.client.insert(f"{sink.database}.posts", [post_row(p) for p in posts], column_names=list(POST_COLUMNS))


def timed(insert, sink: ClickHouseSink, posts: list[EnrichedPost]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one insert run (the messages are encoded beforehand:
    they arrive encoded from Kafka)."""
    messages = [post.encode() for post in posts]
    wall, cpu = time.perf_counter(), time.process_time()
    insert(sink, messages, posts)
    return time.perf_counter() - wall, time.process_time() - cpu


def store_agent_vs_bulk(posts: list[EnrichedPost]) -> tuple[float, float]:
    """(rows/s of a worker's store stage fed `posts` as enriched messages, rows/s of one bulk insert)."""
    import asyncio

    from pipeline.settings import Settings, Topics
    from pipeline.stack import EmbeddedStack, free_port
    from pipeline.testing import WorkerProcess, post_messages, produce, wait_until
    from pipeline.topics import ensure_topics

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp, enricher="lexical",
            clickhouse_url=f"chdb://{tmp}/chdb", metrics_port=free_port(), web_port=free_port(),
        )  # fmt: skip
        with EmbeddedStack(settings):
            asyncio.run(ensure_topics(settings))
            worker = WorkerProcess(settings, Path(tmp) / "worker.log").start()
            stored = lambda: worker.metric("pd_sink_rows_total", table="posts")  # noqa: E731
            try:
                asyncio.run(produce(settings, Topics.ENRICHED, post_messages(posts[:1])))
                wait_until(lambda: stored() >= 1, 180, "warm-up row stored", interval_s=0.05)
                with worker.paused():  # the rows wait on the topic, as a backlog does
                    asyncio.run(produce(settings, Topics.ENRICHED, post_messages(posts[1:])))
                started = time.perf_counter()
                wait_until(lambda: stored() >= len(posts), 600, "all rows stored", interval_s=0.02)
                agent_rate = (len(posts) - 1) / (time.perf_counter() - started)
            finally:
                worker.stop()
        client = connect(settings.resolved_clickhouse_url)
        bulk = ClickHouseSink(client, "bench_bulk")
        migrate(client, bulk.database, ttl_days=30)
        wall, _ = timed(insert_in_bulk, bulk, posts)
        client.close()
    return agent_rate, len(posts) / wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    posts = make_posts(args.posts)
    agent, bulk = store_agent_vs_bulk(posts)
    print(
        f"store stage (enriched messages -> ClickHouse): {agent:,.0f} rows/s; one bulk insert: {bulk:,.0f} rows/s; "
        f"ratio {agent / bulk:.1%} (target >= 50%)"
    )
    inserts = {"sink": insert_with_sink, "bulk": insert_in_bulk}
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{tmp}/chdb")
        warm_up = ClickHouseSink(client, "bench_warm_up")
        migrate(client, warm_up.database, ttl_days=30)
        insert_with_sink(warm_up, [post.encode() for post in posts[:SINK_BATCH]], posts[:SINK_BATCH])
        wall_ratios, cpu_ratios = [], []
        for round_no in range(args.rounds):
            order = ("sink", "bulk") if round_no % 2 == 0 else ("bulk", "sink")
            measured = {}
            for kind in order:
                sink = ClickHouseSink(client, f"bench_{kind}_{round_no}")
                migrate(client, sink.database, ttl_days=30)
                measured[kind] = timed(inserts[kind], sink, posts)
                (count,) = sink.query(f"SELECT count() FROM {sink.database}.posts")[0]
                assert count == len(posts), f"{kind}: {count} rows"
                client.command(f"DROP DATABASE {sink.database}")
            (sink_wall, sink_cpu), (bulk_wall, bulk_cpu) = measured["sink"], measured["bulk"]
            wall_ratios.append(bulk_wall / sink_wall)
            cpu_ratios.append(bulk_cpu / sink_cpu)
            print(
                f"round {round_no + 1}: sink {len(posts) / sink_wall:,.0f} rows/s (batches of {SINK_BATCH}), "
                f"bulk {len(posts) / bulk_wall:,.0f} rows/s; sink/bulk wall {wall_ratios[-1]:.0%}, "
                f"CPU {cpu_ratios[-1]:.0%}"
            )
        client.close()
    print(
        f"median sink/bulk throughput ratio over {args.rounds} rounds: wall {statistics.median(wall_ratios):.0%}, "
        f"CPU {statistics.median(cpu_ratios):.0%} (target >= 50%)"
    )

if __name__ == "__main__":
    main()
