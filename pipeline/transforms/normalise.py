"""Raw post -> the text the models see, plus what was pulled out of it (links, handles, topics).

`text_norm` choices, made for classification and for repost detection:
- NFKC first (full-width "ＵＳＡ＃" -> "USA#"), so every later pattern sees one form.
- URLs, @mentions and the repost scaffolding (Weibo "转发微博" / "//@name:", "RT @name:") are
  removed: they are links and handles, not content, and a repost must normalise to the text
  it reposts. They are kept in `urls` / `mentions` as written (handles are exact names).
- Hashtags keep their words and lose their markers ("#香港国安法#" -> "香港国安法"): topics are
  the strongest content signal a post carries, and tweets use them inside sentences. `hashtags`
  holds them simplified and lower-cased, so one topic aggregates under one name.
- Traditional -> simplified Chinese, latin and cyrillic lower-cased, whitespace collapsed.
The title (WeChat articles, RSS) leads the text when the text does not already start with it.
Entities are found on the same text before lower-casing, where "US" and "us" still differ.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc
import xxhash

from pipeline.schemas import RawPost
from pipeline.transforms.entities import Gazetteer, default_gazetteer
from pipeline.transforms.language import detect_language

# URLs are ASCII in practice (t.cn short links run straight into Chinese text).
_URL = re.compile(r"(?:https?://|www\.)[!-~]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\")]}>"
_HANDLE = r"[\w\-]{1,30}"
_MENTION = re.compile(rf"(?<![\w.@])@({_HANDLE})")
_RETWEET_PREFIX = re.compile(rf"^(?:\s*rt\s+@{_HANDLE}\s*:?\s*)+", re.IGNORECASE)
_REPOST_CHAIN = re.compile(rf"//\s*@{_HANDLE}\s*:?")
_REPOST_BOILERPLATE = re.compile(r"转发微博|轉發微博|^\s*repost\s*$", re.IGNORECASE)
# Weibo topic "#话题#": no space at either edge, and not followed by a latin word char, so
# "#Ukraine #Russia" stays two twitter tags.
_WEIBO_TOPIC = re.compile(r"#([^#\s](?:[^#\n]{0,62}[^#\s])?)#(?![A-Za-z0-9_])")
_HASHTAG = re.compile(r"(?<![\w&#])#(\w{1,100})")
_WHITESPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Normalised:
    """Everything the enrichment needs from one post besides the models (field names as in EnrichedPost)."""

    text_norm: str
    lang: str
    urls: tuple[str, ...]
    mentions: tuple[str, ...]
    hashtags: tuple[str, ...]
    countries: tuple[str, ...]
    organisations: tuple[str, ...]
    content_hash: str

    def enriched_fields(self) -> dict[str, object]:
        return {
            "text_norm": self.text_norm,
            "lang": self.lang,
            "urls": list(self.urls),
            "mentions": list(self.mentions),
            "hashtags": list(self.hashtags),
            "countries": list(self.countries),
            "organisations": list(self.organisations),
            "content_hash": self.content_hash,
        }


@lru_cache(maxsize=1)
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def simplify(text: str) -> str:
    """Traditional -> simplified Chinese; text without CJK is returned untouched (and fast)."""
    return _to_simplified().convert(text) if _CJK.search(text) else text


def compact(text_norm: str) -> str:
    """Letters and digits only: what exact-duplicate hashing and near-duplicate shingling compare."""
    return _NOT_WORD.sub("", text_norm)


def content_hash(text_norm: str) -> str:
    """Stable across processes and replays (unlike hash()): xxh64 of the compact text."""
    return xxhash.xxh64_hexdigest(compact(text_norm).encode())


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _extract_urls(text: str) -> tuple[str, list[str]]:
    if "://" not in text and "www." not in text.lower():
        return text, []
    urls = [match.rstrip(_URL_TRAILING) for match in _URL.findall(text)]
    return _URL.sub(" ", text), urls


def _strip_hashtags(text: str) -> tuple[str, list[str]]:
    if "#" not in text:
        return text, []
    topics = _WEIBO_TOPIC.findall(text)
    text = _WEIBO_TOPIC.sub(r" \1 ", text)
    tags = _HASHTAG.findall(text)
    return _HASHTAG.sub(r"\1", text), topics + tags


def _strip_reposting(text: str) -> str:
    text = _RETWEET_PREFIX.sub("", text)
    return _REPOST_CHAIN.sub(" ", text)


def normalise(post: RawPost, gazetteer: Gazetteer | None = None) -> Normalised:
    """See the module docstring for what `text_norm` keeps and drops, and why."""
    text = post.text
    if post.title and not text.lstrip().startswith(post.title.strip()):
        text = f"{post.title}\n{text}"
    text = unicodedata.normalize("NFKC", text)
    text, urls = _extract_urls(text)
    mentions: list[str] = []
    if "@" in text:
        mentions = _MENTION.findall(text)
        text = _MENTION.sub(" ", _strip_reposting(text))
    text = _REPOST_BOILERPLATE.sub(" ", text)
    text, tags = _strip_hashtags(text)
    cased = _WHITESPACE.sub(" ", simplify(text)).strip()
    text_norm = cased.lower()
    mentioned = (gazetteer or default_gazetteer()).find(cased)
    return Normalised(
        text_norm=text_norm,
        lang=detect_language(cased, post.lang),
        urls=_unique(urls),
        mentions=_unique(mentions),
        hashtags=_unique([simplify(tag).lower().strip() for tag in tags]),
        countries=mentioned.countries,
        organisations=mentioned.organisations,
        content_hash=content_hash(text_norm),
    )
