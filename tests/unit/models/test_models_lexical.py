import pytest

from pipeline.models.enricher import DEFAULT_SEED_LEXICON, DEFAULT_TAXONOMY, LexicalEnricher
from pipeline.models.lexical import (EmoticonCounter, LexicalSentimentModel, LexicalTopicModel, features,
                                     naive_bayes_weights)
from pipeline.models.taxonomy import load_taxonomy
from pipeline.models.terms import WORD, TermMatcher


@pytest.fixture(scope="module")
def seed_sentiment():
    return LexicalSentimentModel.load(DEFAULT_SEED_LEXICON)  # seed lexicon only: no build needed


@pytest.fixture(scope="module")
def topic_model():
    return LexicalTopicModel(load_taxonomy(DEFAULT_TAXONOMY))


@pytest.mark.parametrize("text, label", [
    ("What a wonderful, successful visit. Great friendship!", "positive"),
    ("This is a terrible failure and a disaster.", "negative"),
    ("质量很好，非常满意，推荐！", "positive"),
    ("太失望了，质量差，垃圾。", "negative"),
    ("Отличная новость, спасибо за поддержку!", "positive"),
    ("Это ужасное решение, настоящий провал.", "negative"),
    ("The embassy is open on Monday.", "neutral"),
])
def test_seed_sentiment_on_obvious_cases(seed_sentiment, text, label):
    result = seed_sentiment.score(text)
    assert result.label == label
    assert -1.0 <= result.score <= 1.0
    assert (result.score > 0) == (label == "positive") or label == "neutral"


@pytest.mark.parametrize("plain, negated", [
    ("This is good", "This is not good"),
    ("这个产品好", "这个产品不好"),
    ("Это хорошо", "Это не хорошо"),
])
def test_negation_flips_polarity(seed_sentiment, plain, negated):
    assert seed_sentiment.score(plain).score > 0 > seed_sentiment.score(negated).score


@pytest.mark.parametrize("text, topic, secondary", [
    ("外交部发言人表示，两国外长举行会谈，讨论双边关系。", "political_affairs", "external_relations"),
    ("Russia and China agree a new natural gas pipeline and oil supply deal.", "economic_trade_cooperation",
     "energy_cooperation"),
    ("Сборная России победила в матче чемпионата мира по футболу.", "cultural_exchanges", "sports_world_cup"),
    ("The embassy will be closed on Monday; consular services resume Tuesday.", "other", "embassy_notices"),
])
def test_keyword_topics_in_three_languages(topic_model, text, topic, secondary):
    [prediction] = topic_model.predict([text])
    assert (prediction.topic, prediction.secondary_topic) == (topic, secondary)
    assert 0.0 < prediction.score <= 1.0


def test_no_evidence_falls_back_with_zero_score(topic_model):
    [prediction] = topic_model.predict(["lorem ipsum dolor"])
    assert (prediction.topic, prediction.secondary_topic, prediction.score) == ("other", "", 0.0)


def test_a_batch_predicts_each_text_as_alone(topic_model):
    """The batch is scored as one matrix: texts without evidence must not shift the others' rows."""
    texts = ["lorem ipsum", "外交部发言人表示，两国外长举行会谈。", "", "Russia and China agree a gas pipeline deal.",
             "lorem", "Сборная России победила в матче чемпионата мира по футболу."]
    alone = [topic_model.predict([text])[0] for text in texts]
    batch = topic_model.predict(texts)
    assert [(p.topic, p.secondary_topic) for p in batch] == [(p.topic, p.secondary_topic) for p in alone]
    assert [p.score for p in batch] == pytest.approx([p.score for p in alone])
    assert [p.score == 0.0 for p in batch] == [True, False, True, False, True, False]


def test_examples_teach_vocabulary_the_keywords_lack(topic_model):
    text = "Matryoshka workshop for kids this weekend"
    assert topic_model.predict([text])[0].score == 0.0
    examples = [("matryoshka painting workshop", "cultural_exchange"), ("kids love the matryoshka dolls", "cultural_exchange"),
                ("gas supply contract", "energy_cooperation"), ("visa office hours", "embassy_notices")]
    taught = topic_model.with_examples([t for t, _ in examples], [lab for _, lab in examples])
    assert taught.predict([text])[0].secondary_topic == "cultural_exchange"


def test_features_mix_cjk_chars_and_words():
    feats = features("中国 Trade deal")
    assert {"中", "国", "中国", "trade", "deal", "trade deal"} <= set(feats)


def test_naive_bayes_weights_favour_the_right_class():
    weights = naive_bayes_weights(["good great", "great fine", "bad awful", "awful poor"],
                                  ["pos", "pos", "neg", "neg"], ["neg", "pos"])
    assert weights.scores(["great"]).argmax() == 1 and weights.scores(["awful"]).argmax() == 0


def test_lexical_enricher_marks_rows_lexical(tmp_path):
    enricher = LexicalEnricher.load(DEFAULT_TAXONOMY, model_dir=tmp_path)  # nothing built there
    rows = enricher.enrich(["Great news: the gas pipeline deal is signed!", "无关内容"], ["en", "zh"], ["news", "social"])
    assert [r.model_path for r in rows] == ["lexical", "lexical"]
    assert rows[0].topic == "economic_trade_cooperation" and rows[0].sentiment_label == "positive"
    with pytest.raises(ValueError):
        enricher.enrich(["a"], [], ["social"])


def test_term_matcher_counts_non_overlapping_cjk_hits_for_every_owner():
    matcher = TermMatcher([("哈哈", 0), ("哈哈", 1), ("不错", 2), ("good", 3)])
    lowered = "哈哈哈哈哈，真不错 good"
    hits = matcher.find(lowered, WORD.findall(lowered))
    assert sorted(owner for owner, _ in hits) == [0, 0, 1, 1, 2, 3]
    assert (2, "，真") in hits  # with the two characters before it, where negation is looked for


def test_emoticon_codes_and_emoji_count_by_polarity_longest_code_first():
    counter = EmoticonCounter({"positive": ["[哈哈]", "😊"], "negative": ["[泪]", "[泪流满面]", "😡"]})
    assert counter.counts("好[哈哈][哈哈]😊") == (0, 3)
    assert counter.counts("[泪流满面]😡 [泪]") == (3, 0)  # "[泪流满面]" is one code, not "[泪" + more
    assert counter.counts("哈哈 泪 [unknown]") == (0, 0)
    assert counter.matrix(["[哈哈]", "😡😡"]).tolist() == [[0, 0, 1], [2, 0, 0]]


def test_the_seed_lexicon_reads_emoticons_as_sentiment():
    model = LexicalSentimentModel.load(DEFAULT_SEED_LEXICON)
    assert model.score("又是周一[泪][泪]").label == "negative"
    assert model.score("又是周一[哈哈]").label == "positive"
