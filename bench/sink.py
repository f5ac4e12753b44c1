"""The store stage's rows/s next to one bulk clickhouse-connect insert of the same rows, in one run.

Store stage: N enriched posts wait as messages on `posts.enriched` (produced while a warmed-up
store-only worker is paused, so the producer's speed is not measured) and the worker consumes,
validates and inserts them; the clock runs from resuming the worker until its row counter reaches N.
Bulk: one `client.insert` of the same N rows as Python tuples (`post_row`), the usual way to load
rows with clickhouse-connect, into a freshly migrated database of the same chdb engine version
(materialized views included), in this process (chdb allows one process per path).
Rounds alternate the two; the per-round ratios and their median are printed.

    .venv/bin/python -m bench.sink --posts 50000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.schemas import EnrichedPost, PostMetrics
from pipeline.settings import Settings, Topics
from pipeline.sinks.clickhouse import ClickHouseSink, connect, migrate
from pipeline.stack import EmbeddedStack, free_port
from pipeline.testing import WorkerProcess, post_messages, produce, wait_until
from pipeline.topics import ensure_topics

TOPICS = ("political_affairs", "cultural_exchanges", "economic_trade", "other")
LABELS = (("negative", -0.6), ("neutral", 0.0), ("positive", 0.7))
POST_COLUMNS = (
    "id", "source", "account", "author", "title", "url", "created_at", "text", "text_norm", "lang", "urls",
    "mentions", "hashtags", "countries", "organisations", "content_hash", "is_repost", "repost_of", "topic",
    "secondary_topic", "topic_score", "sentiment_score", "sentiment_label", "model_path", "pageviews", "likes",
    "reposts", "comments", "looking_at", "processed_at",
)  # fmt: skip


def make_posts(n: int, prefix: str = "s") -> list[EnrichedPost]:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    posts = []
    for i in range(n):
        label, score = LABELS[i % 3]
        created = start + timedelta(seconds=i)
        text = f"Embassy statement number {i} on cooperation and exchanges"
        posts.append(EnrichedPost(
            id=f"{prefix}{i}", source=("wechat", "weibo", "x", "rss")[i % 4], account=f"acct{i % 50}", author=None,
            title=f"title {i}", url=f"https://example.org/{i}", created_at=created, text=text, text_norm=text.lower(),
            lang="en", urls=[], mentions=[], hashtags=["diplomacy"], countries=[("RU", "CN", "US")[i % 3]],
            organisations=[], content_hash=f"h{i}", is_repost=False, repost_of=None, topic=TOPICS[i % 4],
            secondary_topic=f"sub{i % 9}", topic_score=0.8, sentiment_score=score, sentiment_label=label,
            model_path="transformer", metrics=PostMetrics(pageviews=i, looking_at=i % 100),
            received_at=created, processed_at=created + timedelta(seconds=1),
        ))  # fmt: skip
    return posts


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


def bulk_rate(client, database: str, posts: list[EnrichedPost]) -> float:
    migrate(client, database, ttl_days=30)
    started = time.perf_counter()
    client.insert(f"{database}.posts", [post_row(p) for p in posts], column_names=list(POST_COLUMNS))
    rate = len(posts) / (time.perf_counter() - started)
    (count,) = ClickHouseSink(client, database).query(f"SELECT count() FROM {database}.posts")[0]
    assert count == len(posts), f"bulk: {count} rows"
    return rate


def store_stage_rate(settings: Settings, worker: WorkerProcess, posts: list[EnrichedPost]) -> float:
    stored = lambda: worker.metric("pd_sink_rows_total", table="posts")  # noqa: E731
    before = stored()
    with worker.paused():  # the rows wait on the topic, as a backlog does
        asyncio.run(produce(settings, Topics.ENRICHED, post_messages(posts)))
    started = time.perf_counter()
    wait_until(lambda: stored() >= before + len(posts), 600, "all rows stored", interval_s=0.02)
    return len(posts) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp, enricher="lexical",
            clickhouse_url=f"chdb://{tmp}/worker-chdb", metrics_port=free_port(), web_port=free_port(),
            worker_stages=("store",),  # the stage measured, alone: the alert engine reads posts.enriched too
        )  # fmt: skip
        bulk_client = connect(f"chdb://{tmp}/bulk-chdb")
        with EmbeddedStack(settings, persistent=False):
            asyncio.run(ensure_topics(settings))
            worker = WorkerProcess(settings, Path(tmp) / "worker.log").start()
            try:
                store_stage_rate(settings, worker, make_posts(1, prefix="warm-up"))
                bulk_rate(bulk_client, "bench_warm_up", make_posts(1000, prefix="warm-up"))
                for round_no in range(args.rounds):
                    posts = make_posts(args.posts, prefix=f"r{round_no}-")
                    stage = store_stage_rate(settings, worker, posts)
                    bulk = bulk_rate(bulk_client, f"bench_bulk_{round_no}", posts)
                    ratios.append(stage / bulk)
                    print(
                        f"round {round_no + 1}: store stage (enriched messages -> ClickHouse) {stage:,.0f} rows/s, "
                        f"one bulk insert {bulk:,.0f} rows/s: {ratios[-1]:.1%}"
                    )
            finally:
                worker.stop()
                bulk_client.close()
    print(f"median store stage / bulk insert over {args.rounds} rounds: {statistics.median(ratios):.1%} (target >= 50%)")


if __name__ == "__main__":
    main()
