"""Repost and near-duplicate detection, so a repeated text reuses its first post's model outputs.

Exact duplicates are found by content hash. Near duplicates (a few characters edited, a short
comment added to a repost) by MinHash over character 3-grams of the compact text, indexed by
LSH bands: with 60 hash functions in 20 bands of 3, two texts with Jaccard similarity 0.5 share
a band with probability 0.93 (0.6: 0.99; 0.2: 0.15), and each candidate is then confirmed on
its full signature. Character
shingles work the same for Chinese, English and Russian. Everything is deterministic (fixed
seeds, xxhash, insertion-ordered eviction), so replaying a stream reproduces the same marks.

The signatures are computed with numpy from code points (no per-shingle Python hashing):
datasketch's MinHash + MinHashLSH measured ~350 us/post here, this ~30 us.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Hashable, NamedTuple, TypeVar

import numpy as np

from pipeline.transforms.normalise import compact

_SHINGLE = 3
_NUM_HASHES = 60
_BANDS = 20
_SEED = 20240601
# Unicode code points fit in 21 bits, so three of them pack into one 63-bit shingle id exactly.
_CODE_POINT_BITS = np.uint64(21)
_TWO_CODE_POINTS = np.uint64(42)
_HIGH_HALF = np.uint64(32)
_MAX_BUCKET = 8


def _hash_parameters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_SEED)
    multipliers = rng.integers(1, 2**63, size=(_NUM_HASHES, 1), dtype=np.uint64) | np.uint64(1)
    offsets = rng.integers(0, 2**63, size=(_NUM_HASHES, 1), dtype=np.uint64)
    band_salts = rng.integers(0, 2**63, size=_BANDS, dtype=np.uint64)
    return multipliers, offsets, band_salts


_MULTIPLIERS, _OFFSETS, _BAND_SALTS = _hash_parameters()
_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)


def minhash_signature(compact_text: str) -> np.ndarray:
    """60 minima of multiply-shift hashes over the text's character 3-grams (uint32 each).

    Repeated 3-grams are hashed twice rather than de-duplicated: a minimum does not change.
    """
    points = np.frombuffer(compact_text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(points) < _SHINGLE:
        points = np.pad(points, (0, _SHINGLE - len(points)))
    shingles = (points[:-2] << _TWO_CODE_POINTS) | (points[1:-1] << _CODE_POINT_BITS) | points[2:]
    hashed = _MULTIPLIERS * shingles  # array arithmetic wraps modulo 2**64 silently, as intended
    hashed += _OFFSETS
    hashed >>= _HIGH_HALF
    return hashed.min(axis=1).astype(np.uint32)


def _band_keys(signature: np.ndarray) -> list[int]:
    """One int per band of 3 hashes; a rare collision only adds a candidate that fails verification."""
    rows = signature.reshape(_BANDS, -1).astype(np.uint64)
    keys = ((rows[:, 0] << _HIGH_HALF) | rows[:, 1]) ^ (rows[:, 2] * _BAND_MIX) ^ _BAND_SALTS
    return keys.tolist()


@dataclass(frozen=True)
class RepostMatch:
    """The post `first_id` already carried this text (exactly, or with `similarity` < 1)."""

    first_id: str
    similarity: float
    exact: bool


class _Seen(NamedTuple):
    slot: int  # row of the detector's signature matrix
    content_hash: str


class RepostDetector:
    """Remembers the last `capacity` distinct texts (least recently matched evicted first).

    Memory is about 2.3 kB per remembered text, most of it the LSH band index.
    """

    def __init__(self, capacity: int = 50_000, *, threshold: float = 0.5, min_chars: int = 8):
        """`threshold`: estimated Jaccard needed for a near duplicate; shorter texts than
        `min_chars` letters/digits ("转发微博", "好") are never matched: they carry no content."""
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.threshold = threshold
        self.min_chars = min_chars
        self._entries: OrderedDict[str, _Seen] = OrderedDict()  # post id -> entry, LRU order
        self._by_hash: dict[str, str] = {}
        # band key -> post id, or a short list of them when several texts share the band
        self._buckets: dict[int, str | list[str]] = {}
        # One row per remembered text, so candidates are verified with one fancy index.
        self._signatures = np.zeros((min(capacity, 1024), _NUM_HASHES), dtype=np.uint32)
        self._free_slots: list[int] = []

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, post_id: str, text_norm: str, content_hash: str) -> RepostMatch | None:
        """The first post with the same or a near-same text, else None (and remember this one).

        A post checked again under its own id (redelivery after a restart) is not its own repost.
        """
        compact_text = compact(text_norm)
        if len(compact_text) < self.min_chars:
            return None
        first_id = self._by_hash.get(content_hash)
        if first_id is not None:
            return self._matched(post_id, first_id, 1.0, exact=True)
        signature = minhash_signature(compact_text)
        bands = _band_keys(signature)
        candidates = self._candidates(bands)
        if candidates:
            slots = [self._entries[candidate].slot for candidate in candidates]
            scores = np.count_nonzero(self._signatures[slots] == signature, axis=1) / _NUM_HASHES
            best = int(scores.argmax())  # the first of equals: candidates are in a fixed order
            if scores[best] >= self.threshold:
                return self._matched(post_id, candidates[best], float(scores[best]), exact=False)
        if post_id not in self._entries:
            self._remember(post_id, content_hash, signature, bands)
        return None

    def _candidates(self, bands: list[int]) -> list[str]:
        found: dict[str, None] = {}
        for band in bands:
            bucket = self._buckets.get(band)
            if bucket is None:
                continue
            if isinstance(bucket, str):
                found[bucket] = None
            else:
                found.update(dict.fromkeys(bucket))
        return list(found)

    def _matched(self, post_id: str, first_id: str, score: float, *, exact: bool) -> RepostMatch | None:
        if first_id == post_id:
            return None
        self._entries.move_to_end(first_id)
        return RepostMatch(first_id=first_id, similarity=score, exact=exact)

    def _remember(self, post_id: str, content_hash: str, signature: np.ndarray, bands: list[int]) -> None:
        slot = self._free_slots.pop() if self._free_slots else len(self._entries)
        if slot == len(self._signatures):
            grown = min(2 * len(self._signatures), self.capacity + 1)
            self._signatures = np.resize(self._signatures, (grown, _NUM_HASHES))
        self._signatures[slot] = signature
        self._entries[post_id] = _Seen(slot, content_hash)
        self._by_hash.setdefault(content_hash, post_id)
        for band in bands:
            bucket = self._buckets.setdefault(band, post_id)
            if isinstance(bucket, str) and bucket != post_id:
                self._buckets[band] = [bucket, post_id]
            elif isinstance(bucket, list) and len(bucket) < _MAX_BUCKET:
                bucket.append(post_id)
        if len(self._entries) > self.capacity:
            self._forget(*self._entries.popitem(last=False))

    def _forget(self, post_id: str, entry: _Seen) -> None:
        if self._by_hash.get(entry.content_hash) == post_id:
            del self._by_hash[entry.content_hash]
        for band in _band_keys(self._signatures[entry.slot]):
            bucket = self._buckets.get(band)
            if bucket == post_id:
                del self._buckets[band]
            elif isinstance(bucket, list) and post_id in bucket:
                bucket.remove(post_id)
                if len(bucket) == 1:
                    self._buckets[band] = bucket[0]
        self._free_slots.append(entry.slot)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ResultCache(Generic[K, V]):
    """Bounded LRU map, e.g. first post id -> its model outputs, reused for its reposts."""

    def __init__(self, capacity: int = 50_000):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
