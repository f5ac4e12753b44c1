"""What a post says, for the enrich stage: normalised text and entities, the post it reposts,
topic and sentiment.

The stage (`pipeline.stages.EnrichStage`) owns the plumbing: decoding, duplicate ids, dead
letters, message building. It asks an `Analyser` for the content, so the
plumbing is tested and benchmarked on its own (`bench.pipeline` measures it with an analyser
that does no work) and the content rules are tested without it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from pipeline.models.enricher import Enrichment
from pipeline.schemas import RawPost
from pipeline.settings import Settings
from pipeline.transforms import Normalised, RepostDetector, RepostMatch, ResultCache, normalise


@dataclass(frozen=True)
class Reading:
    """One post as the analyser read it, before the batch's models ran."""

    post: RawPost
    norm: Normalised
    repost: RepostMatch | None

    @property
    def repost_of(self) -> str | None:
        return self.repost.first_id if self.repost else None


class Analyser(Protocol):
    def read(self, post: RawPost) -> Reading:
        """Per post; an exception costs that post only (it is dead-lettered as processing_error)."""

    def classify(self, readings: Sequence[Reading], deadline_s: float) -> list[Enrichment]:
        """Topic and sentiment of a batch, one per reading, within about `deadline_s` of model time."""


class Enricher(Protocol):
    """What the analyser needs of a model: `pipeline.models.enricher.Enricher` or `LexicalEnricher`."""

    def enrich(
        self, texts: Sequence[str], langs: Sequence[str], *, deadline_s: float | None = None
    ) -> list[Enrichment]: ...


class ContentAnalyser:
    """The production analyser: `normalise`, repost detection and the model, which scores each
    text once: an exact copy reuses the result of the post it copies."""

    def __init__(self, settings: Settings, enricher: Enricher):
        self.enricher = enricher
        self.reposts = RepostDetector(capacity=settings.dedupe_capacity)
        self.results_by_post: ResultCache[str, Enrichment] = ResultCache(settings.dedupe_capacity)

    def read(self, post: RawPost) -> Reading:
        norm = normalise(post)
        return Reading(post, norm, self.reposts.check(post.id, norm.text_norm, norm.content_hash))

    def classify(self, readings: Sequence[Reading], deadline_s: float) -> list[Enrichment]:
        """A near duplicate (a repost with a comment) is marked as a repost but scored on its own
        text: were it to reuse its original's scores, they would depend on which of the two the
        worker happened to read first, and a replay would not reproduce the live results.
        """
        started = time.monotonic()
        results: list[Enrichment | None] = [None] * len(readings)
        copies: list[tuple[int, int]] = []  # (repost index, index of its original in this batch)
        index_in_batch: dict[str, int] = {}
        fresh_index, fresh_texts, fresh_langs = [], [], []
        for i, reading in enumerate(readings):
            index_in_batch[reading.post.id] = i
            repost_of = reading.repost_of if reading.repost is not None and reading.repost.exact else None
            known = self.results_by_post.get(repost_of) if repost_of else None
            if known is not None:
                results[i] = replace(known, model_path="cache")
            elif repost_of in index_in_batch:
                copies.append((i, index_in_batch[repost_of]))
            else:
                fresh_index.append(i)
                fresh_texts.append(reading.norm.text_norm)
                fresh_langs.append(reading.norm.lang)
        if fresh_texts:
            budget = max(0.0, deadline_s - (time.monotonic() - started))
            for i, result in zip(fresh_index, self.enricher.enrich(fresh_texts, fresh_langs, deadline_s=budget)):
                results[i] = result
        for i, original in copies:
            results[i] = replace(results[original], model_path="cache")
        for reading, result in zip(readings, results):
            self.results_by_post.put(reading.post.id, result)
        return results  # type: ignore[return-value]
