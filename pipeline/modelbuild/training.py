"""What `make models` fits: the token embeddings taken from e5, the idf, the sentiment heads and
the lexical model's learned n-gram weights. Run-time code only loads the results."""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.models.lexical import SENTIMENT_CLASSES, NgramWeights, features
from pipeline.models.linear import SoftmaxHead
from pipeline.models.textfeatures import TokenEmbeddings
from pipeline.transforms.normalise import simplify

_WHITESPACE = re.compile(r"\s+")
_CJK_CHAR = re.compile(r"^[\u3400-\u9fff]$")
_EMOJI = re.compile("^[\U0001F000-\U0001FAFF\u2600-\u27BF]$")
_WORD = re.compile(r"^[a-zа-яё]{2,}$")
METASPACE = "\u2581"
TOKEN_WORDS = 30_000  # the most frequent whole words of e5's vocabulary (by unigram log-probability)
SIF_A = 1e-3  # SIF weight a / (a + p(piece)): frequent pieces ("的", "the") count little


def model_text(text: str) -> str:
    """A corpus text as `normalise` hands a post to the models: NFKC, simplified, lower case,
    whitespace collapsed (corpora have no links, handles or repost chains to remove)."""
    return _WHITESPACE.sub(" ", simplify(unicodedata.normalize("NFKC", text))).strip().lower()


def e5_token_embeddings(encoder_dir: Path) -> TokenEmbeddings:
    """Rows of e5's input embedding matrix for its CJK characters, emoji and the TOKEN_WORDS most
    frequent whole latin/cyrillic words, centred (the mean row is what every piece shares) and
    scaled by their SIF weight."""
    from safetensors.numpy import load_file

    vocab = json.loads((encoder_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    weights = load_file(str(encoder_dir / "model.safetensors"))
    matrix = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    chars: dict[str, tuple[int, float]] = {}
    words: dict[str, tuple[int, float]] = {}
    for token_id, (piece, log_p) in enumerate(vocab):
        bare = piece.removeprefix(METASPACE)
        if _CJK_CHAR.match(bare) or _EMOJI.match(bare):
            chars.setdefault(bare, (token_id, log_p))
        elif piece.startswith(METASPACE) and _WORD.match(bare):
            words.setdefault(bare, (token_id, log_p))
    top_words = sorted(words.items(), key=lambda item: -item[1][1])[:TOKEN_WORDS]
    entries = sorted(chars.items()) + sorted(top_words)
    ids = np.array([token_id for _, (token_id, _) in entries])
    probability = np.exp(np.array([log_p for _, (_, log_p) in entries], dtype=np.float64))
    vectors = matrix[ids].astype(np.float32)
    vectors -= vectors.mean(axis=0)
    vectors *= (SIF_A / (SIF_A + probability)).astype(np.float32)[:, None]
    return TokenEmbeddings([piece for piece, _ in entries], vectors)


def fit_head(x, labels: Sequence[str], *, c: float, tol: float = 1e-4, max_iter: int = 1000) -> SoftmaxHead:
    """Multinomial logistic regression (sklearn, lbfgs, class-balanced) as a SoftmaxHead over
    SENTIMENT_CLASSES. Deterministic for the same input."""
    from sklearn.linear_model import LogisticRegression

    missing = set(SENTIMENT_CLASSES) - set(labels)
    if missing:
        raise ValueError(f"a sentiment head needs examples of every class; missing {sorted(missing)}")
    model = LogisticRegression(C=c, tol=tol, max_iter=max_iter, class_weight="balanced").fit(x, list(labels))
    order = [list(model.classes_).index(c) for c in SENTIMENT_CLASSES]
    return SoftmaxHead(SENTIMENT_CLASSES, model.coef_[order].astype(np.float32),
                       model.intercept_[order].astype(np.float32))


LEXICON_TEXT_CHARS = 300  # posts are short; long documents contribute their head only


def learn_sentiment_lexicon(texts: Sequence[str], labels: Sequence[str], *, max_features: int = 40000,
                            c: float = 0.5) -> NgramWeights:
    """Logistic regression on binary n-gram features; its largest weights become the lexical
    model's learned lexicon."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [t[:LEXICON_TEXT_CHARS] for t in texts]
    vec = CountVectorizer(analyzer=features, binary=True, min_df=3)
    x = vec.fit_transform(texts)
    clf = LogisticRegression(C=c, max_iter=1000, class_weight="balanced")
    clf.fit(x, labels)
    order = [list(clf.classes_).index(k) for k in SENTIMENT_CLASSES]
    coef, bias = clf.coef_[order], clf.intercept_[order]
    names = vec.get_feature_names_out()
    keep = np.argsort(-np.abs(coef).max(axis=0))[:max_features]
    return NgramWeights(SENTIMENT_CLASSES, bias, {str(names[i]): coef[:, i] for i in keep})
