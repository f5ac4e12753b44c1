"""Broker-free per-post transforms run before model inference.

Per raw post the enrich stage (through `pipeline.analysis`) does::

    norm = normalise(post)                                  # text_norm, lang, urls, entities, hash
    match = detector.check(post.id, norm.text_norm, norm.content_hash)
    outputs = cache.get(match.first_id) if match else None  # reuse: no second inference
    ...infer when outputs is None, then cache.put(post.id, outputs)

with one `RepostDetector` and one `ResultCache` per worker (bounded, deterministic on replay).
"""

from pipeline.transforms.dedupe import RepostDetector, RepostMatch, ResultCache
from pipeline.transforms.entities import Gazetteer, Mentions, default_gazetteer
from pipeline.transforms.language import detect_language
from pipeline.transforms.normalise import Normalised, content_hash, normalise, simplify

__all__ = [
    "Gazetteer",
    "Mentions",
    "Normalised",
    "RepostDetector",
    "RepostMatch",
    "ResultCache",
    "content_hash",
    "default_gazetteer",
    "detect_language",
    "normalise",
    "simplify",
]
