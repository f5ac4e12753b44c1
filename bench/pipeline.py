"""End-to-end posts/s of the pipeline next to a minimal aiokafka forward loop, on one broker, in one run.

Both sides are measured the same way: warmed up (groups joined, messages through), then N raw
posts are produced as a backlog (the pipeline's workers paused meanwhile) and the clock runs from
the start of consumption until the last one is out (forwarded / stored in ClickHouse), so the
producer's own speed is in neither figure.

The target figure runs the pipeline with trivial enrichment (`TrivialAnalyser`: no
normalisation, repost search or model), so it measures what the pipeline itself costs: every
post is decoded and validated, checked for a duplicate id, built into an enriched message,
written to posts.enriched, validated again and stored in ClickHouse, and counted by the alert
engine against every watch, exactly as in production. Two deployments: one worker with every
stage, and enrichment in a worker of its own (`WORKER_STAGES`). The last figures are the same
split with real enrichment: the learned model production runs for every post (target: 20 % of
the loop), and the lexical model for scale (the model paths have their own benchmark,
`bench.enrichment`). The loop and each deployment take turns for `--rounds` rounds and the
median of the rounds' ratios is printed: the machine is shared, and one round can be a third
slower than the next.

`python -m bench.pipeline worker` is the trivial-enrichment worker the benchmark starts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import xxhash
from aiokafka import AIOKafkaConsumer

from pipeline.analysis import Reading
from pipeline.kafka import create_producer
from pipeline.models.enricher import Enrichment
from pipeline.schemas import RawPost
from pipeline.settings import STAGES, Settings, Topics
from pipeline.stack import EmbeddedStack, free_port
from pipeline.testing import WorkerProcess, post_messages, produce, wait_until
from pipeline.topics import ensure_topics
from pipeline.transforms import Normalised
from pipeline.worker import run_worker

TEXTS = [
    "香港 内地游客 冲突 令人担忧 #光复屯门#",
    "Russia and China sign new energy cooperation agreement in Beijing",
    "俄罗斯驻华大使馆 新年 祝福 中国人民 节日快乐",
    "World Cup fans travel to Moscow, tourism numbers surge",
    "Посольство России поздравляет с праздником",
]


def posts(n: int, prefix: str = "b", first: int = 0) -> list[RawPost]:
    """A post a second from 2015-02-08, the `first`-th second on: a stream that moves on in event time."""
    start = datetime(2015, 2, 8, tzinfo=timezone.utc) + timedelta(seconds=first)
    return [
        RawPost(id=f"{prefix}{i}", source="x", text=f"{TEXTS[i % len(TEXTS)]} {i}", created_at=start + timedelta(seconds=i))
        for i in range(n)
    ]


def settle(busy_below: float = 0.15, timeout_s: float = 60.0) -> None:
    """Wait until the machine is nearly idle (Linux /proc/stat), so a measurement does not share
    the cores with the last one's after-work: ClickHouse merges the parts a round inserted for
    seconds after it, which slowed the next round's loop by up to a third."""

    def busy_and_total() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy, total = busy_and_total()
        time.sleep(0.5)
        busy_after, total_after = busy_and_total()
        if (busy_after - busy) <= busy_below * max(1, total_after - total):
            return
    print(f"  (the machine stayed busier than {busy_below:.0%} for {timeout_s:.0f} s: measuring anyway)", flush=True)


class TrivialAnalyser:
    """Enrichment that does no work: the text as it came, no entities or reposts, and for every
    post what the lexical model answers for a text without evidence. What is left of a post's
    cost is the pipeline's own."""

    UNSCORED = Enrichment("other", "", 0.0, 0.0, "neutral", "lexical")

    def __init__(self, settings: Settings):
        del settings  # the analyser factory's signature; nothing to configure

    def read(self, post: RawPost) -> Reading:
        empty = ()
        content_hash = xxhash.xxh64_hexdigest(post.text.encode())
        norm = Normalised(post.text, post.lang or "und", empty, empty, empty, empty, empty, content_hash)
        return Reading(post, norm, repost=None)

    def classify(self, readings: Sequence[Reading], deadline: float | None) -> list[Enrichment]:
        return [self.UNSCORED] * len(readings)


async def forward_loop_rate(settings: Settings, n: int) -> float:
    """The floor of any Kafka pipeline: consume posts.raw, produce the same bytes elsewhere."""
    consumer = AIOKafkaConsumer(
        settings.topic(Topics.RAW), **settings.kafka_client_kwargs(), group_id="bench-loop", auto_offset_reset="earliest"
    )
    producer = create_producer(settings, client_id="bench-loop")
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


STAGE_METRIC_LABEL = {"enrich": "enrich", "store": "sink", "detect": "alerts"}


class Deployment:
    """The pipeline run as `stages`: one worker per entry, each with those stages, started as
    `python -m <module> worker`; `rate` times one backlog through it."""

    def __init__(self, settings: Settings, stages: Sequence[tuple[str, ...]], module: str, log_dir: Path, tag: str):
        self.settings, self.stages, self.module, self.log_dir, self.tag = settings, stages, module, log_dir, tag
        self.workers: list[WorkerProcess] = []
        self.stored_before = 0
        self._stack = ExitStack()

    def __enter__(self) -> "Deployment":
        for i, stages in enumerate(self.stages):
            ports = {"metrics_port": free_port(), "web_port": free_port()} if i else {}
            worker_settings = self.settings.model_copy(update={"worker_stages": stages, **ports})
            log_path = self.log_dir / f"bench-{self.tag}-worker-{i}.log"
            self.workers.append(WorkerProcess(worker_settings, log_path, self.module).start())
            self._stack.callback(self.workers[-1].stop)
        self._warm_up()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def _storer(self) -> WorkerProcess:
        return next(w for w in self.workers if "store" in w.settings.worker_stages)

    def stored(self) -> float:
        return self._storer().metric("pd_sink_rows_total", table="posts")

    def _warm_up(self) -> None:
        """Posts are fed until every worker has handled some, so each consumer group has settled
        (no rebalance can land inside a measurement)."""

        def handled_some(worker: WorkerProcess) -> bool:
            return worker.metric("pd_messages_in_total", stage=STAGE_METRIC_LABEL[worker.settings.worker_stages[0]]) > 0

        while not all(handled_some(worker) for worker in self.workers):
            self._produce(posts(16, prefix=f"{self.tag}-warm-up-{self.stored_before}-", first=self.stored_before))
            self.stored_before += 16
            wait_until(lambda: self.stored() >= self.stored_before, 180, "warm-up posts stored", interval_s=0.05)

    def _produce(self, batch: list[RawPost]) -> None:
        asyncio.run(produce(self.settings, Topics.RAW, post_messages(batch)))

    def rate(self, n: int, round_: int) -> float:
        """The end is the store stage's own clock of its last batch (`pd_stage_last_progress_seconds`),
        so the polling here can be slow (it costs the worker CPU) without blurring the figure."""
        settle()
        with ExitStack() as paused:
            for worker in self.workers:
                paused.enter_context(worker.paused())
            self._produce(posts(n, prefix=f"{self.tag}-{round_}-", first=self.stored_before))
            started = time.time()  # the workers resume as this block ends
        self.stored_before += n
        wait_until(lambda: self.stored() >= self.stored_before, 600, "all posts stored", interval_s=0.5)
        finished = self._storer().metric("pd_stage_last_progress_seconds", stage="sink")
        return n / (finished - started)


TRIVIAL, PRODUCTION = "bench.pipeline", "pipeline"  # the worker modules: this one's, and production's
DEPLOYMENTS = {  # name: (stages of each worker, worker module, ENRICHER)
    "trivial enrichment, one worker": ([STAGES], TRIVIAL, "lexical"),
    "trivial enrichment, enrich + store/detect": ([("enrich",), ("store", "detect")], TRIVIAL, "lexical"),
    "learned enrichment, enrich + store/detect": ([("enrich",), ("store", "detect")], PRODUCTION, "learned"),
    "lexical enrichment, enrich + store/detect": ([("enrich",), ("store", "detect")], PRODUCTION, "lexical"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["worker"], help="run the trivial-enrichment worker instead")
    parser.add_argument("--posts", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="measure only the deployments whose name contains this")
    args = parser.parse_args()
    if args.command == "worker":  # started by `Deployment`, configured by the environment like any worker
        run_worker(Settings(), analyser=TrivialAnalyser)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp_path)
        with EmbeddedStack(base, persistent=False):
            loop_settings = base.model_copy(update={"topic_prefix": "loop."})
            asyncio.run(ensure_topics(loop_settings, (Topics.RAW, "bench.copy")))
            pipe_settings = base.model_copy(
                update={
                    "clickhouse_url": f"chdb://{tmp_path / 'chdb'}",
                    "metrics_port": free_port(),
                    "web_port": free_port(),
                }
            )
            print(f"{args.posts:,} posts a round; the loop and the pipeline take turns, {args.rounds} rounds each")
            for i, (name, (stages, module, enricher)) in enumerate(DEPLOYMENTS.items()):  # each as it is measured
                if args.only and args.only not in name:
                    continue
                namespace = {"topic_prefix": f"pipe{i}.", "app_id": f"bench{i}", "enricher": enricher}
                deployment_settings = pipe_settings.model_copy(update=namespace)
                asyncio.run(ensure_topics(deployment_settings))
                loop_rates, pipe_rates = [], []
                with Deployment(deployment_settings, stages, module, tmp_path, tag=f"d{i}") as deployment:
                    for round_ in range(args.rounds):  # on a shared machine, neighbours' turns see the same noise
                        settle()
                        loop_rates.append(asyncio.run(forward_loop_rate(loop_settings, args.posts)))
                        pipe_rates.append(deployment.rate(args.posts, round_))
                ratio = statistics.median(p / loop for p, loop in zip(pipe_rates, loop_rates))
                print(
                    f"pipeline, {name:<41}: {statistics.median(pipe_rates):7.0f} posts/s"
                    f" = {ratio:6.1%} of the loop (median of the rounds'"
                    f" {', '.join(f'{p:.0f}/{loop:.0f} = {p / loop:.1%}' for p, loop in zip(pipe_rates, loop_rates))})",
                    flush=True,
                )
    print("targets: the pipeline with trivial enrichment (ClickHouse, posts.enriched, alerts) >= 30% of the loop;"
          " with the learned enrichment, split, >= 20%")


if __name__ == "__main__":
    main()
