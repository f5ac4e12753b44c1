import pytest

from pipeline.transforms.language import detect_language, normalise_hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中国外交部发言人表示", "zh"),
        ("中華人民共和國外交部發言人在記者會上表示", "zh"),
        ("The foreign ministry said talks would resume next week.", "en"),
        ("Министр иностранных дел заявил, что переговоры продолжатся.", "ru"),
        ("Міністр закордонних справ заявив, що переговори тривають.", "uk"),
        ("Министърът на външните работи заяви, че преговорите продължават.", "bg"),
        ("Вечером состоялась встреча", "ru"),  # Russian without ы/э: decided by the model
        ("日本の外務省は声明を発表した", "ja"),
        ("한국 외교부는 성명을 발표했다", "ko"),
        ("Le ministre a déclaré que la France soutient le dialogue.", "fr"),
    ],
)
def test_languages(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中国和NATO的关系非常重要", "zh"),
        ("Great speech by 王毅 on China-US relations at the summit today", "en"),
        ("Встреча с делегацией из 北京 прошла успешно", "ru"),
        ("外交部回应NATO summit声明", "zh"),
        ("The minister answered with the Russian word вы during a long English press conference", "en"),
    ],
)
def test_mixed_texts_follow_the_dominant_script(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["ok", "好", "123 !!", ""])
def test_too_short_is_undetermined(text):
    assert detect_language(text) == "und"


def test_hint_decides_short_texts_when_plausible():
    assert detect_language("ok", "en") == "en"
    assert detect_language("好", "zh-Hans") == "zh"


def test_hint_is_taken_when_the_script_agrees():
    # Kanji-only Japanese looks Chinese by script; the source knows better.
    assert detect_language("外務大臣会見", "ja") == "ja"
    assert detect_language("外務大臣会見") == "zh"


def test_implausible_hint_is_ignored():
    assert detect_language("中美关系需要稳定发展", "en") == "zh"
    assert detect_language("Министр иностранных дел заявил о переговорах", "zh") == "ru"
    assert detect_language("Министр иностранных дел заявил о переговорах", "fr") == "ru"
    assert detect_language("日本の外務省は声明を発表した", "zh") == "ja"


@pytest.mark.parametrize(
    ("hint", "expected"),
    [("zh-Hant-TW", "zh"), ("EN_us", "en"), ("yue", "zh"), ("und", None), ("qme", None), ("", None), (None, None)],
)
def test_hint_normalisation(hint, expected):
    assert normalise_hint(hint) == expected
