"""Synthetic enriched posts and alerts spanning topics, countries, sentiments and scripts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pipeline.schemas import Alert, AlertState, EnrichedPost, SamplePost
from tests.factories import enriched_post

DB = "pd"
TOPICS = ("political_affairs", "economic_trade_cooperation", "cultural_exchanges", "science_technology", "other")
COUNTRIES = ("CN", "RU", "US", "FR", "DE", "JP", "IN", "BR", "GB", "HK", "KR", "ZA")
TEXTS = (
    "外交部发言人就中美经贸磋商答记者问",
    "Посольство России провело культурный вечер в Пекине",
    "Trade delegation signs agreement on green technology",
    "香港旅游业复苏，内地游客人数回升",
    "Министр иностранных дел обсудил санкции с коллегами",
    "Joint statement on climate cooperation released",
)
# The most negative post of the data set: CJK + Cyrillic + markup that must stay literal text.
MARKER_TEXT = "抗议升级：大使馆门前示威 — протест у посольства <img src=x onerror=alert(1)>"
OPEN_ALERT_KEY = "country:RU"


def make_post(
    rng: random.Random, number: int, created_at: datetime, text: str | None = None, score: float | None = None
) -> EnrichedPost:
    score = round(rng.uniform(-1, 1), 3) if score is None else score
    label = "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral"
    text = text or f"{rng.choice(TEXTS)} #{number}"
    return enriched_post(
        f"p{number}", created_at, source=rng.choice(("weibo", "wechat", "x", "rss")),
        account=rng.choice(("embassy", "mfa", "")), title=None, url=f"https://example.org/post/{number}", text=text,
        text_norm=text.lower(), countries=rng.sample(COUNTRIES, rng.randint(0, 2)), content_hash=f"h{number}",
        topic=rng.choice(TOPICS), secondary_topic="general", topic_score=0.8, sentiment_score=score,
        sentiment_label=label, model_path=rng.choices(("learned", "transformer", "lexical"), (8, 2, 1))[0],
        pageviews=rng.randint(0, 5000), processed_at=created_at + timedelta(seconds=3),
    )  # fmt: skip


def make_posts(start_number: int, count: int, now: datetime, span: timedelta) -> list[EnrichedPost]:
    rng = random.Random(start_number)
    return [make_post(rng, start_number + i, now - span * rng.random()) for i in range(count)]


def make_alert(
    alert_id: str, watch: str, key: str, severity: str, state: AlertState, window_end: datetime, observed: int
) -> Alert:
    return Alert(
        id=alert_id, watch=watch, key=key, severity=severity, state=state,
        window_start=window_end - timedelta(hours=1), window_end=window_end, observed=observed, baseline=observed / 4,
        negative_share=0.7, baseline_negative_share=0.25, score=5.2,
        sample_posts=[SamplePost(id="p0", text=MARKER_TEXT)], top_terms=["санкции", "抗议", "embassy"],
        opened_at=window_end, updated_at=window_end,
    )  # fmt: skip




def dataset(now: datetime) -> tuple[list[EnrichedPost], list[Alert]]:
    """400 posts over the last five hours plus the marker post; two open alerts and a resolved one."""
    posts = make_posts(1, 400, now, timedelta(hours=5))
    posts.append(make_post(random.Random(0), 0, now - timedelta(minutes=30), text=MARKER_TEXT, score=-0.99))
    alerts = [
        make_alert("a1", "topic_political_affairs", OPEN_ALERT_KEY, "critical", AlertState.OPEN, now - timedelta(hours=2), 40),
        make_alert(
            "a1", "topic_political_affairs", OPEN_ALERT_KEY, "critical", AlertState.UPDATED, now - timedelta(hours=1), 55
        ),
        make_alert("a2", "hk_mainland_tourists", "all", "warning", AlertState.OPEN, now - timedelta(minutes=40), 210),
        make_alert("a3", "topic_other", "country:US", "info", AlertState.OPEN, now - timedelta(hours=4), 25),
        make_alert("a3", "topic_other", "country:US", "info", AlertState.RESOLVED, now - timedelta(hours=3), 8),
    ]  # fmt: skip
    return posts, alerts
