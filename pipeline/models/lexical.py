"""Fast lexical topic + sentiment model for zh/en/ru: the fallback when the transformer can't keep up.

Topic: taxonomy keywords (word-prefix match for en/ru, substring for zh), optionally plus
multinomial naive-Bayes n-gram weights learned from labelled examples.
Sentiment: a hand seed lexicon (models/sentiment_lexicon.yaml, with simple negation) plus, once
``make models`` has run, n-gram weights learned from the labelled sentiment corpora.
Features: lowercase words and word bigrams; CJK runs give character unigrams and bigrams.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from pipeline.models.taxonomy import Taxonomy
from pipeline.models.terms import CJK, WORD, KeywordScorer, TermMatcher
from pipeline.models.topic import LeafAggregator, TopicPrediction

SENTIMENT_CLASSES = ("negative", "neutral", "positive")
_TOKEN = re.compile(r"[\u3400-\u9fff]+|[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
KEYWORD_WEIGHT = 2.0  # one keyword hit ~ a strong n-gram
SEED_WEIGHT = 1.0
NEUTRAL_PRIOR = 0.5  # with no evidence at all, "neutral" wins


def features(text: str) -> list[str]:
    """Word unigrams + bigrams; CJK runs as character unigrams + bigrams (no segmenter needed)."""
    out: list[str] = []
    prev = None
    for tok in _TOKEN.findall(text.lower()):
        if CJK.match(tok):
            out.extend(tok)
            out.extend(tok[i:i + 2] for i in range(len(tok) - 1))
            prev = None
        else:
            out.append(tok)
            if prev is not None:
                out.append(f"{prev} {tok}")
            prev = tok
    return out


class NgramWeights:
    """Per-feature weight vectors over ``classes`` (learned in the build step), stored as a matrix."""

    def __init__(self, classes: Sequence[str], bias: np.ndarray, weights: dict[str, np.ndarray]) -> None:
        self.classes = tuple(classes)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.index = {f: i for i, f in enumerate(weights)}
        self.matrix = np.array(list(weights.values()), dtype=np.float64).reshape(len(weights), len(self.classes))

    def __len__(self) -> int:
        return len(self.index)

    def scores(self, feats: Sequence[str]) -> np.ndarray:
        rows = [i for i in map(self.index.get, set(feats)) if i is not None]
        return self.bias + self.matrix[rows].sum(axis=0)

    def to_json(self) -> dict:
        return {"classes": list(self.classes), "bias": self.bias.round(4).tolist(),
                "weights": dict(zip(self.index, self.matrix.round(4).tolist()))}

    @classmethod
    def from_json(cls, doc: dict) -> "NgramWeights":
        return cls(doc["classes"], np.array(doc["bias"]), {k: np.array(v) for k, v in doc["weights"].items()})


def naive_bayes_weights(texts: Sequence[str], labels: Sequence[str], classes: Sequence[str],
                        *, alpha: float = 0.5, max_features: int = 30000) -> NgramWeights:
    """Multinomial NB log-likelihoods, centred per feature, keeping the most discriminative ones."""
    counts = {c: Counter() for c in classes}
    for text, label in zip(texts, labels):
        counts[label].update(set(features(text)))
    vocab = sorted(set().union(*counts.values()))
    matrix = np.array([[counts[c][f] for f in vocab] for c in classes], dtype=np.float64)
    logp = np.log(matrix + alpha) - np.log(matrix.sum(axis=1, keepdims=True) + alpha * len(vocab))
    logp -= logp.mean(axis=0, keepdims=True)
    keep = np.argsort(-np.abs(logp).max(axis=0))[:max_features]
    return NgramWeights(tuple(classes), np.zeros(len(classes)), {vocab[i]: logp[:, i] for i in keep})


class LexicalTopicModel:
    def __init__(self, taxonomy: Taxonomy, learned: NgramWeights | None = None) -> None:
        self.taxonomy, self.learned = taxonomy, learned
        self._keywords = KeywordScorer(taxonomy)
        self._aggregate = LeafAggregator(taxonomy, taxonomy.leaf_ids)

    def with_examples(self, texts: Sequence[str], labels: Sequence[str]) -> "LexicalTopicModel":
        return LexicalTopicModel(self.taxonomy, naive_bayes_weights(texts, labels, self.taxonomy.leaf_ids))

    def leaf_scores(self, texts: Sequence[str]) -> np.ndarray:
        """(texts x leaves) evidence: keyword hits, plus learned n-gram weights when trained."""
        scores = KEYWORD_WEIGHT * self._keywords.hits_matrix(texts)
        if self.learned is not None:
            scores += np.array([self.learned.scores(features(text)) for text in texts]).reshape(scores.shape)
        return scores

    def predict(self, texts: Sequence[str]) -> list[TopicPrediction]:
        """One softmax and one aggregation for the whole batch; texts without evidence get the fallback topic."""
        scores = self.leaf_scores(texts)
        evident = scores.any(axis=1)
        out = [TopicPrediction(self.taxonomy.fallback_topic, "", 0.0)] * len(texts)
        if evident.any():
            rows = scores[evident]
            proba = np.exp(rows - rows.max(axis=1, keepdims=True))
            proba /= proba.sum(axis=1, keepdims=True)
            for i, prediction in zip(np.flatnonzero(evident), self._aggregate(proba)):
                out[i] = prediction
        return out


@dataclass(frozen=True)
class SentimentResult:
    score: float  # P(positive) - P(negative), in [-1, 1]
    label: str


class EmoticonCounter:
    """Hits of the seed lexicon's emoticon codes (`[哈哈]`) and emoji, per polarity, in one regex pass."""

    def __init__(self, emoticons: dict) -> None:
        polarity = {term.lower(): 1 for term in emoticons.get("positive", [])}
        polarity.update({term.lower(): -1 for term in emoticons.get("negative", [])})
        self._polarity = polarity
        terms = sorted(polarity, key=len, reverse=True)  # longest first: "[泪流满面]" before "[泪]"
        self._pattern = re.compile("|".join(map(re.escape, terms))) if terms else None

    def counts(self, text: str) -> tuple[int, int]:
        """(negative hits, positive hits)."""
        negative = positive = 0
        if self._pattern is not None:
            for hit in self._pattern.findall(text):
                if self._polarity[hit] > 0:
                    positive += 1
                else:
                    negative += 1
        return negative, positive

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, SENTIMENT_CLASSES) hits: negative hits, 0, positive hits."""
        out = np.zeros((len(texts), len(SENTIMENT_CLASSES)), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, 0], out[i, 2] = self.counts(text)
        return out


class LexicalSentimentModel:
    def __init__(self, seed: dict, learned: NgramWeights | None = None) -> None:
        self.seed, self.learned = seed, learned
        self.emoticons = EmoticonCounter(seed.get("emoticons", {}))
        self._matcher = TermMatcher([(t, polarity) for polarity, key in ((-1, "negative"), (1, "positive"))
                                     for terms in seed[key].values() for t in terms])
        self._negators = {t for terms in seed.get("negators", {}).values() for t in terms}

    def _negated(self, before: str) -> bool:
        return before in self._negators or before.endswith("n't") or any(before.endswith(n) for n in self._negators
                                                                          if CJK.match(n))

    @classmethod
    def load(cls, seed_path: Path, learned_path: Path | None = None) -> "LexicalSentimentModel":
        seed = yaml.safe_load(Path(seed_path).read_text(encoding="utf-8"))
        learned = None
        if learned_path is not None and Path(learned_path).exists():
            learned = NgramWeights.from_json(json.loads(Path(learned_path).read_text(encoding="utf-8")))
        return cls(seed, learned)

    def with_learned(self, learned: NgramWeights | None) -> "LexicalSentimentModel":
        return LexicalSentimentModel(self.seed, learned)

    def score(self, text: str) -> SentimentResult:
        negative, neutral, positive = self.logits(text).tolist()  # three floats: plain math beats numpy calls
        top = max(negative, neutral, positive)
        e_neg, e_neu, e_pos = math.exp(negative - top), math.exp(neutral - top), math.exp(positive - top)
        total = e_neg + e_neu + e_pos
        label = 0 if negative == top else 1 if neutral == top else 2  # ties as argmax breaks them
        return SentimentResult((e_pos - e_neg) / total, SENTIMENT_CLASSES[label])

    def logits(self, text: str) -> np.ndarray:
        """Seed-lexicon hits plus learned n-gram weights, over SENTIMENT_CLASSES."""
        seed, learned = self.logit_parts(text)
        return seed + learned

    def logit_parts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(seed-lexicon logits, negation-aware; learned n-gram logits, zeros if none learned)."""
        lowered = text.lower()
        seed = np.array([0.0, NEUTRAL_PRIOR, 0.0])
        for polarity, before in self._matcher.find(lowered, WORD.findall(lowered)):
            if self._negated(before):
                polarity = -polarity
            seed[1 + polarity] += SEED_WEIGHT
        negative, positive = self.emoticons.counts(lowered)
        seed[0] += SEED_WEIGHT * negative
        seed[2] += SEED_WEIGHT * positive
        learned = self.learned.scores(features(text)) if self.learned is not None else np.zeros(3)
        return seed, learned
