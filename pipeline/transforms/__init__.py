"""Broker-free per-post transforms run before model inference.

Per raw post the analyser (`pipeline.analysis.ContentAnalyser`) does::

    norm = normalise(post)                                  # text_norm, lang, urls, entities, hash
    match = detector.check(post.id, norm.text_norm, norm.content_hash)   # is_repost, repost_of

and keeps the model's results in a `ResultCache` (the one bounded LRU map of the code base)
keyed by what the model reads, so an exact repost is never scored twice.
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
