"""The learned tier (the default for every post) and the analyser around it; they use the built
model directory (session fixture)."""
from datetime import datetime, timezone

import numpy as np
import pytest

from pipeline.analysis import ContentAnalyser
from pipeline.models.enricher import DEFAULT_TAXONOMY
from pipeline.models.taxonomy import load_taxonomy
from pipeline.schemas import RawPost
from pipeline.settings import Settings

pytestmark = pytest.mark.timeout(1800)  # the first test may build the models (session fixture)
T0 = datetime(2015, 2, 8, 10, tzinfo=timezone.utc)


@pytest.fixture
def analyser(learned):
    return ContentAnalyser(Settings(), learned)


def analyse(analyser, texts, source="weibo"):
    posts = [RawPost(id=str(i), source=source, text=t, created_at=T0) for i, t in enumerate(texts)]
    return analyser.classify([analyser.read(p) for p in posts], deadline=None)


def test_learned_sentiment_on_obvious_social_posts(learned):
    rows = learned.enrich(["这家店服务太差了，再也不来了", "今天拿到offer了，超级开心", "明天上午十点开会",
                           "terrible service, i hate it", "i love this, what a great day!"],
                          ["zh", "zh", "zh", "en", "en"], ["social"] * 5)
    assert [r.sentiment_label for r in rows] == ["negative", "positive", "neutral", "negative", "positive"]
    assert {r.model_path for r in rows} == {"learned"}


def test_emoticons_and_emoji_move_the_score(learned):
    texts = ["又是周一", "又是周一[哈哈]", "又是周一[泪]", "又是周一😡😡"]
    plain, laughing, crying, angry = learned.enrich(texts, ["zh"] * 4, ["social"] * 4)
    assert laughing.sentiment_score > plain.sentiment_score > crying.sentiment_score
    assert angry.sentiment_label == "negative" and laughing.sentiment_label == "positive"


def test_the_kind_of_post_picks_the_head(learned):
    text = "两国签署合作协议，外交部发言人表示欢迎"
    features, _ = learned.featuriser.transform([text])
    hits = learned.sentiment.emoticons.matrix([text])
    social, news = learned.enrich([text, text], ["zh", "zh"], ["social", "news"])
    for row, head in ((social, "zh_social"), (news, "zh_news")):
        p = learned.sentiment.head_proba(head, features, hits)[0]
        assert row.sentiment_score == pytest.approx(p[2] - p[0])


def test_a_post_gets_the_same_result_alone_and_in_any_batch(learned):
    texts = ["香港 内地游客 冲突 令人担忧", "russia and china sign an energy deal", "посольство поздравляет с праздником",
             "好", "中俄友谊万岁[心]"] * 3
    langs, kinds = ["zh", "en", "ru", "zh", "zh"] * 3, ["social", "news", "social", "social", "news"] * 3
    together = learned.enrich(texts, langs, kinds)
    for i in range(5):
        [alone] = learned.enrich([texts[i]], [langs[i]], [kinds[i]])
        for copy in (together[i], together[i + 5], together[i + 10]):
            assert (copy.topic, copy.secondary_topic, copy.sentiment_label) == (
                alone.topic, alone.secondary_topic, alone.sentiment_label)
            assert copy.sentiment_score == pytest.approx(alone.sentiment_score, abs=1e-6)


@pytest.mark.parametrize("text", ["http://t.cn/abc", "转发微博", "   ", "@someone"])
def test_a_post_with_nothing_left_to_score_is_neutral_and_says_empty(analyser, text):
    [result] = analyse(analyser, [text])
    assert (result.sentiment_label, result.sentiment_score, result.model_path) == ("neutral", 0.0, "empty")
    assert result.topic == load_taxonomy(DEFAULT_TAXONOMY).fallback_topic


@pytest.mark.parametrize("text", ["😡😡😡", "😊", "[哈哈][哈哈]", "！！！？？？", "中文 english русский 日本語 한국어 العربية ελληνικά",
                                  "好" * 5000, "差评 " * 1000, "a\u0301\u200b\ufeff b"])
def test_odd_posts_get_a_label_from_the_learned_model(analyser, text):
    [result] = analyse(analyser, [text])
    assert result.model_path == "learned"
    assert result.sentiment_label in ("negative", "neutral", "positive") and -1 <= result.sentiment_score <= 1
    assert 0 <= result.topic_score <= 1


def test_emoji_only_posts_follow_their_emoji(analyser):
    angry, happy = analyse(analyser, ["😡😡😡", "😊😊😊"])
    assert angry.sentiment_label == "negative" and happy.sentiment_label == "positive"


def test_a_repost_takes_its_originals_result_and_model_path(analyser):
    original = "香港 光复屯门 示威者 围堵 内地游客 场面混乱 警方到场"
    first, repost = analyse(analyser, [original, f"转发微博 //@路人甲: {original}"])
    assert repost == first and repost.model_path == "learned"


def test_a_copy_with_other_emoji_is_scored_on_its_own(analyser):
    """Repost detection ignores emoji (its compact text is letters and digits); the model does
    not, so the copy must not reuse a result that depends on which of the two came first."""
    happy, angry = analyse(analyser, ["今天的会议开完了😊😊", "今天的会议开完了😡😡"])
    assert happy.sentiment_score > angry.sentiment_score
    reversed_angry, reversed_happy = analyse(analyser, ["今天的会议开完了😡😡", "今天的会议开完了😊😊"])
    assert (reversed_angry, reversed_happy) == (angry, happy)


def test_token_embeddings_put_related_words_closer(learned):
    embed = learned.featuriser.embeddings.embed
    from pipeline.models.textfeatures import Batch

    war, battle, cake = embed(Batch.of(["战争", "战斗", "蛋糕"]))
    assert war @ battle > war @ cake
    assert np.isclose(np.linalg.norm(war), 1.0)
