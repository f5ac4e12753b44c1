"""Features of the learned model, computed for a whole batch at once with numpy.

A post becomes three things, all from its normalised text:
- **hashed character 1-3-grams** (TF-IDF, sublinear counts, unit rows): the domain's surface cues
  (review idioms, news tone words, slang) in any script. The text's code points are laid end to
  end in one array and every n-gram of the batch is hashed in a few vector operations, so there
  is no Python per n-gram (sklearn's HashingVectorizer runs its analyzer in Python per text);
- **e5 token embeddings**: the rows of the shipped e5 encoder's own input embedding matrix for
  the text's CJK characters, emoji and whole words (latin/cyrillic words e5 has as one piece),
  weighted by how rare the piece is (SIF weights from the tokenizer's unigram log-probabilities)
  and averaged. They carry what e5 learned about a character or word into texts whose n-grams
  the training corpora never had; no forward pass is needed to build or to use them;
- **emoticons and emoji** with a polarity in the seed lexicon (`[哈哈]`, `[泪]`, 😊, 😡): counted
  by `pipeline.models.lexical.EmoticonCounter`, outside this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import sparse

N_FEATURES = 1 << 20
NGRAM_MAX = 3
TEXT_CHARS = 1000  # a long article contributes its head only
NGRAM_CHARS = 400  # n-grams of its first characters: the lead carries the tone (and costs the fit less)
MIN_DF = 2
CONFIG = f"char1-{NGRAM_MAX}-hash{N_FEATURES}-ngrams{NGRAM_CHARS}-head{TEXT_CHARS}-tfidf-sublinear-mindf{MIN_DF}"
"""In the build recipe: a change retrains every head."""

_SEPARATOR = 0  # code point between two texts of a batch; no n-gram spans it
_MIX_1, _MIX_2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)
_WORD = re.compile(r"[a-zа-яё]{2,}")


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit integer mixer (splitmix64's finaliser): stable across processes and platforms."""
    x = x * _MIX_1
    x ^= x >> np.uint64(29)
    x = x * _MIX_2
    x ^= x >> np.uint64(32)
    return x


@dataclass(frozen=True)
class Batch:
    """The batch's texts as one array of code points, each text followed by a separator."""

    codepoints: np.ndarray  # uint64
    rows: np.ndarray  # the text each code point belongs to
    positions: np.ndarray  # the code point's index in its text
    texts: list[str]

    @classmethod
    def of(cls, texts: Sequence[str]) -> "Batch":
        heads = [t[:TEXT_CHARS].replace("\x00", " ") for t in texts]
        lengths = np.fromiter((len(t) + 1 for t in heads), dtype=np.int64, count=len(heads))
        joined = "\x00".join(heads) + "\x00"
        codepoints = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return cls(codepoints, np.repeat(np.arange(len(heads)), lengths), np.arange(len(codepoints)) - starts, heads)


def ngram_counts(batch: Batch) -> sparse.csr_matrix:
    """(texts, N_FEATURES) counts of every character 1..NGRAM_MAX-gram starting in a text's first
    NGRAM_CHARS characters, hashed."""
    cps = batch.codepoints
    hashed = cps.copy()
    valid = (cps != _SEPARATOR) & (batch.positions < NGRAM_CHARS)
    rows, cols = [], []
    for n in range(1, NGRAM_MAX + 1):
        if n > 1:
            hashed = _mix(hashed[:-1] ^ (cps[n - 1:] * np.uint64(n * 1_000_003)))
            valid = valid[:-1] & (cps[n - 1:] != _SEPARATOR)
        rows.append(batch.rows[:len(hashed)][valid])
        cols.append((_mix(hashed[valid] + np.uint64(n)) % np.uint64(N_FEATURES)).astype(np.int64))
    row, col = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.csr_matrix((np.ones(len(row), dtype=np.float32), (row, col)),
                               shape=(len(batch.texts), N_FEATURES))
    counts.sum_duplicates()
    return counts


def fit_idf(counts: sparse.csr_matrix) -> np.ndarray:
    """Smoothed idf as sklearn's; n-grams seen in fewer than MIN_DF texts get 0 (noise, typos)."""
    document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = (np.log((1 + counts.shape[0]) / (1 + document_frequency)) + 1.0).astype(np.float32)
    idf[document_frequency < MIN_DF] = 0.0
    return idf


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear term frequency x idf, rows scaled to unit length (as sklearn's TfidfTransformer)."""
    x = counts.copy()
    x.data = (1.0 + np.log(x.data)) * idf[x.indices]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    x.data /= np.repeat(norms, np.diff(x.indptr)).astype(np.float32)
    return x


class TokenEmbeddings:
    """e5 input-embedding rows for single characters (CJK, emoji) and whole words, SIF-weighted."""

    def __init__(self, pieces: Sequence[str], vectors: np.ndarray) -> None:
        self.pieces = list(pieces)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.dim = self.vectors.shape[1]
        self._row_of_char = np.full(0x110000, -1, dtype=np.int64)
        self._row_of_word: dict[str, int] = {}
        for row, piece in enumerate(self.pieces):
            if len(piece) == 1:
                self._row_of_char[ord(piece)] = row
            else:
                self._row_of_word[piece] = row

    def save(self, path: Path) -> None:
        np.savez(path, pieces=np.array(self.pieces), vectors=self.vectors.astype(np.float16))

    @classmethod
    def load(cls, path: Path) -> "TokenEmbeddings":
        with np.load(path) as z:
            return cls([str(p) for p in z["pieces"]], z["vectors"])

    def embed(self, batch: Batch) -> np.ndarray:
        """(texts, dim): the mean of the known pieces' vectors, unit length (zeros without any)."""
        char_rows = self._row_of_char[batch.codepoints.astype(np.int64)]
        known = char_rows >= 0
        rows, cols = [batch.rows[known]], [char_rows[known]]
        word_rows, word_cols = [], []
        for i, text in enumerate(batch.texts):
            for word in _WORD.findall(text):
                col = self._row_of_word.get(word)
                if col is not None:
                    word_rows.append(i)
                    word_cols.append(col)
        if word_rows:
            rows.append(np.array(word_rows))
            cols.append(np.array(word_cols))
        row, col = np.concatenate(rows), np.concatenate(cols)
        bag = sparse.csr_matrix((np.ones(len(row), dtype=np.float32), (row, col)),
                                shape=(len(batch.texts), len(self.pieces)))
        out = np.asarray(bag @ self.vectors, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


@dataclass(frozen=True)
class TextFeaturiser:
    """Text -> [TF-IDF char n-grams | EMBEDDING_SCALE x token embedding]: what every learned head reads."""

    idf: np.ndarray
    embeddings: TokenEmbeddings

    EMBEDDING_SCALE = 1.0

    @property
    def dim(self) -> int:
        return N_FEATURES + self.embeddings.dim

    def transform(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
        """(the head features, the token embeddings alone, which the topic classifier reads)."""
        if not texts:
            return sparse.csr_matrix((0, self.dim), dtype=np.float32), np.zeros((0, self.embeddings.dim), np.float32)
        batch = Batch.of(texts)
        embedded = self.embeddings.embed(batch)
        features = sparse.hstack([tfidf(ngram_counts(batch), self.idf),
                                  sparse.csr_matrix(self.EMBEDDING_SCALE * embedded)], format="csr")
        return features, embedded
