"""Deterministic sample stream of raw posts for `make run` and the demos.

Generated data is never committed: the hand-written material lives in ``templates.yaml`` and
this module turns it, with one seeded RNG, into a timeline of posts that look like what the
connectors deliver: baseline chatter across the Table 1 topics, then the February 2015 Hong Kong
"anti-mainland tourist" surge, with reposts, traditional-Chinese posts and per-source ids,
URLs and metrics. The same seed always gives byte-identical output.

    python -m pipeline.samples.generate --out var/sample_posts.jsonl [--seed 7] [--count 600]
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import math
import random
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.schemas import PostMetrics, RawPost

TEMPLATES_PATH = Path(__file__).with_name("templates.yaml")
MAX_TEXT_CHARS = 200
BASELINE, STORYLINE = "baseline", "storyline"

_TWITTER_EPOCH_MS = 1288834974657
_WEIBO_MID_BASE = 3_806_000_000_000_000  # Weibo status ids of early 2015 start around 38xx...
_LANG_HINT = {"zh": "zh", "zh_hant": "zh", "en": "en", "ru": "ru"}
# Where a post of each language and kind is published.
POST_SOURCE = {"zh": "weibo", "zh_hant": "weibo", "en": "x", "ru": "x"}
ARTICLE_SOURCE = {"zh": "wechat", "en": "rss", "ru": "rss"}
# Repost styles per source with weights: a quoting repost ("//@a: ..." / "RT @a: ..."), a
# verbatim copy by another account, or a near-duplicate with a couple of characters changed.
_REPOST_STYLES = {
    "weibo": {"quote": 0.55, "copy": 0.2, "near": 0.25},
    "x": {"quote": 0.6, "copy": 0.15, "near": 0.25},
    "wechat": {"copy": 0.5, "near": 0.5},
    "rss": {"copy": 0.5, "near": 0.5},
}
_FINAL_MARKS = "。！？.!?"
# Near-duplicate edits per writing system: punctuation swaps and fillers a copy picks up.
_CJK_SWAPS, _CJK_FILLERS = {"，": ",", "。": "！", "！": "!!", "？": "??", "、": "，"}, ["…", "～", " "]
_LATIN_SWAPS, _LATIN_FILLERS = {",": ";", ".": "!", "!": "!!", "?": "?!"}, [" ", "..", "!"]


# --- timeline ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """Posting intensity over time: a diurnal baseline plus the storyline surge (relative units)."""

    start: datetime
    end: datetime
    utc_offset_hours: float
    peak_local_hour: float
    diurnal_amplitude: float
    onset: datetime
    rise_hours: float
    decay_hours: float
    peak_ratio: float

    @classmethod
    def from_config(cls, cfg: dict) -> "Timeline":
        surge = cfg["surge"]
        return cls(
            start=_utc(cfg["start"]),
            end=_utc(cfg["end"]),
            utc_offset_hours=cfg["utc_offset_hours"],
            peak_local_hour=cfg["peak_local_hour"],
            diurnal_amplitude=cfg["diurnal_amplitude"],
            onset=_utc(surge["onset"]),
            rise_hours=surge["rise_hours"],
            decay_hours=surge["decay_hours"],
            peak_ratio=surge["peak_ratio"],
        )

    def baseline(self, at: datetime) -> float:
        local_hour = (at.hour + at.minute / 60 + self.utc_offset_hours) % 24
        return 1 + self.diurnal_amplitude * math.cos(2 * math.pi * (local_hour - self.peak_local_hour) / 24)

    def surge(self, at: datetime) -> float:
        hours = (at - self.onset).total_seconds() / 3600
        if hours < 0:
            return 0.0
        if hours < self.rise_hours:
            return self.peak_ratio * hours / self.rise_hours
        return self.peak_ratio * math.exp(-(hours - self.rise_hours) / self.decay_hours)

    def arrivals(self, count: int, rng: random.Random) -> list[datetime]:
        """`count` arrival times of an inhomogeneous Poisson process conditioned on its total.

        Given N events, their times are iid with density proportional to the intensity, so we
        draw N times by inverse CDF over a one-minute grid, then a uniform second in the minute.
        """
        minutes = int((self.end - self.start).total_seconds() // 60)
        grid = [self.start + timedelta(minutes=m, seconds=30) for m in range(minutes)]
        cumulative = list(itertools.accumulate(self.baseline(t) + self.surge(t) for t in grid))
        times = []
        for _ in range(count):
            minute = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
            times.append(self.start + timedelta(minutes=minute, seconds=rng.randrange(60)))
        return sorted(times)


def _utc(value: Any) -> datetime:
    """YAML timestamps arrive as datetimes (naive when written without an offset: read as UTC)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


# --- material ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    """The parsed ``templates.yaml``; see the comments there for the meaning of each part."""

    timeline: Timeline
    pools: dict[str, dict]
    slots: dict[str, dict[str, list[str]]]
    tails: dict[str, dict[str, list[str]]]
    accounts: dict[str, list[dict]]
    repost_comments: dict[str, dict[str, list[str]]]
    topics: dict[str, dict]
    storyline: dict

    @classmethod
    def load(cls, path: Path = TEMPLATES_PATH) -> "Templates":
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            timeline=Timeline.from_config(cfg["timeline"]),
            pools=cfg["pools"],
            slots=cfg["slots"],
            tails=cfg["tails"],
            accounts=cfg["accounts"],
            repost_comments=cfg["repost_comments"],
            topics=cfg["topics"],
            storyline=cfg["storyline"],
        )

    def topic(self, key: str) -> dict:
        return self.storyline if key == self.storyline["key"] else self.topics[key]

    def accounts_for(self, source: str, script: str, topic_key: str) -> list[dict]:
        """Accounts of `source` writing in `script` that post about `topic_key`."""
        return [a for a in self.accounts[f"{source}_{script}"] if topic_key in a.get("only", [topic_key])]

    def render(self, template: str, lang: str, rng: random.Random) -> str:
        """Fill each {slot} with a random value of that slot in the text's language."""
        slots = self.slots.get(lang, {})
        return template.format_map({name: rng.choice(values) for name, values in slots.items()})


@cache
def default_templates() -> Templates:
    return Templates.load()


# --- output records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleItem:
    """A generated post with the ground truth the generator knows about it (used by tests/demos)."""

    post: RawPost
    topic: str
    storyline: bool
    script: str  # zh | zh_hant | en | ru
    repost_of: RawPost | None = None
    official: bool = False


class _Ids:
    """Source-unique, realistic-looking ids: Weibo mids and tweet snowflakes grow with time."""

    def __init__(self, rng: random.Random, start: datetime):
        self._rng = rng
        self._start = start
        self._seen: set[tuple[str, str]] = set()

    def new(self, source: str, at: datetime) -> str:
        while True:
            candidate = self._candidate(source, at)
            if (source, candidate) not in self._seen:
                self._seen.add((source, candidate))
                return candidate

    def _candidate(self, source: str, at: datetime) -> str:
        rng = self._rng
        if source == "weibo":
            return str(_WEIBO_MID_BASE + int((at - self._start).total_seconds()) * 4096 + rng.randrange(4096))
        if source == "x":
            ms = int(at.timestamp() * 1000) + rng.randrange(1000)
            return str(((ms - _TWITTER_EPOCH_MS) << 22) | (rng.randrange(1024) << 12) | rng.randrange(4096))
        if source == "wechat":
            return f"{rng.getrandbits(128):032x}"
        return f"{at:%Y%m%d}-{rng.randrange(10**8):08d}"


def _weibo_uid(author: str) -> str:
    return str(1_000_000_000 + zlib.crc32(author.encode()) % 6_000_000_000)


def _account_id(source: str, account: dict) -> str:
    return _weibo_uid(account["author"]) if source == "weibo" else account["account"]


def _url(source: str, account: dict, post_id: str, at: datetime, rng: random.Random) -> str:
    if source == "weibo":
        return f"https://weibo.com/{_weibo_uid(account['author'])}/{post_id}"
    if source == "x":
        return f"https://twitter.com/{account['account']}/status/{post_id}"
    if source == "wechat":
        biz = base64.b64encode(str(zlib.crc32(account["account"].encode())).encode()).decode()
        return f"https://mp.weixin.qq.com/s?__biz={biz}&mid={2650000000 + rng.randrange(10**6)}&idx=1&sn={post_id}"
    return f"{account['site']}/{at:%Y/%m/%d}/{post_id}.html"


def _metrics(source: str, rng: random.Random, *, storyline: bool, official: bool, repost: bool) -> PostMetrics:
    """Heavy-tailed engagement; bigger for official accounts and the storyline, smaller for copies."""
    scale = (4.0 if official else 1.0) * (3.0 if storyline else 1.0) * (0.3 if repost else 1.0)

    def draw(median: float, sigma: float = 1.1) -> int:
        return int(median * scale * rng.lognormvariate(0, sigma))

    if source == "weibo":
        return PostMetrics(reposts=draw(3), comments=draw(4), likes=draw(10))
    if source == "x":
        return PostMetrics(reposts=draw(2), likes=draw(6))
    if source == "wechat":
        # Seed paper 004: about 400 pageviews per article, "looking at" about 4% of readers.
        pageviews = max(20, int(300 * (3.0 if storyline else 1.0) * rng.lognormvariate(0, 0.8)))
        return PostMetrics(
            pageviews=pageviews,
            likes=int(pageviews * rng.uniform(0.005, 0.03)),
            looking_at=int(pageviews * rng.uniform(0.01, 0.06)),
        )
    return PostMetrics()


def near_duplicate(text: str, rng: random.Random) -> str:
    """Change one or two characters the way copy-paste reposts do: a punctuation mark swapped or
    a filler inserted after one. Words stay whole (keywords still match) and links intact."""
    link_at = text.find(" http")
    body, link = (text, "") if link_at < 0 else (text[:link_at], text[link_at:])
    cjk = any("\u4e00" <= c <= "\u9fff" for c in body)
    swaps, fillers = (_CJK_SWAPS, _CJK_FILLERS) if cjk else (_LATIN_SWAPS, _LATIN_FILLERS)
    chars = list(body)
    for _ in range(rng.randint(1, 2)):
        marks = [i for i, c in enumerate(chars) if c in swaps]
        if marks and rng.random() < 0.6:
            i = rng.choice(marks)
            chars[i] = swaps[chars[i]]
        else:
            breaks = [i + 1 for i, c in enumerate(chars) if c in swaps or c == " "] or [len(chars)]
            chars.insert(rng.choice(breaks), rng.choice(fillers))
    changed = "".join(chars)
    if changed == body:  # two swaps can cancel out (，→, →，)
        changed += fillers[0]
    return changed + link


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


# --- generation --------------------------------------------------------------------------------


class _Generator:
    def __init__(self, templates: Templates, seed: int):
        self.t = templates
        self.rng = random.Random(seed)
        self.ids = _Ids(self.rng, templates.timeline.start)
        self.originals: dict[str, list[SampleItem]] = {BASELINE: [], STORYLINE: []}
        self.texts: set[str] = set()
        self.topic_weights = {key: topic["weight"] for key, topic in templates.topics.items()}

    def run(self, count: int) -> list[SampleItem]:
        items = []
        for at in self.t.timeline.arrivals(count, self.rng):
            tl = self.t.timeline
            pool = STORYLINE if self.rng.random() < tl.surge(at) / (tl.baseline(at) + tl.surge(at)) else BASELINE
            item = None
            if self.rng.random() < self.t.pools[pool]["repost_share"]:
                item = self._repost(pool, at)
            if item is None:
                item = self._original(pool, at)
                self.originals[pool].append(item)
            items.append(item)
        return sorted(items, key=lambda i: (i.post.created_at, i.post.source, i.post.id))

    # originals

    def _original(self, pool: str, at: datetime) -> SampleItem:
        """A fresh post; redraws a few times so two originals never share a text by accident."""
        for _ in range(50):
            topic_key = self.t.storyline["key"] if pool == STORYLINE else _weighted(self.rng, self.topic_weights)
            item = self._draw_original(pool, topic_key, at)
            if item.post.text not in self.texts:
                break
        self.texts.add(item.post.text)
        return item

    def _draw_original(self, pool: str, topic_key: str, at: datetime) -> SampleItem:
        rng, topic = self.rng, self.t.topic(topic_key)
        posts, articles = topic.get("posts", {}), topic.get("articles", {})
        scripts = {s: w for s, w in self.t.pools[pool]["lang_weights"].items() if s in posts or s in articles}
        script = _weighted(rng, scripts)
        is_article = script in articles and (script not in posts or rng.random() < self.t.pools[pool]["article_share"])
        if is_article:
            chosen = rng.choice(articles[script])
            source, title = ARTICLE_SOURCE[script], self.t.render(chosen["title"], script, rng)
            text = self.t.render(chosen["text"], script, rng)
        else:
            source, title = POST_SOURCE[script], None
            text = self._decorate(self.t.render(rng.choice(posts[script]), script, rng), topic, pool, script, source)
        account = rng.choice(self.t.accounts_for(source, script, topic_key))
        return self._item(source, account, text, title, at, topic_key, pool, script)

    def _decorate(self, text: str, topic: dict, pool: str, script: str, source: str) -> str:
        """Hashtags, emoticons and short links the way each platform shows them."""
        rng = self.rng
        tags = topic.get("tags", {}).get(script, [])
        tail = rng.choice(self.t.tails[pool][script])
        if tail[:1] in ("！", "!", "～") and text[-1] in _FINAL_MARKS:
            text = text[:-1]  # "愤慨！！" rather than "愤慨。！！"
        text += tail
        if tags and rng.random() < 0.35:
            tag = rng.choice(tags)
            text = f"{tag}{text}" if source == "weibo" else f"{text} {tag}"
        if source == "x" and rng.random() < 0.3:
            text += " http://t.co/" + "".join(rng.choices("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=10))
        return text

    def _item(self, source, account, text, title, at, topic_key, pool, script, repost_of=None) -> SampleItem:
        post_id = self.ids.new(source, at)
        post = RawPost(
            id=post_id,
            source=source,
            account=_account_id(source, account),
            author=account["author"],
            text=text,
            title=title,
            created_at=at,
            lang=_LANG_HINT[script],
            url=_url(source, account, post_id, at, self.rng),
            metrics=_metrics(
                source, self.rng, storyline=pool == STORYLINE, official=account.get("official", False), repost=repost_of is not None
            ),
        )
        return SampleItem(
            post=post,
            topic=topic_key,
            storyline=pool == STORYLINE,
            script=script,
            repost_of=repost_of,
            official=account.get("official", False),
        )

    # reposts

    def _repost(self, pool: str, at: datetime) -> SampleItem | None:
        """Copy an earlier original of the same pool, preferring recent ones; None if there is none
        or no other account of that source would share it."""
        earlier = [i for i in self.originals[pool] if i.post.created_at < at]
        if not earlier:
            return None
        ages = [(at - i.post.created_at).total_seconds() / 3600 for i in earlier]
        weights = [(3.0 if i.official else 1.0) / (1.0 + age) ** 1.5 for i, age in zip(earlier, ages)]
        original = self.rng.choices(earlier, weights=weights)[0]
        source, post = original.post.source, original.post
        sharers = [a for a in self.t.accounts_for(source, original.script, original.topic) if _account_id(source, a) != post.account]
        if not sharers:
            return None
        account = self.rng.choice(sharers)
        style = _weighted(self.rng, _REPOST_STYLES[source])
        text = post.text
        if style == "near":
            text = near_duplicate(post.text, self.rng)
        elif style == "quote":
            if source == "weibo":
                comment = self.rng.choice(self.t.repost_comments[pool][original.script])
                text = f"{comment} //@{post.author}: {post.text}"
            else:
                text = f"RT @{post.account}: {post.text}"
            if len(text) > MAX_TEXT_CHARS:
                text = post.text
        return self._item(source, account, text, post.title, at, original.topic, pool, original.script, repost_of=post)


def sample_stream(seed: int, count: int, templates: Templates | None = None) -> list[SampleItem]:
    """The sample posts with their ground truth (storyline or not, repost of what), sorted by time."""
    return _Generator(templates or default_templates(), seed).run(count)


def generate(seed: int, count: int) -> list[RawPost]:
    """`count` valid raw posts sorted by created_at; identical for the same seed."""
    return [item.post for item in sample_stream(seed, count)]


def write_jsonl(posts: list[RawPost], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(post.encode() + b"\n" for post in posts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/sample_posts.jsonl"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=600)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be positive")
    items = sample_stream(args.seed, args.count)
    write_jsonl([i.post for i in items], args.out)
    langs = Counter(i.post.lang for i in items)
    reposts = sum(i.repost_of is not None for i in items)
    storyline = sum(i.storyline for i in items)
    print(
        f"wrote {len(items)} posts to {args.out}: "
        + ", ".join(f"{lang} {n}" for lang, n in sorted(langs.items()))
        + f"; {reposts} reposts; {storyline} in the Hong Kong storyline",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
