"""End-to-end latency from posts.raw to a ClickHouse row at a steady 1,000 posts/s (target p99 < 1.5 s,
0 % lexical fallback).

Posts are the realistic mix of `bench.enrichment` (40 % reposts, zh/en/ru), stamped with their
send time as `created_at`; one worker runs every stage with the production default (`ENRICHER=auto`:
the learned model once `make models` has built it). After the run the worker stops and the rows'
`inserted_at - created_at` give the exact latencies, together with the share of posts each
model path scored.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.enrichment import build_mix
from pipeline.kafka import create_producer
from pipeline.schemas import RawPost
from pipeline.settings import Settings, Topics
from pipeline.sinks.clickhouse import connect
from pipeline.stack import EmbeddedStack, free_port
from pipeline.testing import WorkerProcess, wait_until
from pipeline.topics import ensure_topics


async def produce_steadily(settings: Settings, texts: list[tuple[str, str]], rate: float, prefix: str = "lat") -> None:
    """Send at `rate` posts/s in 10 ms ticks, each post stamped with its own send time."""
    producer = create_producer(settings, client_id="bench-latency", linger_ms=1)
    await producer.start()
    try:
        started = time.perf_counter()
        for i, (text, lang) in enumerate(texts):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            post = RawPost(id=f"{prefix}{i}", source="x", text=text, lang=lang, created_at=datetime.now(timezone.utc))
            await producer.send(settings.topic(Topics.RAW), value=post.encode(), key=post.key)
        await producer.flush()
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    texts = build_mix(total)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
            data_dir=tmp_path,
            clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
            metrics_port=free_port(),
            web_port=free_port(),
        )
        with EmbeddedStack(settings, persistent=False):
            asyncio.run(ensure_topics(settings))
            worker = WorkerProcess(settings, tmp_path / "worker.log").start()
            stored = lambda: worker.metric("pd_sink_rows_total", table="posts")  # noqa: E731
            try:
                asyncio.run(produce_steadily(settings, [("warm-up post about the embassy", "en")], 1.0, prefix="warm"))
                wait_until(lambda: stored() >= 1, 300, "warm-up stored", interval_s=0.1)
                asyncio.run(produce_steadily(settings, texts, args.rate))
                wait_until(lambda: stored() >= total + 1, 300, "all posts stored", interval_s=0.2)
                paths = {p: worker.metric("pd_model_path_total", path=p)
                         for p in ("learned", "transformer", "lexical", "empty")}
                inside = worker.metric("pd_e2e_latency_seconds_sum") / max(1.0, worker.metric("pd_e2e_latency_seconds_count"))
            finally:
                worker.stop()
        client = connect(settings.resolved_clickhouse_url)
        p50, p99, worst = client.query(
            "SELECT quantilesExact(0.5, 0.99, 1)(dateDiff('millisecond', created_at, inserted_at)) / 1000 "
            f"FROM {settings.clickhouse_database}.posts FINAL WHERE id LIKE 'lat%'"
        ).result_rows[0][0]
        client.close()
    enriched = sum(paths.values())
    print(f"{total} posts at {args.rate:.0f} posts/s, posts.raw -> ClickHouse row:")
    print(f"  p50 {p50:.2f} s   p99 {p99:.2f} s   max {worst:.2f} s   (target p99 < 1.5 s)")
    print("  model paths: " + ", ".join(f"{p} {n / enriched:.1%}" for p, n in paths.items())
          + "   (target: lexical 0 %)")
    print(f"  mean time inside the worker (enrich pickup -> insert): {inside:.2f} s; the rest waits for pickup")


if __name__ == "__main__":
    main()
