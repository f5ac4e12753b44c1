"""The same post gets the same result in a deployment: the bundled sample, run twice through an
enrich worker with the default model tier, gives identical per-post topic, sentiment and model_path."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from pipeline.models.enricher import DEFAULT_MODEL_DIR, MANIFEST
from pipeline.samples.generate import generate
from pipeline.schemas import EnrichedPost
from pipeline.settings import Topics
from pipeline.testing import post_messages, produce, wait_until
from pipeline.topics import ensure_topics
from tests.integration.kafka_io import read_topic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (DEFAULT_MODEL_DIR / MANIFEST).exists(), reason="needs `make models`"),
]

SAMPLE = generate(seed=7, count=600)  # what `make run` streams


def run_sample(make_settings, worker_factory) -> dict[str, tuple]:
    settings = make_settings(enricher="auto", worker_stages=("enrich",), topic_partitions=4, batch_within_s=0.05)
    asyncio.run(ensure_topics(settings))
    worker = worker_factory(settings)
    asyncio.run(produce(settings, Topics.RAW, post_messages(SAMPLE)))
    wait_until(lambda: worker.metric("pd_messages_out_total", stage="enrich") >= len(SAMPLE), 300, "sample enriched")
    worker.stop()
    records = asyncio.run(read_topic(settings, Topics.ENRICHED, expected=len(SAMPLE)))
    posts = [msgspec.json.decode(r.value, type=EnrichedPost) for r in records]
    return {p.id: (p.topic, p.secondary_topic, p.sentiment_label, round(p.sentiment_score, 6), p.model_path)
            for p in posts}


def test_the_sample_twice_gives_the_same_result_for_every_post(make_settings, worker_factory):
    first = run_sample(make_settings, worker_factory)
    second = run_sample(make_settings, worker_factory)
    assert len(first) == len(SAMPLE)
    assert second == first
    assert {path for *_, path in first.values()} <= {"learned", "empty"}
    assert sum(path == "learned" for *_, path in first.values()) > 0.9 * len(SAMPLE)
