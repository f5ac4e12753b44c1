from pathlib import Path

import pytest
import yaml

from pipeline.alerting.watches import Watch, WatchConfig, WatchConfigError, load_watch, load_watches

WATCH_DIR = Path(__file__).resolve().parents[3] / "models" / "watches"


@pytest.fixture(scope="module")
def shipped() -> dict[str, Watch]:
    return {watch.name: watch for watch in load_watches(WATCH_DIR)}


def test_shipped_watches_cover_hk_case_and_every_first_level_topic(shipped):
    assert set(shipped) == {
        "hk_mainland_tourists",
        "topic_political_affairs",
        "topic_cultural_exchanges",
        "topic_economic_trade_cooperation",
        "topic_other",
    }


@pytest.mark.parametrize(
    "post",
    [
        {"text": "香港街头又见驱蝗行动，内地游客被围堵", "countries": []},
        {"text": "Hong Kong protesters call mainland visitors LOCUSTS", "countries": []},
        {"text": "В Гонконге снова протесты против «саранчи» из материкового Китая", "countries": []},
        {"text": "水货客挤爆上水站", "countries": ["HK"]},
    ],
)
def test_hk_watch_matches_zh_en_ru(shipped, post):
    assert shipped["hk_mainland_tourists"].matches(post)


@pytest.mark.parametrize(
    "post",
    [
        {"text": "locusts swarm across east africa", "countries": ["KE"]},
        {"text": "内地游客春节出游人数创新高", "countries": ["CN"]},
        {"text": "hong kong film festival opens", "countries": ["HK"]},
        {"text": "hong kong: locustella warblers spotted", "countries": ["HK"]},
    ],
)
def test_hk_watch_rejects_posts_without_issue_or_without_hong_kong(shipped, post):
    assert not shipped["hk_mainland_tourists"].matches(post)


def test_normalised_text_is_preferred_over_raw_text(shipped):
    post = {"text": "香港 內地遊客 (traditional)", "text_norm": "香港 内地游客", "countries": []}
    assert shipped["hk_mainland_tourists"].matches(post)


def test_topic_watch_matches_by_topic_field_only(shipped):
    watch = shipped["topic_economic_trade_cooperation"]
    assert watch.matches({"text": "", "topic": "economic_trade_cooperation", "countries": []})
    assert not watch.matches({"text": "economic_trade_cooperation", "topic": "other", "countries": []})


def test_objects_with_attributes_are_accepted(shipped):
    class Post:
        text = "HONG KONG locust protest"
        countries = ("US",)

    assert shipped["hk_mainland_tourists"].matches(Post())


def _watch(**match) -> Watch:
    return Watch(WatchConfig.model_validate({"name": "w", "match": match}))


def test_en_keywords_need_word_boundaries_and_ru_prefix_wildcard_allows_inflection():
    watch = _watch(keywords={"en": ["visa"], "ru": ["виз*"]})
    assert watch.matches({"text": "New visa rules."})
    assert not watch.matches({"text": "visas and envisage"})
    assert watch.matches({"text": "Новые правила визового режима"})
    assert not watch.matches({"text": "привизовый"})


def test_all_criteria_must_hold_and_exclude_vetoes():
    watch = _watch(keywords={"zh": ["签证"]}, countries=["RU"], langs=["zh"], exclude={"en": ["spam"]})
    post = {"text": "俄罗斯签证新规", "countries": ["ru"], "lang": "zh"}
    assert watch.matches(post)
    assert not watch.matches({**post, "lang": "en"})
    assert not watch.matches({**post, "countries": ["US"]})
    assert not watch.matches({**post, "text": "俄罗斯签证新规 spam"})


def test_keys_for_all_topic_and_each_country():
    watch = Watch(
        WatchConfig.model_validate(
            {"name": "w", "match": {"topics": ["other"]}, "rules": {"keys": ["all", "topic", "country"]}}
        )
    )
    assert watch.keys_for({"topic": "other", "countries": ["us", "CN", "US"]}) == [
        "all",
        "topic:other",
        "country:CN",
        "country:US",
    ]


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_unknown_field_is_reported_with_file_and_field_path(tmp_path):
    path = _write(tmp_path, "bad.yaml", "name: bad\nmatch:\n  keywrds: {en: [x]}\n  topics: [other]\n")
    with pytest.raises(WatchConfigError) as error:
        load_watch(path)
    assert str(path) in str(error.value)
    assert "match.keywrds" in str(error.value)


def test_bad_duration_and_missing_criteria_are_reported(tmp_path):
    path = _write(tmp_path, "bad.yaml", "name: bad\nmatch: {}\nrules:\n  window: 5x\n")
    with pytest.raises(WatchConfigError) as error:
        load_watch(path)
    message = str(error.value)
    assert "rules.window" in message and "not a duration" in message
    assert "match" in message and "at least one of" in message


def test_durations_accept_units(tmp_path):
    path = _write(tmp_path, "ok.yaml", "name: ok\nmatch: {topics: [other]}\nrules: {window: 15m, cooldown: 1d}\n")
    rules = load_watch(path).rules
    assert (rules.window, rules.cooldown) == (900, 86400)


def test_yaml_syntax_error_and_non_mapping_are_reported(tmp_path):
    with pytest.raises(WatchConfigError, match="cannot read YAML"):
        load_watch(_write(tmp_path, "a.yaml", "name: [unclosed\n"))
    with pytest.raises(WatchConfigError, match="expected a mapping"):
        load_watch(_write(tmp_path, "b.yaml", "- just a list\n"))


def test_duplicate_watch_names_are_rejected(tmp_path):
    _write(tmp_path, "a.yaml", "name: same\nmatch: {topics: [other]}\n")
    _write(tmp_path, "b.yaml", "name: same\nmatch: {topics: [other]}\n")
    with pytest.raises(WatchConfigError, match="already defined"):
        load_watches(tmp_path)


def test_topic_watches_use_first_level_ids_of_the_taxonomy(shipped):
    taxonomy = yaml.safe_load((WATCH_DIR.parent / "taxonomy.yaml").read_text(encoding="utf-8"))
    first_level = {topic["id"] for topic in taxonomy["topics"]}
    watched = {t for watch in shipped.values() for t in watch.config.match.topics}
    assert watched == first_level
