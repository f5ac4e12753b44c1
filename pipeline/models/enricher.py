"""Facade the stream agent calls: topic + sentiment for a batch of normalised posts.

``Enricher`` runs the transformer path (e5 embeddings -> taxonomy head + sentiment head) with an
LRU cache keyed by a text hash (reposts are free) and a deadline: it keeps a running estimate of
seconds per post and sends what would not fit in ``deadline_s`` to the lexical model, so the
pipeline never falls behind without bound. ``LexicalEnricher`` is the same API without models.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import xxhash

from pipeline.models.encoder import QUERY, E5Encoder
from pipeline.models.lexical import SENTIMENT_CLASSES, LexicalSentimentModel, LexicalTopicModel
from pipeline.models.sentiment import SentimentHeads
from pipeline.models.taxonomy import Taxonomy, load_taxonomy
from pipeline.models.topic import TopicClassifier, load_examples

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "build"
DEFAULT_TAXONOMY = REPO_ROOT / "models" / "taxonomy.yaml"
DEFAULT_SEED_LEXICON = REPO_ROOT / "models" / "sentiment_lexicon.yaml"
ENCODER_DIR = "e5-small"
SENTIMENT_LEXICON = "sentiment_lexicon.json"
MANIFEST = "manifest.json"
EWMA_ALPHA = 0.3


@dataclass(frozen=True)
class Enrichment:
    topic: str
    secondary_topic: str
    topic_score: float
    sentiment_score: float
    sentiment_label: str
    model_path: str  # "transformer" | "lexical" | "cache"


def _check_lengths(texts: Sequence[str], langs: Sequence[str]) -> None:
    if len(texts) != len(langs):
        raise ValueError(f"texts and langs differ in length ({len(texts)} != {len(langs)})")


class LexicalEnricher:
    """Keyword/lexicon enrichment: microseconds per post, no model files required."""

    def __init__(self, topic: LexicalTopicModel, sentiment: LexicalSentimentModel) -> None:
        self.topic, self.sentiment = topic, sentiment

    @classmethod
    def load(cls, taxonomy_path: Path = DEFAULT_TAXONOMY, model_dir: Path | None = DEFAULT_MODEL_DIR, *,
             seed_lexicon: Path = DEFAULT_SEED_LEXICON, examples_path: Path | None = None) -> "LexicalEnricher":
        """Uses the learned lexicon from ``model_dir`` when it has been built, the seed lexicon always."""
        taxonomy = load_taxonomy(taxonomy_path)
        learned = Path(model_dir) / SENTIMENT_LEXICON if model_dir is not None else None
        topic = LexicalTopicModel(taxonomy)
        if examples_path is not None:
            texts, labels = zip(*load_examples(examples_path, taxonomy))
            topic = topic.with_examples(texts, labels)
        return cls(topic, LexicalSentimentModel.load(seed_lexicon, learned))

    def enrich(self, texts: Sequence[str], langs: Sequence[str], *,
               deadline_s: float | None = None) -> list[Enrichment]:
        _check_lengths(texts, langs)
        out = []
        for text, prediction in zip(texts, self.topic.predict(texts)):
            sentiment = self.sentiment.score(text)
            out.append(Enrichment(prediction.topic, prediction.secondary_topic, prediction.score,
                                  sentiment.score, sentiment.label, "lexical"))
        return out


class Enricher:
    def __init__(self, encoder: E5Encoder, topic: TopicClassifier, sentiment: SentimentHeads,
                 fallback: LexicalEnricher, *, cache_size: int = 100_000) -> None:
        self.encoder, self.topic, self.sentiment, self.fallback = encoder, topic, sentiment, fallback
        self.cache_size = cache_size
        self._cache: OrderedDict[int, Enrichment] = OrderedDict()
        self._lock = threading.Lock()
        self.seconds_per_post = self._measure_seconds_per_post()

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_MODEL_DIR, taxonomy_path: Path = DEFAULT_TAXONOMY, *,
             examples_path: Path | None = None, seed_lexicon: Path = DEFAULT_SEED_LEXICON,
             threads: int | None = None, cache_size: int = 100_000) -> "Enricher":
        model_dir = Path(model_dir)
        manifest_path = model_dir / MANIFEST
        if not manifest_path.exists():
            raise FileNotFoundError(f"{manifest_path} missing: run `make models` (or use LexicalEnricher)")
        manifest = json.loads(manifest_path.read_text())
        settings = manifest["encoder"]
        encoder = E5Encoder.load(model_dir / ENCODER_DIR, max_length=settings["max_length"],
                                 layers=settings["layers"], threads=threads)
        taxonomy = load_taxonomy(taxonomy_path)
        topic = TopicClassifier.zero_shot(taxonomy, encoder.encode)
        if examples_path is not None:
            texts, labels = zip(*load_examples(examples_path, taxonomy))
            topic = topic.with_examples(encoder.encode(texts), labels)
        fallback = LexicalEnricher.load(taxonomy_path, model_dir, seed_lexicon=seed_lexicon,
                                        examples_path=examples_path)
        sentiment = SentimentHeads.load(model_dir, manifest["sentiment_routes"], fallback.sentiment)
        return cls(encoder, topic, sentiment, fallback, cache_size=cache_size)

    @property
    def taxonomy(self) -> Taxonomy:
        return self.topic.taxonomy

    def _measure_seconds_per_post(self) -> float:
        """Seed the running estimate (and warm the kernels) with one small batch."""
        sample = ["warm-up post about embassy news and cultural exchange"] * 8
        start = time.perf_counter()
        self.encoder.encode(sample)
        return (time.perf_counter() - start) / len(sample)

    def _transformer(self, texts: list[str], langs: list[str]) -> list[Enrichment]:
        embeddings = self.encoder.encode(texts, QUERY)
        proba = self.sentiment.proba(embeddings, texts, langs)
        out = []
        for prediction, p in zip(self.topic.predict(embeddings, texts), proba):
            out.append(Enrichment(prediction.topic, prediction.secondary_topic, prediction.score,
                                  float(p[2] - p[0]), SENTIMENT_CLASSES[int(np.argmax(p))], "transformer"))
        return out

    def enrich(self, texts: Sequence[str], langs: Sequence[str], *,
               deadline_s: float | None = None) -> list[Enrichment]:
        _check_lengths(texts, langs)
        with self._lock:
            return self._enrich(texts, langs, deadline_s)

    def _enrich(self, texts, langs, deadline_s) -> list[Enrichment]:
        start = time.perf_counter()
        results: list[Enrichment | None] = [None] * len(texts)
        pending: dict[int, list[int]] = {}
        for i, (text, lang) in enumerate(zip(texts, langs)):
            key = xxhash.xxh3_64_intdigest(f"{lang}\x00{text}".encode("utf-8"))  # lang picks the sentiment head
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                results[i] = replace(hit, model_path="cache")
            else:
                pending.setdefault(key, []).append(i)
        keys = list(pending)
        if deadline_s is None:
            n_fit = len(keys)
        else:
            remaining = deadline_s - (time.perf_counter() - start)
            n_fit = min(len(keys), max(0, int(remaining / self.seconds_per_post)))
        fit, overflow = keys[:n_fit], keys[n_fit:]
        if fit:
            t0 = time.perf_counter()
            firsts = [pending[k][0] for k in fit]
            enriched = self._transformer([texts[i] for i in firsts], [langs[i] for i in firsts])
            observed = (time.perf_counter() - t0) / len(fit)
            self.seconds_per_post += EWMA_ALPHA * (observed - self.seconds_per_post)
            for key, item in zip(fit, enriched):
                self._remember(key, item)
                first, *duplicates = pending[key]
                results[first] = item
                for i in duplicates:
                    results[i] = replace(item, model_path="cache")
        if overflow:
            firsts = [pending[k][0] for k in overflow]
            lexical = self.fallback.enrich([texts[i] for i in firsts], [langs[i] for i in firsts])
            for key, item in zip(overflow, lexical):
                for i in pending[key]:
                    results[i] = item
        return results  # type: ignore[return-value]

    def _remember(self, key: int, item: Enrichment) -> None:
        self._cache[key] = item
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
