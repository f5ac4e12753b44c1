import json
import subprocess
import sys

import pytest

from pipeline.transforms import RepostDetector, ResultCache, normalise

ORIGINAL_ZH = "外交部发言人表示，中美双方应当加强对话沟通，妥善管控分歧，推动两国关系重回健康稳定发展轨道。"
ORIGINAL_EN = (
    "The foreign ministers of both countries agreed to resume regular consultations on trade and security next month."
)
UNRELATED = [
    ORIGINAL_ZH,
    ORIGINAL_EN,
    "俄罗斯驻华使馆发布微信文章，介绍莫斯科冬季旅游线路和文化活动安排。",
    "联合国安理会就中东局势召开紧急会议，多国代表呼吁立即停火并保护平民。",
    "今年全国两会期间，代表委员围绕科技创新和乡村振兴提出大量建议。",
    "Stock markets in Asia fell sharply after the central bank raised interest rates again.",
    "The embassy published a new article about cultural exchange programmes for students.",
    "Министр иностранных дел России провёл переговоры с китайским коллегой в Пекине.",
    "В Москве открылась выставка современного искусства из стран Азии и Африки.",
]


def check(detector, make_post, post_id, text):
    norm = normalise(make_post(text, id=post_id))
    return detector.check(post_id, norm.text_norm, norm.content_hash)


def test_exact_duplicate_points_to_the_first_post(make_post):
    detector = RepostDetector()
    assert check(detector, make_post, "a", ORIGINAL_ZH) is None
    match = check(detector, make_post, "b", ORIGINAL_ZH)
    assert (match.first_id, match.exact, match.similarity) == ("a", True, 1.0)
    assert check(detector, make_post, "c", ORIGINAL_ZH + " http://t.cn/xyz").first_id == "a"


def test_weibo_repost_chain_is_a_repost(make_post):
    detector = RepostDetector()
    check(detector, make_post, "a", ORIGINAL_ZH)
    match = check(detector, make_post, "b", f"转发微博//@环球时报: 轉發微博 //@外交部发言人办公室:{ORIGINAL_ZH}")
    assert match.first_id == "a"


def test_weibo_repost_with_a_short_comment_is_a_near_duplicate(make_post):
    detector = RepostDetector()
    check(detector, make_post, "a", ORIGINAL_ZH)
    match = check(detector, make_post, "b", f"说得好！//@外交部发言人办公室:{ORIGINAL_ZH}")
    assert match.first_id == "a" and not match.exact


def test_retweet_is_a_repost(make_post):
    detector = RepostDetector()
    check(detector, make_post, "a", ORIGINAL_EN)
    assert check(detector, make_post, "b", f"RT @Reuters: {ORIGINAL_EN}").first_id == "a"


@pytest.mark.parametrize(
    ("original", "edited"),
    [
        (ORIGINAL_ZH, ORIGINAL_ZH.replace("加强", "增进").replace("健康", "良性")),
        (ORIGINAL_EN, ORIGINAL_EN.replace("resume", "restart").replace("month", "week")),
    ],
)
def test_small_edits_are_near_duplicates(make_post, original, edited):
    detector = RepostDetector()
    check(detector, make_post, "a", original)
    match = check(detector, make_post, "b", edited)
    assert match is not None and match.first_id == "a"
    assert detector.threshold <= match.similarity < 1.0 and not match.exact


def test_unrelated_texts_are_not_matched(make_post):
    detector = RepostDetector()
    assert [check(detector, make_post, str(i), text) for i, text in enumerate(UNRELATED)] == [None] * len(UNRELATED)
    assert len(detector) == len(UNRELATED)


def test_texts_without_content_are_never_matched(make_post):
    detector = RepostDetector()
    assert check(detector, make_post, "a", "转发微博") is None
    assert check(detector, make_post, "b", "转发微博") is None
    assert len(detector) == 0


def test_redelivered_post_is_not_its_own_repost(make_post):
    detector = RepostDetector()
    assert check(detector, make_post, "a", ORIGINAL_EN) is None
    assert check(detector, make_post, "a", ORIGINAL_EN) is None
    assert check(detector, make_post, "b", ORIGINAL_EN).first_id == "a"


def test_capacity_evicts_the_least_recently_matched(make_post):
    detector = RepostDetector(capacity=2)
    check(detector, make_post, "zh", ORIGINAL_ZH)
    check(detector, make_post, "en", ORIGINAL_EN)
    assert check(detector, make_post, "zh-again", ORIGINAL_ZH).first_id == "zh"  # refreshes "zh"
    check(detector, make_post, "ru", UNRELATED[-1])  # evicts "en"
    assert len(detector) == 2
    assert check(detector, make_post, "en-again", ORIGINAL_EN) is None  # forgotten: now a first post
    assert check(detector, make_post, "zh-third", ORIGINAL_ZH) is None  # evicted by "en-again"
    assert check(detector, make_post, "en-third", ORIGINAL_EN).first_id == "en-again"


_REPLAY = """
import json, sys
from datetime import datetime, timezone
from pipeline.schemas import RawPost
from pipeline.transforms import RepostDetector, normalise
detector = RepostDetector(capacity=4)
out = []
for i, text in enumerate(json.loads(sys.stdin.read())):
    norm = normalise(RawPost(id=str(i), source="x", text=text, created_at=datetime(2024, 1, 1, tzinfo=timezone.utc)))
    match = detector.check(str(i), norm.text_norm, norm.content_hash)
    out.append(None if match is None else [match.first_id, match.similarity])
print(json.dumps(out))
"""


def test_replays_reproduce_across_processes():
    edited = ORIGINAL_EN.replace("resume", "restart")
    stream = [*UNRELATED, edited, f"RT @a: {ORIGINAL_EN}", ORIGINAL_ZH.replace("加强", "增进"), UNRELATED[2]]
    runs = [
        subprocess.run(
            [sys.executable, "-c", _REPLAY],
            input=json.dumps(stream),
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    assert any(json.loads(runs[0]))  # the stream does contain reposts to reproduce


def test_result_cache_is_a_bounded_lru():
    cache: ResultCache[str, dict] = ResultCache(capacity=2)
    cache.put("a", {"topic": "x"})
    cache.put("b", {"topic": "y"})
    assert cache.get("a") == {"topic": "x"}  # refreshes "a"
    cache.put("c", {"topic": "z"})
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == ({"topic": "x"}, {"topic": "z"}, 2)
