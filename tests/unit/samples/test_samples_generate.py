"""The bundled sample stream: valid, deterministic, and shaped like the storyline it promises."""

from __future__ import annotations

import difflib
import random
import statistics
from collections import Counter
from datetime import timedelta

import pytest

from pipeline.samples.generate import (
    ARTICLE_SOURCE,
    MAX_TEXT_CHARS,
    POST_SOURCE,
    default_templates,
    generate,
    main,
    near_duplicate,
    sample_stream,
)
from pipeline.schemas import PostMetrics, RawPost, decode_raw_post
from pipeline.settings import Settings

# What the Hong Kong watch looks for: an issue keyword plus a Hong Kong context (simplified,
# traditional, English, Russian), mirrored here so the test checks the text itself.
HK_ISSUE = ["内地游客", "內地遊客", "蝗虫", "蝗蟲", "水货客", "水貨客", "自由行", "一签多行", "一簽多行", "港澳通行证",
            "光复", "光復", "驱蝗", "mainland tourist", "mainland visitor", "mainland shopper", "locust",
            "parallel trader", "multiple-entry", "материков", "саранч", "челночник"]
HK_CONTEXT = ["香港", "港人", "屯门", "屯門", "上水", "沙田", "元朗", "旺角", "尖沙咀", "铜锣湾", "銅鑼灣",
              "hong kong", "tuen mun", "hk", "гонконг"]
TRADITIONAL_ONLY_CHARS = set("內遊蟲貨復舖門們嘅係個後")


def mentions_hk_issue(text: str) -> bool:
    lowered = text.lower()
    return any(k.lower() in lowered for k in HK_ISSUE) and any(k in lowered for k in HK_CONTEXT)


@pytest.fixture(scope="module")
def items():
    return sample_stream(seed=7, count=600)


def hourly_counts(posts, start, end) -> list[int]:
    hours = int((end - start).total_seconds() // 3600)
    counts = Counter(int((p.created_at - start).total_seconds() // 3600) for p in posts if start <= p.created_at < end)
    return [counts[h] for h in range(hours)]


def test_cli_writes_lines_the_pipeline_accepts(tmp_path):
    out = tmp_path / "nested" / "sample.jsonl"
    assert main(["--out", str(out), "--seed", "7", "--count", "600"]) == 0
    lines = out.read_bytes().splitlines()
    settings = Settings()
    decoded = [decode_raw_post(line, settings.post_limits()) for line in lines]
    assert len(decoded) == 600
    assert [d for d in decoded if not isinstance(d, RawPost)] == []
    assert decoded == generate(seed=7, count=600)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    paths = {name: tmp_path / f"{name}.jsonl" for name in ("a", "b", "c")}
    main(["--out", str(paths["a"]), "--seed", "7"])
    main(["--out", str(paths["b"]), "--seed", "7"])
    main(["--out", str(paths["c"]), "--seed", "8"])
    assert paths["a"].read_bytes() == paths["b"].read_bytes()
    assert paths["a"].read_bytes() != paths["c"].read_bytes()


@pytest.mark.parametrize("count", [1, 50, 600, 1500])
def test_count_is_honoured(count):
    assert len(generate(seed=3, count=count)) == count


def test_ids_unique_per_source_and_time_sorted_within_the_timeline(items):
    posts = [i.post for i in items]
    keys = [(p.source, p.id) for p in posts]
    assert len(set(keys)) == len(keys)
    times = [p.created_at for p in posts]
    assert times == sorted(times)
    timeline = default_templates().timeline
    assert timeline.start <= times[0] and times[-1] < timeline.end


def test_texts_are_short_and_originals_distinct(items):
    assert all(20 <= len(i.post.text) <= MAX_TEXT_CHARS for i in items)
    originals = [i.post.text for i in items if i.repost_of is None]
    assert len(set(originals)) == len(originals)


@pytest.mark.parametrize("seed", [7, 1, 2, 3])
def test_hong_kong_surge_stands_out_and_is_about_hong_kong(seed):
    posts = generate(seed=seed, count=600)
    timeline = default_templates().timeline
    baseline = hourly_counts(posts, timeline.start, timeline.onset)
    window_end = timeline.onset + timedelta(hours=6)
    surge = hourly_counts(posts, timeline.onset, window_end)
    assert max(surge) >= 3 * statistics.median(baseline)

    peak_start = timeline.onset + timedelta(hours=surge.index(max(surge)))
    peak = [p for p in posts if peak_start <= p.created_at < peak_start + timedelta(hours=1)]
    assert sum(p.lang == "zh" for p in peak) / len(peak) > 0.5
    on_topic = [p for p in peak if mentions_hk_issue(p.text)]
    assert len(on_topic) / len(peak) > 0.5
    assert len(on_topic) >= 10  # the Hong Kong watch needs at least 10 matches in its 1 h window

    before = [p for p in posts if p.created_at < timeline.onset]
    assert sum(mentions_hk_issue(p.text) for p in before) / len(before) < 0.05


def test_surge_is_mostly_weibo_and_includes_traditional_chinese(items):
    storyline = [i for i in items if i.storyline]
    assert sum(mentions_hk_issue(i.post.text) for i in storyline) / len(storyline) > 0.9
    sources = Counter(i.post.source for i in storyline)
    assert sources.most_common(1)[0][0] == "weibo"
    assert {"en", "ru"} <= {i.post.lang for i in storyline}
    traditional = [i for i in storyline if i.script == "zh_hant"]
    assert traditional and all(TRADITIONAL_ONLY_CHARS & set(i.post.text) for i in traditional)


def test_languages_and_sources_mixed(items):
    langs = Counter(i.post.lang for i in items)
    assert set(langs) == {"zh", "en", "ru"}
    assert langs["zh"] > langs["en"] > langs["ru"] >= 0.05 * len(items)
    assert set(Counter(i.post.source for i in items)) == {"weibo", "wechat", "x", "rss"}


def test_metrics_and_titles_match_each_source(items):
    for item in items:
        post, metrics = item.post, item.post.metrics
        if post.source == "wechat":
            assert post.title and metrics.pageviews is not None and metrics.looking_at is not None
            assert metrics.looking_at <= metrics.pageviews
        elif post.source == "weibo":
            assert None not in (metrics.reposts, metrics.comments, metrics.likes) and post.title is None
        elif post.source == "x":
            assert None not in (metrics.reposts, metrics.likes) and post.title is None
        else:
            assert post.title and metrics == PostMetrics()


def test_reposts_share_and_shape(items):
    reposts = [i for i in items if i.repost_of is not None]
    assert 0.2 <= len(reposts) / len(items) <= 0.3
    styles = Counter()
    for item in reposts:
        post, original = item.post, item.repost_of
        assert post.source == original.source and post.account != original.account
        assert post.created_at > original.created_at
        if post.text == original.text:
            styles["copy"] += 1
        elif post.text.endswith(f"//@{original.author}: {original.text}") or post.text == f"RT @{original.account}: {original.text}":
            styles["quote"] += 1
        else:
            assert difflib.SequenceMatcher(None, post.text, original.text).ratio() > 0.9
            styles["near"] += 1
    assert min(styles.values()) >= 0.1 * len(reposts)
    assert any("转发微博 //@" in i.post.text for i in reposts)


def test_near_duplicate_changes_little_and_keeps_links():
    rng = random.Random(0)
    text = "Hong Kong protest against parallel traders, mainland visitors abused. http://t.co/AbCdEf1234"
    for _ in range(50):
        copy = near_duplicate(text, rng)
        assert copy != text and copy.endswith(" http://t.co/AbCdEf1234")
        assert difflib.SequenceMatcher(None, copy, text).ratio() > 0.9


def test_every_template_renders_short_and_has_someone_to_post_it():
    templates = default_templates()
    rng = random.Random(0)
    topics = {**templates.topics, templates.storyline["key"]: templates.storyline}
    restricted_to = {key for accounts in templates.accounts.values() for a in accounts for key in a.get("only", [])}
    assert restricted_to <= set(topics)
    for key, topic in topics.items():
        for kind, sources in (("posts", POST_SOURCE), ("articles", ARTICLE_SOURCE)):
            for script, entries in topic.get(kind, {}).items():
                assert templates.accounts_for(sources[script], script, key), (key, kind, script)
                for entry in entries:
                    for template in entry.values() if isinstance(entry, dict) else [entry]:
                        for _ in range(10):
                            text = templates.render(template, script, rng)
                            assert "{" not in text and len(text) <= 160, text
                            assert len(text) >= (4 if kind == "articles" else 20), text
