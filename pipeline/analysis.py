"""What a post says, for the enrich stage: normalised text and entities, the post it reposts,
topic and sentiment.

The stage (`pipeline.stages.EnrichStage`) owns the plumbing: decoding, duplicate ids, dead
letters, message building. It asks an `Analyser` for the content, so the
plumbing is tested and benchmarked on its own (`bench.pipeline` measures it with an analyser
that does no work) and the content rules are tested without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import xxhash

from pipeline.models.enricher import Enrichment
from pipeline.models.routes import Routes, load_routes
from pipeline.models.taxonomy import load_taxonomy
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

    def classify(self, readings: Sequence[Reading], deadline: float | None) -> list[Enrichment]:
        """Topic and sentiment of a batch, one per reading. `deadline` is the `time.monotonic()`
        instant the stage computed for the batch (`ENRICH_DEADLINE_S` after it started); only a
        tier that can fall behind (the transformer) looks at it."""


class Enricher(Protocol):
    """What the analyser needs of a model tier (`pipeline.models.enricher`)."""

    def enrich(
        self, texts: Sequence[str], langs: Sequence[str], kinds: Sequence[str], *, deadline: float | None = None
    ) -> list[Enrichment]: ...


class ContentAnalyser:
    """The production analyser: `normalise`, repost detection and the model tier, which scores
    each distinct (text, language, kind) once.

    A post whose normalised text is empty (a bare link, "转发微博") is not scored: it is neutral,
    in the taxonomy's fallback topic, with `model_path = "empty"`. Any other text, however short
    or odd (emoji only, mixed scripts), goes to the model.
    """

    def __init__(self, settings: Settings, enricher: Enricher, routes: Routes | None = None):
        """`routes` defaults to the settings' route table (`ROUTES_PATH`)."""
        self.enricher = enricher
        self.routes = routes or load_routes(settings.routes_path)
        self.reposts = RepostDetector(capacity=settings.dedupe_capacity)
        self.results_by_text: ResultCache[int, Enrichment] = ResultCache(settings.dedupe_capacity)
        self.empty = Enrichment(load_taxonomy(settings.taxonomy_path).fallback_topic, "", 0.0, 0.0, "neutral", "empty")

    def read(self, post: RawPost) -> Reading:
        norm = normalise(post)
        return Reading(post, norm, self.reposts.check(post.id, norm.text_norm, norm.content_hash))

    def classify(self, readings: Sequence[Reading], deadline: float | None) -> list[Enrichment]:
        """A repost reuses its original's result only where the model would see the same input
        (text, language and kind), so the result never depends on which copy came first, and a
        replay reproduces the live scores whatever order it reads partitions in. A near
        duplicate (a repost with a comment) is marked as a repost but scored on its own text.
        """
        results: list[Enrichment | None] = [None] * len(readings)
        pending: dict[int, list[int]] = {}  # input key -> indexes in the batch
        texts, langs, kinds = [], [], []
        for i, reading in enumerate(readings):
            text, lang = reading.norm.text_norm, reading.norm.lang
            if not text.strip():
                results[i] = self.empty
                continue
            kind = self.routes.kind(reading.post.source)
            key = xxhash.xxh3_64_intdigest(f"{lang}\x00{kind}\x00{text}".encode("utf-8", "surrogatepass"))
            known = self.results_by_text.get(key)
            if known is not None:
                results[i] = known
            elif key in pending:
                pending[key].append(i)
            else:
                pending[key] = [i]
                texts.append(text)
                langs.append(lang)
                kinds.append(kind)
        if texts:
            for (key, rows), result in zip(pending.items(), self.enricher.enrich(texts, langs, kinds, deadline=deadline)):
                self.results_by_text.put(key, result)
                for i in rows:
                    results[i] = result
        return results  # type: ignore[return-value]
