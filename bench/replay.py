"""Replay throughput (posts/s copied into a backtest namespace) next to a raw consume of the same topic.

Both read the same N records from one broker in one run; replay also selects by record timestamp,
sorts, and produces into the isolated namespace, so the ratio is its overhead over reading alone.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.pipeline import posts
from pipeline.backtest_range import backtest_range
from pipeline.settings import Settings, Topics
from pipeline.stack import EmbeddedStack, free_port
from pipeline.testing import post_messages, produce
from pipeline.topics import ensure_topics

RANGE = (datetime(2015, 1, 1, tzinfo=timezone.utc), datetime(2016, 1, 1, tzinfo=timezone.utc))


async def consume_rate(settings: Settings, n: int) -> float:
    consumer = AIOKafkaConsumer(
        settings.topic(Topics.RAW), **settings.kafka_client_kwargs(), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        started, seen = time.perf_counter(), 0
        while seen < n:
            seen += sum(len(r) for r in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values())
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=Path(tmp))
        with EmbeddedStack(settings, persistent=False):
            asyncio.run(ensure_topics(settings, (Topics.RAW,)))
            asyncio.run(produce(settings, Topics.RAW, post_messages(posts(args.posts))))
            raw_rate = asyncio.run(consume_rate(settings, args.posts))
            started = time.perf_counter()
            _, stats = asyncio.run(backtest_range(settings, *RANGE, run_id="bench"))
            replay_rate = stats.produced / (time.perf_counter() - started)
    assert stats.produced == args.posts, stats
    print(f"raw consume of posts.raw         : {raw_rate:9.0f} posts/s")
    print(f"replay into a backtest namespace : {replay_rate:9.0f} posts/s")
    print(f"ratio replay / raw consume       : {replay_rate / raw_rate:9.1%}")


if __name__ == "__main__":
    main()
