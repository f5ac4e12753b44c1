"""Sentiment heads and the routes between them: one softmax head per labelled domain.

Each head is a `SoftmaxHead` over a tier's features (the learned tier: `TextFeaturiser`'s
n-grams and token embeddings; the transformer tier: the same plus the e5 sentence embedding).
`models/routes.yaml` says which heads score a post, by its kind (social or news) and language;
a route of several heads averages their probabilities.

Emoticons and emoji (`[哈哈]`, `[泪]`, 😡) add `EMOTICON_WEIGHT` per hit to their class's logit.
The corpora the heads learn from have almost none of them, so a learned weight would be ~0;
the weight was chosen on a development set of informal posts (see README, "Models").
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.models.lexical import SENTIMENT_CLASSES, EmoticonCounter
from pipeline.models.linear import SoftmaxHead
from pipeline.models.routes import Routes

HEAD_FILE = ".head.npz"  # <tier dir>/<head name><suffix>
EMOTICON_WEIGHT = 2.0


class SentimentHeads:
    def __init__(self, heads: dict[str, SoftmaxHead], routes: Routes, emoticons: EmoticonCounter) -> None:
        for name, head in heads.items():
            if tuple(head.classes) != SENTIMENT_CLASSES:
                raise ValueError(f"head {name}: classes {head.classes}, expected {SENTIMENT_CLASSES}")
        routes.check_heads(set(heads), "sentiment heads")
        self.heads, self.routes, self.emoticons = heads, routes, emoticons

    @classmethod
    def load(cls, directory: Path, routes: Routes, emoticons: EmoticonCounter) -> "SentimentHeads":
        paths = sorted(Path(directory).glob(f"*{HEAD_FILE}"))
        return cls({p.name.removesuffix(HEAD_FILE): SoftmaxHead.load(p) for p in paths}, routes, emoticons)

    def head_proba(self, name: str, features, emoticon_hits: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities over SENTIMENT_CLASSES from one head."""
        logits = self.heads[name].logits(features) + EMOTICON_WEIGHT * emoticon_hits
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def proba(self, features, texts: Sequence[str], langs: Sequence[str], kinds: Sequence[str]) -> np.ndarray:
        """(n, 3): each row from the heads its (kind, language) route names."""
        hits = self.emoticons.matrix(texts)
        routes = [self.routes.route(kind, lang) for kind, lang in zip(kinds, langs)]
        out = np.zeros((len(texts), len(SENTIMENT_CLASSES)))
        for route in dict.fromkeys(routes):
            rows = np.array([i for i, r in enumerate(routes) if r == route])
            out[rows] = np.mean([self.head_proba(name, features[rows], hits[rows]) for name in route], axis=0)
        return out
