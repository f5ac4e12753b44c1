"""End-to-end posts/s of the pipeline next to a minimal aiokafka forward loop, on one broker, in one run.

Both sides are measured the same way: warmed up (group joined, one message through), then N raw
posts are produced as a backlog (the pipeline's worker paused meanwhile) and the clock runs from
the start of consumption until the last one is out (forwarded / stored in ClickHouse), so the
producer's own speed is in neither figure.
The pipeline runs with the lexical enricher ("trivial enrichment"); it writes posts.enriched,
ClickHouse and the alert topics exactly as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.schemas import RawPost
from pipeline.settings import Settings, Topics
from pipeline.stack import EmbeddedStack, free_port
from pipeline.testing import WorkerProcess, post_messages, produce, wait_until
from pipeline.topics import ensure_topics

TEXTS = [
    "香港 内地游客 冲突 令人担忧 #光复屯门#",
    "Russia and China sign new energy cooperation agreement in Beijing",
    "俄罗斯驻华大使馆 新年 祝福 中国人民 节日快乐",
    "World Cup fans travel to Moscow, tourism numbers surge",
    "Посольство России поздравляет с праздником",
]


def posts(n: int, prefix: str = "b") -> list[RawPost]:
    start = datetime(2015, 2, 8, tzinfo=timezone.utc)
    return [
        RawPost(id=f"{prefix}{i}", source="x", text=f"{TEXTS[i % len(TEXTS)]} {i}", created_at=start + timedelta(seconds=i))
        for i in range(n)
    ]


async def forward_loop_rate(settings: Settings, n: int) -> float:
    """The floor of any Kafka pipeline: consume posts.raw, produce the same bytes elsewhere."""
    consumer = AIOKafkaConsumer(
        settings.topic(Topics.RAW), **settings.kafka_client_kwargs(), group_id="bench-loop", auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:

        async def forward(count: int) -> None:
            done = 0
            while done < count:
                for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                    for record in records:
                        await producer.send(settings.topic("bench.copy"), value=record.value, key=record.key)
                    done += len(records)
            await producer.flush()
            await consumer.commit()

        await produce(settings, Topics.RAW, post_messages(posts(1, prefix="warm-up")))
        await forward(1)
        await produce(settings, Topics.RAW, post_messages(posts(n)))
        started = time.perf_counter()
        await forward(n)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def pipeline_rate(settings: Settings, n: int, log_dir: Path) -> float:
    worker = WorkerProcess(settings, log_dir / "bench-worker.log").start()
    try:
        stored = lambda: worker.metric("pd_sink_rows_total", table="posts")  # noqa: E731
        asyncio.run(produce(settings, Topics.RAW, post_messages(posts(1, prefix="warm-up"))))
        wait_until(lambda: stored() >= 1, 180, "warm-up post stored", interval_s=0.05)
        with worker.paused():
            asyncio.run(produce(settings, Topics.RAW, post_messages(posts(n))))
        started = time.perf_counter()
        wait_until(lambda: stored() >= n + 1, 600, "all posts stored", interval_s=0.02)
        return n / (time.perf_counter() - started)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp_path)
        with EmbeddedStack(base):
            loop_settings = base.model_copy(update={"topic_prefix": "loop."})
            asyncio.run(ensure_topics(loop_settings, (Topics.RAW, "bench.copy")))
            loop_rate = asyncio.run(forward_loop_rate(loop_settings, args.posts))
            pipe_settings = base.model_copy(
                update={
                    "topic_prefix": "pipe.",
                    "enricher": "lexical",
                    "clickhouse_url": f"chdb://{tmp_path / 'chdb'}",
                    "metrics_port": free_port(),
                    "web_port": free_port(),
                }
            )
            asyncio.run(ensure_topics(pipe_settings))
            pipe_rate = pipeline_rate(pipe_settings, args.posts, tmp_path)
    print(f"minimal aiokafka forward loop : {loop_rate:9.0f} posts/s")
    print(f"pipeline (lexical, CH + topics): {pipe_rate:9.0f} posts/s")
    print(f"ratio pipeline / loop         : {pipe_rate / loop_rate:9.1%}   (target >= 30%)")


if __name__ == "__main__":
    main()
