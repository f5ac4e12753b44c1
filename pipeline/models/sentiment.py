"""Transformer sentiment: one softmax head per labelled domain over e5 embeddings, routed by language.

Heads see ``[e5 embedding, scaled logits of the lexical sentiment model, decision values of the
head's own n-gram model]``: the lexical logits (seed lexicon and learned n-grams, as separate
features) were measured to add ~2 points on the review corpus and ~4 on tweets, the per-corpus
TF-IDF n-gram model (`pipeline.models.ngrams`) another 3 on news. The build feeds the heads
cross-fitted values of both (from models that never saw the text) to keep this honest.

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
from pipeline.models.ngrams import NgramModel

HEADS_DIR = "sentiment"
HEAD_FILE, NGRAM_FILE = ".head.npz", ".ngrams.npz"  # sentiment/<head name><suffix>
ANY_LANG = "*"
LEXICON_FEATURE_SCALE = 0.3
NGRAM_FEATURE_SCALE = 0.5
HEAD_FEATURES = "e5-mean+seed-logits+learned-logits@0.3+ngram-decisions@0.5"  # in the build recipe: change -> heads rebuilt


def lexicon_logits(lexical: LexicalSentimentModel, texts: Sequence[str]) -> np.ndarray:
    """(n, 6): centred seed-lexicon logits and centred learned n-gram logits, kept apart so a head
    can weigh them separately (only the seed covers Russian)."""
    parts = [np.concatenate([p - p.mean() for p in lexical.logit_parts(t)]) for t in texts]
    return np.array(parts).reshape(len(texts), 2 * len(SENTIMENT_CLASSES))


def hybrid_features(embeddings: np.ndarray, logits: np.ndarray, ngram_decisions: np.ndarray) -> np.ndarray:
    return np.hstack(
        [embeddings, LEXICON_FEATURE_SCALE * logits, NGRAM_FEATURE_SCALE * ngram_decisions]
    ).astype(np.float32)


class SentimentHeads:
    def __init__(self, heads: dict[str, SoftmaxHead], ngrams: dict[str, NgramModel], routes: dict[str, list[str]],
                 lexical: LexicalSentimentModel) -> None:
        missing = sorted({h for names in routes.values() for h in names} - set(heads))
        if missing or ANY_LANG not in routes:
            raise ValueError(f"sentiment routes need a '{ANY_LANG}' entry and known heads (missing {missing})")
        for name, head in heads.items():
            if not set(head.classes) <= set(SENTIMENT_CLASSES):
                raise ValueError(f"head {name}: classes {head.classes} not within {SENTIMENT_CLASSES}")
            if name not in ngrams or ngrams[name].classes != tuple(sorted(head.classes)):
                raise ValueError(f"head {name} has no n-gram model over its classes {head.classes}")
        self.heads, self.ngrams, self.routes, self.lexical = heads, ngrams, routes, lexical

    @classmethod
    def load(cls, model_dir: Path, routes: dict[str, list[str]],
             lexical: LexicalSentimentModel) -> "SentimentHeads":
        directory = Path(model_dir) / HEADS_DIR
        names = sorted(p.name.removesuffix(HEAD_FILE) for p in directory.glob(f"*{HEAD_FILE}"))
        return cls({name: SoftmaxHead.load(directory / f"{name}{HEAD_FILE}") for name in names},
                   {name: NgramModel.load(directory / f"{name}{NGRAM_FILE}") for name in names}, routes, lexical)

    def _head_proba(self, name: str, embeddings: np.ndarray, logits: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        head = self.heads[name]
        x = hybrid_features(embeddings, logits, self.ngrams[name].decision(texts))
        out = np.zeros((len(x), len(SENTIMENT_CLASSES)))
        out[:, [SENTIMENT_CLASSES.index(c) for c in head.classes]] = head.proba(x)
        return out

    def head_proba(self, name: str, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities over SENTIMENT_CLASSES from one head; classes it lacks get 0."""
        return self._head_proba(name, embeddings, lexicon_logits(self.lexical, texts), texts)

    def proba(self, embeddings: np.ndarray, texts: Sequence[str], langs: Sequence[str]) -> np.ndarray:
        logits = lexicon_logits(self.lexical, texts)
        out = np.zeros((len(embeddings), len(SENTIMENT_CLASSES)))
        routes = [tuple(self.routes.get(lang, self.routes[ANY_LANG])) for lang in langs]
        for route in set(routes):
            rows = [i for i, r in enumerate(routes) if r == route]
            in_route = [texts[i] for i in rows]
            out[rows] = np.mean([self._head_proba(name, embeddings[rows], logits[rows], in_route) for name in route],
                                axis=0)
        return out
