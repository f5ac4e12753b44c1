import pytest

from pipeline.transforms.entities import Gazetteer, default_gazetteer


def countries(text):
    return default_gazetteer().find(text).countries


def organisations(text):
    return default_gazetteer().find(text).organisations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中美关系", ("CN", "US")),
        ("中俄合作与美俄对话", ("CN", "RU", "US")),
        ("中日韩峰会", ("CN", "JP", "KR")),
        ("俄乌冲突", ("RU", "UA")),
        ("港澳台同胞", ("HK", "MO", "TW")),
        ("中方回应日本", ("CN", "JP")),
    ],
)
def test_chinese_names_and_pair_abbreviations(text, expected):
    assert countries(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("白俄罗斯总统访问", ("BY",)),  # not RU inside 白俄罗斯
        ("印度尼西亚大选", ("ID",)),  # not IN inside 印度尼西亚
        ("中美洲国家", ()),  # Central America, not China-US
        ("在国际社会中日益重要", ()),  # 中日益 = "increasingly", not China-Japan
        ("在合作中加强沟通", ()),
    ],
)
def test_chinese_longer_phrases_override_shorter_keys(text, expected):
    assert countries(text) == expected


def test_english_us_only_as_the_acronym():
    assert countries("Tell us what you think, let us know") == ()
    assert countries("the US and the U.S. Navy") == ("US",)
    assert countries("USA! America first") == ("US",)


def test_acronyms_still_match_after_letters_that_lower_case_to_two_characters():
    assert countries("İstanbul talks: the US and Türkiye") == ("US", "TR")


def test_english_word_boundaries_and_demonyms():
    assert countries("Chinatown restaurant reviews") == ()
    text = "Chinese and Ukrainian diplomats met South Korean and North Korean envoys"
    assert countries(text) == ("CN", "UA", "KR", "KP")
    assert countries("Latin America and South American markets") == ()


def test_english_acronym_organisations_need_their_case():
    assert organisations("The WHO said who will attend the UN meeting, un peu") == ("WHO", "UN")
    assert organisations("who knows") == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Россия", ("RU",)),
        ("из России в Китай", ("RU", "CN")),
        ("с Китаем и российскими партнёрами", ("CN", "RU")),
        ("переговоры с Соединёнными Штатами", ("US",)),
        ("американские санкции против КНР", ("US", "CN")),
        ("с Южной Кореей и Японией", ("KR", "JP")),
        ("в Гонконге и на Тайване", ("HK", "TW")),
        ("индивидуальный подход", ()),
        ("страны Латинской Америки", ()),
    ],
)
def test_russian_inflected_forms(text, expected):
    assert countries(text) == expected


def test_russian_organisations_and_case_sensitive_eu():
    mentions = default_gazetteer().find("НАТО и ЕС обсудили заявление ООН и ШОС")
    assert mentions.countries == ("EU",)
    assert mentions.organisations == ("NATO", "UN", "SCO")
    assert countries("есть вопросы") == ()


def test_organisations_are_separate_and_in_order_of_mention():
    mentions = default_gazetteer().find("联合国安理会讨论北约东扩, 金砖国家与上合组织表态; China and the IMF")
    assert mentions.organisations == ("UN", "UNSC", "NATO", "BRICS", "SCO", "IMF")
    assert mentions.countries == ("CN",)


def _write(tmp_path, body):
    path = tmp_path / "gazetteer.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_loader_rejects_a_name_with_two_meanings(tmp_path):
    path = _write(tmp_path, "countries:\n  CN: {en: [china]}\n  TW: {en: [china]}\norganisations: {}\n")
    with pytest.raises(ValueError, match="china"):
        Gazetteer.from_yaml(path)


def test_loader_rejects_unknown_codes_and_inner_stars(tmp_path):
    with pytest.raises(ValueError, match="unknown codes"):
        spec = "countries:\n  CN: {zh: [中国]}\norganisations: {}\ncombined:\n  中美: [CN, US]\n"
        Gazetteer.from_yaml(_write(tmp_path, spec))
    with pytest.raises(ValueError, match="only at the end"):
        Gazetteer.from_yaml(_write(tmp_path, "countries:\n  RU: {ru: [росс*ия]}\norganisations: {}\n"))


def test_a_small_gazetteer_file_is_used_as_written(tmp_path):
    spec = "countries:\n  XX: {en: [ruritania*], case: [RU]}\norganisations: {}\n"
    gazetteer = Gazetteer.from_yaml(_write(tmp_path, spec))
    assert gazetteer.find("Ruritanian RU ru Russia").countries == ("XX",)
    assert gazetteer.find("ru Russia").countries == ()
