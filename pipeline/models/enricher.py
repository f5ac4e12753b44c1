"""Topic + sentiment for a batch of normalised posts, in three tiers with one API.

- ``LearnedEnricher`` (``model_path = "learned"``, the default): `TextFeaturiser` features
  (hashed character n-grams + e5 token embeddings) into the routed sentiment heads, and the
  zero-shot taxonomy classifier over the token embeddings. Fast enough for every post, and a
  post's result depends on its text, language and kind alone (never on its batch or on timing).
- ``TransformerEnricher`` (``"transformer"``, ``ENRICHER=transformer``): the e5 encoder (8 layers,
  int8) as a second tier where cores allow; its heads read the learned features plus the e5
  embedding. Posts that would not fit in the batch's deadline go to the learned tier, so a
  surge slows nothing down; they say ``"learned"``.
- ``LexicalEnricher`` (``"lexical"``): keywords and lexicon, no model files: what runs before
  ``make models`` has built the others.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import sparse

from pipeline.models.encoder import QUERY, E5Encoder
from pipeline.models.lexical import SENTIMENT_CLASSES, LexicalSentimentModel, LexicalTopicModel
from pipeline.models.routes import Routes, load_routes
from pipeline.models.sentiment import SentimentHeads
from pipeline.models.taxonomy import Taxonomy, load_taxonomy
from pipeline.models.textfeatures import Batch, TextFeaturiser, TokenEmbeddings
from pipeline.models.topic import TopicClassifier, load_examples

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "build"
DEFAULT_TAXONOMY = REPO_ROOT / "models" / "taxonomy.yaml"
DEFAULT_ROUTES = REPO_ROOT / "models" / "routes.yaml"
DEFAULT_SEED_LEXICON = REPO_ROOT / "models" / "sentiment_lexicon.yaml"
ENCODER_DIR = "e5-small"
LEARNED_DIR, TRANSFORMER_DIR = "learned", "transformer"
IDF_FILE, TOKEN_EMBEDDINGS_FILE = "idf.npy", "token_embeddings.npz"
SENTIMENT_LEXICON = "sentiment_lexicon.json"
MANIFEST = "manifest.json"
# Zero-shot topics over the token embeddings (their similarities are on another scale than
# e5's sentence embeddings): chosen on the BBC training part, as e5's were.
TOKEN_TOPIC_TEMPERATURE = 10.0
TOKEN_TOPIC_KEYWORD_BOOST = 3.0
E5_FEATURE_SCALE = 1.0  # the transformer tier's heads read [learned features | scale x e5 embedding]
EWMA_ALPHA = 0.3


@dataclass(frozen=True)
class Enrichment:
    topic: str
    secondary_topic: str
    topic_score: float
    sentiment_score: float
    sentiment_label: str
    model_path: str  # "learned" | "transformer" | "lexical" | "empty"


def _check_lengths(texts: Sequence[str], *others: Sequence[str]) -> None:
    if any(len(other) != len(texts) for other in others):
        raise ValueError(f"texts, langs and kinds differ in length ({len(texts)}, {[len(o) for o in others]})")


def _manifest(model_dir: Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `make models` (or use LexicalEnricher)")
    return json.loads(path.read_text())


def _with_examples_path(taxonomy: Taxonomy, examples_path: Path | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if examples_path is None:
        return (), ()
    texts, labels = zip(*load_examples(examples_path, taxonomy))
    return texts, labels


class LexicalEnricher:
    """Keyword/lexicon enrichment: microseconds per post, no model files required."""

    path = "lexical"

    def __init__(self, topic: LexicalTopicModel, sentiment: LexicalSentimentModel) -> None:
        self.topic, self.sentiment = topic, sentiment

    @classmethod
    def load(cls, taxonomy_path: Path = DEFAULT_TAXONOMY, model_dir: Path | None = DEFAULT_MODEL_DIR, *,
             seed_lexicon: Path = DEFAULT_SEED_LEXICON, examples_path: Path | None = None) -> "LexicalEnricher":
        """Uses the learned lexicon from ``model_dir`` when it has been built, the seed lexicon always."""
        taxonomy = load_taxonomy(taxonomy_path)
        learned = Path(model_dir) / SENTIMENT_LEXICON if model_dir is not None else None
        topic = LexicalTopicModel(taxonomy)
        texts, labels = _with_examples_path(taxonomy, examples_path)
        if texts:
            topic = topic.with_examples(texts, labels)
        return cls(topic, LexicalSentimentModel.load(seed_lexicon, learned))

    def enrich(self, texts: Sequence[str], langs: Sequence[str], kinds: Sequence[str], *,
               deadline: float | None = None) -> list[Enrichment]:
        _check_lengths(texts, langs, kinds)
        out = []
        for text, prediction in zip(texts, self.topic.predict(texts)):
            sentiment = self.sentiment.score(text)
            out.append(Enrichment(prediction.topic, prediction.secondary_topic, prediction.score,
                                  sentiment.score, sentiment.label, self.path))
        return out


def _enrichments(topics, proba: np.ndarray, path: str) -> list[Enrichment]:
    return [Enrichment(t.topic, t.secondary_topic, t.score, float(p[2] - p[0]),
                       SENTIMENT_CLASSES[int(np.argmax(p))], path) for t, p in zip(topics, proba)]


class LearnedEnricher:
    path = "learned"

    def __init__(self, featuriser: TextFeaturiser, topic: TopicClassifier, sentiment: SentimentHeads) -> None:
        self.featuriser, self.topic, self.sentiment = featuriser, topic, sentiment

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_MODEL_DIR, taxonomy_path: Path = DEFAULT_TAXONOMY, *,
             routes_path: Path = DEFAULT_ROUTES, seed_lexicon: Path = DEFAULT_SEED_LEXICON,
             examples_path: Path | None = None) -> "LearnedEnricher":
        model_dir = Path(model_dir)
        _manifest(model_dir)
        featuriser = load_featuriser(model_dir)
        taxonomy = load_taxonomy(taxonomy_path)
        topic = TopicClassifier.zero_shot(taxonomy, featuriser_embed(featuriser),
                                          temperature=TOKEN_TOPIC_TEMPERATURE,
                                          keyword_boost=TOKEN_TOPIC_KEYWORD_BOOST)
        texts, labels = _with_examples_path(taxonomy, examples_path)
        if texts:
            topic = topic.with_examples(featuriser_embed(featuriser)(texts), labels)
        lexical = LexicalSentimentModel.load(seed_lexicon)
        sentiment = SentimentHeads.load(model_dir / LEARNED_DIR, load_routes(routes_path), lexical.emoticons)
        return cls(featuriser, topic, sentiment)

    @property
    def taxonomy(self) -> Taxonomy:
        return self.topic.taxonomy

    def enrich(self, texts: Sequence[str], langs: Sequence[str], kinds: Sequence[str], *,
               deadline: float | None = None) -> list[Enrichment]:
        """Every post, whatever the deadline: this tier is the one that keeps up."""
        _check_lengths(texts, langs, kinds)
        if not texts:
            return []
        features, embedded = self.featuriser.transform(texts)
        proba = self.sentiment.proba(features, texts, langs, kinds)
        return _enrichments(self.topic.predict(embedded, texts), proba, self.path)


class TransformerEnricher:
    path = "transformer"

    def __init__(self, encoder: E5Encoder, topic: TopicClassifier, sentiment: SentimentHeads,
                 learned: LearnedEnricher) -> None:
        self.encoder, self.topic, self.sentiment, self.learned = encoder, topic, sentiment, learned
        self.seconds_per_post = self._measure_seconds_per_post()

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_MODEL_DIR, taxonomy_path: Path = DEFAULT_TAXONOMY, *,
             routes_path: Path = DEFAULT_ROUTES, seed_lexicon: Path = DEFAULT_SEED_LEXICON,
             examples_path: Path | None = None, threads: int | None = None) -> "TransformerEnricher":
        model_dir = Path(model_dir)
        settings = _manifest(model_dir)["encoder"]
        learned = LearnedEnricher.load(model_dir, taxonomy_path, routes_path=routes_path, seed_lexicon=seed_lexicon,
                                       examples_path=examples_path)
        encoder = E5Encoder.load(model_dir / ENCODER_DIR, max_length=settings["max_length"],
                                 layers=settings["layers"], threads=threads)
        topic = TopicClassifier.zero_shot(learned.taxonomy, encoder.encode)
        texts, labels = _with_examples_path(learned.taxonomy, examples_path)
        if texts:
            topic = topic.with_examples(encoder.encode(texts), labels)
        sentiment = SentimentHeads.load(model_dir / TRANSFORMER_DIR, learned.sentiment.routes,
                                        learned.sentiment.emoticons)
        return cls(encoder, topic, sentiment, learned)

    @property
    def taxonomy(self) -> Taxonomy:
        return self.topic.taxonomy

    def _measure_seconds_per_post(self) -> float:
        """Seed the running estimate (and warm the kernels) with one small batch."""
        sample = ["warm-up post about embassy news and cultural exchange"] * 8
        start = time.monotonic()
        self.encoder.encode(sample)
        return (time.monotonic() - start) / len(sample)

    def _transformer(self, texts: Sequence[str], langs: Sequence[str], kinds: Sequence[str]) -> list[Enrichment]:
        embeddings = self.encoder.encode(texts, QUERY)
        learned_features, _ = self.learned.featuriser.transform(texts)
        features = transformer_features(learned_features, embeddings)
        proba = self.sentiment.proba(features, texts, langs, kinds)
        return _enrichments(self.topic.predict(embeddings, texts), proba, self.path)

    def enrich(self, texts: Sequence[str], langs: Sequence[str], kinds: Sequence[str], *,
               deadline: float | None = None) -> list[Enrichment]:
        """The first posts that fit before `deadline` (a `time.monotonic()` instant, None: all of
        them) by the running seconds-per-post estimate take the transformer, the rest the learned tier."""
        _check_lengths(texts, langs, kinds)
        n_fit = len(texts)
        if deadline is not None:
            n_fit = min(n_fit, max(0, int((deadline - time.monotonic()) / self.seconds_per_post)))
        out: list[Enrichment] = []
        if n_fit:
            started = time.monotonic()
            out = self._transformer(texts[:n_fit], langs[:n_fit], kinds[:n_fit])
            observed = (time.monotonic() - started) / n_fit
            self.seconds_per_post += EWMA_ALPHA * (observed - self.seconds_per_post)
        if n_fit < len(texts):
            out += self.learned.enrich(texts[n_fit:], langs[n_fit:], kinds[n_fit:])
        return out


def transformer_features(learned_features: sparse.csr_matrix, e5_embeddings: np.ndarray) -> sparse.csr_matrix:
    return sparse.hstack([learned_features, sparse.csr_matrix(E5_FEATURE_SCALE * e5_embeddings)], format="csr")


def load_featuriser(model_dir: Path) -> TextFeaturiser:
    directory = Path(model_dir) / LEARNED_DIR
    return TextFeaturiser(np.load(directory / IDF_FILE), TokenEmbeddings.load(directory / TOKEN_EMBEDDINGS_FILE))


def featuriser_embed(featuriser: TextFeaturiser):
    """The token-embedding `Embed` (texts, prefix) -> vectors the topic classifier takes for texts
    that are not normalised posts (taxonomy descriptions, examples): lower-cased as `normalise` does."""
    return lambda texts, prefix="": featuriser.embeddings.embed(Batch.of([t.lower() for t in texts]))
