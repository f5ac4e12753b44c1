"""The enrich stage's per-batch work, without a broker: validation, duplicates, reposts, the deadline."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from pipeline.analysis import ContentAnalyser
from pipeline.models.enricher import LexicalEnricher
from pipeline.schemas import RawPost, Reason
from pipeline.settings import Settings
from pipeline.stages import EnrichStage, RawRecord

T0 = datetime(2015, 2, 8, 10, tzinfo=timezone.utc)


class CountingEnricher:
    """The real lexical model, counting which texts reached it."""

    def __init__(self):
        self.model = LexicalEnricher.load()
        self.seen: list[str] = []
        self.deadlines: list[float | None] = []

    def enrich(self, texts, langs, kinds, *, deadline=None):
        self.seen.extend(texts)
        self.deadlines.append(deadline)
        return self.model.enrich(texts, langs, kinds, deadline=deadline)


@pytest.fixture
def stage():
    settings = Settings(max_text_chars=300)
    return EnrichStage(settings, ContentAnalyser(settings, CountingEnricher()))


def record(post: RawPost | bytes, offset: int, partition: int = 0) -> RawRecord:
    value = post if isinstance(post, bytes) else post.encode()
    return RawRecord(value=value, topic="posts.raw", partition=partition, offset=offset)


def post(post_id: str, text: str) -> RawPost:
    return RawPost(id=post_id, source="weibo", text=text, created_at=T0)


ORIGINAL = "香港 光复屯门 示威者 围堵 内地游客 骂他们是蝗虫 场面混乱 警方到场"


def test_posts_are_normalised_and_enriched(stage):
    out = stage.enrich([record(post("1", "香港遊客 內地 抗議 #光復屯門# http://t.cn/x @記者"), 0)])
    (enriched,) = out.enriched
    assert enriched.text.startswith("香港遊客") and "香港游客" in enriched.text_norm  # original kept, matched simplified
    assert enriched.lang == "zh" and "HK" in enriched.countries
    assert enriched.urls == ["http://t.cn/x"] and enriched.mentions
    assert enriched.sentiment_label in ("negative", "neutral", "positive")
    assert -1 <= enriched.sentiment_score <= 1 and enriched.model_path == "lexical"


def test_a_repost_reuses_the_result_without_a_second_inference(stage):
    out = stage.enrich(
        [record(post("1", ORIGINAL), 0), record(post("2", f"转发微博 //@路人甲: {ORIGINAL}"), 1)]
    )
    first, repost = out.enriched
    assert repost.is_repost and repost.repost_of == "1" and repost.model_path == first.model_path == "lexical"
    assert (repost.topic, repost.sentiment_score) == (first.topic, first.sentiment_score)
    assert len(stage.analyser.enricher.seen) == 1

    later = stage.enrich([record(post("3", f"RT @someone: {ORIGINAL}"), 2)])  # the same text, a later batch
    assert later.enriched[0].repost_of == "1" and later.enriched[0].sentiment_score == first.sentiment_score
    assert len(stage.analyser.enricher.seen) == 1


def test_the_batch_deadline_is_computed_once_from_the_settings(stage):
    before = time.monotonic()
    stage.enrich([record(post("1", ORIGINAL), 0)])
    (deadline,) = stage.analyser.enricher.deadlines
    assert before + stage.settings.enrich_deadline_s <= deadline <= time.monotonic() + stage.settings.enrich_deadline_s


def test_a_near_duplicate_is_marked_but_scored_on_its_own_text(stage):
    out = stage.enrich([record(post("1", ORIGINAL), 0), record(post("2", ORIGINAL + " 太丢人了，强烈谴责"), 1)])
    first, near = out.enriched
    assert near.is_repost and near.repost_of == "1" and near.model_path == "lexical"
    assert len(stage.analyser.enricher.seen) == 2


def test_scores_do_not_depend_on_the_order_partitions_are_read_in():
    """A replay reads partitions in another interleaving than the live run; it must score alike."""
    from pipeline.samples.generate import generate

    records = [record(p, i) for i, p in enumerate(generate(seed=7, count=600))]

    def scores(order: list[int]) -> dict[str, tuple]:
        stage = EnrichStage(Settings(), ContentAnalyser(Settings(), LexicalEnricher.load()))
        out = {}
        for start in range(0, len(order), 256):
            for post in stage.enrich([records[i] for i in order[start : start + 256]]).enriched:
                out[post.id] = (post.topic, post.secondary_topic, post.sentiment_score, post.sentiment_label)
        return out

    in_order = list(range(len(records)))
    partition_after_partition = sorted(in_order, key=lambda i: i % 4)
    assert scores(partition_after_partition) == scores(in_order)


def test_duplicate_id_is_dead_lettered_but_redelivery_is_processed(stage):
    first = stage.enrich([record(post("7", "Russia China energy deal signed"), 5)])
    assert len(first.enriched) == 1
    redelivered = stage.enrich([record(post("7", "Russia China energy deal signed"), 5)])  # same offset
    assert len(redelivered.enriched) == 1 and not redelivered.dead
    duplicate = stage.enrich([record(post("7", "another message reusing the id"), 9)])
    assert not duplicate.enriched
    assert duplicate.dead[0].reason is Reason.DUPLICATE_ID and duplicate.dead[0].offset == 9


def test_bad_records_do_not_stop_the_good_ones(stage):
    out = stage.enrich([record(b"nope", 0), record(post("8", "x" * 301), 1), record(post("9", "中俄友好合作"), 2)])
    assert [d.reason for d in out.dead] == [Reason.NOT_JSON, Reason.TEXT_TOO_LONG]
    assert [p.id for p in out.enriched] == ["9"]


def test_a_post_the_model_fails_on_costs_that_post_only(stage, monkeypatch):
    classify = stage.analyser.classify

    def fragile(readings, deadline_s):
        if any("poison" in r.post.text for r in readings):
            raise IndexError("tokenizer bug")
        return classify(readings, deadline_s)

    monkeypatch.setattr(stage.analyser, "classify", fragile)
    out = stage.enrich([record(post(str(i), "poison" if i == 5 else f"中俄友好合作 {i}"), i) for i in range(8)])
    assert [p.id for p in out.enriched] == [str(i) for i in range(8) if i != 5]
    assert [(d.reason, d.offset) for d in out.dead] == [(Reason.PROCESSING_ERROR, 5)]
    assert "IndexError: tokenizer bug" in out.dead[0].detail and "test_enrich_stage.py" in out.dead[0].detail


@pytest.mark.parametrize(
    "created_at", ["0001-01-01T00:00:00+08:00", "1800-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00"]
)
def test_a_date_outside_the_range_is_dead_lettered_not_raised(stage, created_at):
    value = post("1", "中俄友好合作").encode().replace(b'"2015-02-08T10:00:00Z"', f'"{created_at}"'.encode())
    out = stage.enrich([record(value, 0), record(post("2", "中俄友好合作"), 1)])
    assert [(d.reason, d.offset) for d in out.dead] == [(Reason.INVALID_VALUE, 0)]
    assert [p.id for p in out.enriched] == ["2"]
