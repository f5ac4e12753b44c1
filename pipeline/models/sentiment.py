"""Transformer sentiment: one softmax head per labelled domain over e5 embeddings, routed by language.

Heads see ``[e5 embedding, scaled logits of the lexical sentiment model]`` (seed lexicon and learned
n-grams, as separate features): stacking the lexical evidence on the embedding was measured to add ~2 points on the
review corpus and ~4 on tweets. The build feeds the heads cross-fitted logits (from learned
lexicons that never saw the text) to keep this honest.

One joint head over all corpora was measured to wreck the news head (the review corpus has no
neutral class), so each corpus trains its own head and a route table (written to the manifest by
the build) says which heads score which language; unknown languages average several heads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.models.lexical import SENTIMENT_CLASSES, LexicalSentimentModel
from pipeline.models.linear import SoftmaxHead

HEADS_DIR = "sentiment"
ANY_LANG = "*"
LEXICON_FEATURE_SCALE = 0.3
HEAD_FEATURES = "e5-mean+seed-logits+learned-logits@0.3"  # in the build recipe: change -> heads rebuilt


def lexicon_logits(lexical: LexicalSentimentModel, texts: Sequence[str]) -> np.ndarray:
    """(n, 6): centred seed-lexicon logits and centred learned n-gram logits, kept apart so a head
    can weigh them separately (only the seed covers Russian)."""
    parts = [np.concatenate([p - p.mean() for p in lexical.logit_parts(t)]) for t in texts]
    return np.array(parts).reshape(len(texts), 2 * len(SENTIMENT_CLASSES))


def hybrid_features(embeddings: np.ndarray, logits: np.ndarray) -> np.ndarray:
    return np.hstack([embeddings, LEXICON_FEATURE_SCALE * logits]).astype(np.float32)


class SentimentHeads:
    def __init__(self, heads: dict[str, SoftmaxHead], routes: dict[str, list[str]], lexical: LexicalSentimentModel) -> None:
        missing = sorted({h for names in routes.values() for h in names} - set(heads))
        if missing or ANY_LANG not in routes:
            raise ValueError(f"sentiment routes need a '{ANY_LANG}' entry and known heads (missing {missing})")
        for name, head in heads.items():
            if not set(head.classes) <= set(SENTIMENT_CLASSES):
                raise ValueError(f"head {name}: classes {head.classes} not within {SENTIMENT_CLASSES}")
        self.heads, self.routes, self.lexical = heads, routes, lexical

    @classmethod
    def load(cls, model_dir: Path, routes: dict[str, list[str]],
             lexical: LexicalSentimentModel) -> "SentimentHeads":
        directory = Path(model_dir) / HEADS_DIR
        return cls({p.stem: SoftmaxHead.load(p) for p in sorted(directory.glob("*.npz"))}, routes, lexical)

    def _head_proba(self, name: str, x: np.ndarray) -> np.ndarray:
        head = self.heads[name]
        out = np.zeros((len(x), len(SENTIMENT_CLASSES)))
        out[:, [SENTIMENT_CLASSES.index(c) for c in head.classes]] = head.proba(x)
        return out

    def head_proba(self, name: str, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities over SENTIMENT_CLASSES from one head; classes it lacks get 0."""
        return self._head_proba(name, hybrid_features(embeddings, lexicon_logits(self.lexical, texts)))

    def proba(self, embeddings: np.ndarray, texts: Sequence[str], langs: Sequence[str]) -> np.ndarray:
        x = hybrid_features(embeddings, lexicon_logits(self.lexical, texts))
        out = np.zeros((len(embeddings), len(SENTIMENT_CLASSES)))
        routes = [tuple(self.routes.get(lang, self.routes[ANY_LANG])) for lang in langs]
        for route in set(routes):
            rows = [i for i, r in enumerate(routes) if r == route]
            out[rows] = np.mean([self._head_proba(name, x[rows]) for name in route], axis=0)
        return out
