"""Taxonomy topic classifier over e5 embeddings.

Zero-shot: each leaf's prototype is the normalised mean embedding of its descriptions (all
languages), and the head's weights are those prototypes times a temperature, so the same
``SoftmaxHead`` code path serves zero-shot and supervised use. The leaf's keywords add a small
logit per hit (on BBC zero-shot: 0.83 -> 0.93 accuracy). Labelled examples (JSONL of
``{"text", "label"}`` with leaf ids) fine-tune that head starting from the prototypes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pipeline.models.encoder import QUERY
from pipeline.models.linear import SoftmaxHead, fit_softmax
from pipeline.models.taxonomy import Taxonomy, TaxonomyError
from pipeline.models.terms import KeywordScorer

PROTOTYPE_PREFIX = QUERY  # e5: symmetric tasks (classification) use "query: " on both sides
TEMPERATURE = 50.0
KEYWORD_BOOST = 0.75  # logit added per keyword hit: the taxonomy's keywords are label evidence too
Embed = Callable[[Sequence[str], str], np.ndarray]


@dataclass(frozen=True)
class TopicPrediction:
    topic: str
    secondary_topic: str
    score: float  # probability of the first-level topic


def load_examples(path: Path, taxonomy: Taxonomy) -> list[tuple[str, str]]:
    """Read ``{"text": ..., "label": leaf_id}`` lines; unknown labels are an error, not noise."""
    rows, unknown = [], set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text, label = str(item["text"]), str(item["label"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TaxonomyError(f"{path}:{n}: expected a JSON object with 'text' and 'label' ({exc})") from None
        if label not in taxonomy.leaf_ids:
            unknown.add(label)
        rows.append((text, label))
    if unknown:
        raise TaxonomyError(f"{path}: labels not in the taxonomy: {sorted(unknown)}")
    return rows


class LeafAggregator:
    """Turns leaf probabilities into (first-level topic, its best leaf, topic probability)."""

    def __init__(self, taxonomy: Taxonomy, classes: Sequence[str]) -> None:
        self.taxonomy, self.classes = taxonomy, tuple(classes)
        parents = [taxonomy.leaf(leaf_id).parent for leaf_id in self.classes]
        self._membership = np.array([[p == t for t in taxonomy.topics] for p in parents], dtype=np.float32)

    def __call__(self, leaf_proba: np.ndarray) -> list[TopicPrediction]:
        topic_p = leaf_proba @ self._membership
        out = []
        for lp, tp in zip(leaf_proba, topic_p):
            t = int(tp.argmax())
            in_topic = np.where(self._membership[:, t] > 0, lp, -1.0)
            out.append(TopicPrediction(self.taxonomy.topics[t], self.classes[int(in_topic.argmax())], float(tp[t])))
        return out


class TopicClassifier:
    def __init__(self, taxonomy: Taxonomy, head: SoftmaxHead, *, keyword_boost: float = KEYWORD_BOOST) -> None:
        self.taxonomy, self.head, self.keyword_boost = taxonomy, head, keyword_boost
        self._aggregate = LeafAggregator(taxonomy, head.classes)
        self._keywords = KeywordScorer(taxonomy)
        if tuple(head.classes) != tuple(taxonomy.leaf_ids):
            raise ValueError("head classes must be the taxonomy leaves, in order")

    @classmethod
    def zero_shot(cls, taxonomy: Taxonomy, embed: Embed, *, temperature: float = TEMPERATURE,
                  keyword_boost: float = KEYWORD_BOOST) -> "TopicClassifier":
        """`temperature` and `keyword_boost` depend on the embedding's similarity scale: the
        defaults are e5's, chosen on the BBC training part."""
        texts, owners = [], []
        for i, leaf in enumerate(taxonomy.leaves):
            for description in leaf.descriptions.values():
                texts.append(description)
                owners.append(i)
        vectors = embed(texts, PROTOTYPE_PREFIX)
        owners_arr = np.array(owners)
        protos = np.stack([vectors[owners_arr == i].mean(axis=0) for i in range(len(taxonomy.leaves))])
        protos /= np.linalg.norm(protos, axis=1, keepdims=True)
        head = SoftmaxHead(tuple(taxonomy.leaf_ids), (protos * temperature).astype(np.float32),
                           np.zeros(len(taxonomy.leaves), dtype=np.float32))
        return cls(taxonomy, head, keyword_boost=keyword_boost)

    def with_examples(self, embeddings: np.ndarray, labels: Sequence[str]) -> "TopicClassifier":
        """A new classifier whose head is trained on the examples, anchored at the current head."""
        head = fit_softmax(embeddings, labels, self.head.classes, init=self.head, l2=1e-4, steps=200)
        return TopicClassifier(self.taxonomy, head, keyword_boost=self.keyword_boost)

    def predict(self, embeddings: np.ndarray, texts: Sequence[str]) -> list[TopicPrediction]:
        """Leaf logits = head(embedding) + keyword_boost * keyword hits, softmaxed and aggregated."""
        logits = self.head.logits(embeddings) + self.keyword_boost * self._keywords.hits_matrix(texts)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return self._aggregate(proba / proba.sum(axis=1, keepdims=True))
