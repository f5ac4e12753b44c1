import msgspec

from pipeline.schemas import EnrichedPost
from pipeline.transforms import normalise


def test_traditional_chinese_is_simplified(make_post):
    norm = normalise(make_post("中華人民共和國外交部發言人表示，臺灣問題是中國內政"))
    assert norm.text_norm == "中华人民共和国外交部发言人表示,台湾问题是中国内政"


def test_full_width_becomes_half_width_and_latin_is_lower_cased(make_post):
    norm = normalise(make_post("ＴＨＥ　ＵＳＡ ｓａｉｄ １２３！"))
    assert norm.text_norm == "the usa said 123!"


def test_whitespace_is_collapsed(make_post):
    assert normalise(make_post("  one\n\n two \t three\u3000four  ")).text_norm == "one two three four"


def test_urls_are_extracted_and_removed_even_when_chinese_follows(make_post):
    norm = normalise(make_post("详情见 http://t.cn/A6abcD看看 and (https://example.org/a?b=1)."))
    assert norm.urls == ("http://t.cn/A6abcD", "https://example.org/a?b=1")
    assert "http" not in norm.text_norm
    assert "看看" in norm.text_norm


def test_mentions_twitter_and_weibo_style_but_not_emails(make_post):
    norm = normalise(make_post("@ChinaDaily 请 @人民日报 转告 mail@example.org"))
    assert norm.mentions == ("ChinaDaily", "人民日报")
    assert "chinadaily" not in norm.text_norm and "人民日报" not in norm.text_norm
    assert "mail@example.org" in norm.text_norm


def test_weibo_topics_and_hashtags_keep_their_words(make_post):
    norm = normalise(make_post("#香港國安法#今天生效 We stand with #Ukraine #Peace2024"))
    assert norm.hashtags == ("香港国安法", "ukraine", "peace2024")
    assert "#" not in norm.text_norm
    assert norm.text_norm.startswith("香港国安法 今天生效")
    assert "ukraine" in norm.text_norm


def test_full_width_weibo_topic_is_recognised(make_post):
    assert normalise(make_post("＃兩會＃政府工作報告")).hashtags == ("两会",)


def test_weibo_repost_chain_normalises_to_the_original(make_post):
    original = normalise(make_post("中美关系需要稳定发展，双方应加强对话。"))
    repost = normalise(make_post("转发微博//@外交小灵通: 轉發微博 //@人民日报:中美关系需要稳定发展，双方应加强对话。"))
    assert repost.text_norm == original.text_norm
    assert repost.content_hash == original.content_hash
    assert repost.mentions == ("外交小灵通", "人民日报")


def test_retweet_prefix_normalises_to_the_original(make_post):
    original = normalise(make_post("EU leaders agree on a new sanctions package."))
    retweet = normalise(make_post("RT @Reuters: EU leaders agree on a new sanctions package. https://t.co/x1"))
    nested = normalise(make_post("RT @a: RT @Reuters: EU leaders agree on a new sanctions package."))
    assert retweet.content_hash == nested.content_hash == original.content_hash
    assert retweet.mentions == ("Reuters",)


def test_content_hash_ignores_punctuation_spacing_and_links_but_not_words(make_post):
    base = normalise(make_post("Talks resume in Geneva today")).content_hash
    assert normalise(make_post("Talks resume in Geneva, today!  https://a.b/c")).content_hash == base
    assert normalise(make_post("Talks resume in Vienna today")).content_hash != base


def test_title_leads_the_text_once(make_post):
    assert normalise(make_post("正文内容", title="标题")).text_norm == "标题 正文内容"
    assert normalise(make_post("标题 正文内容", title="标题")).text_norm == "标题 正文内容"


def test_entities_are_found_after_simplification_and_keep_case_distinctions(make_post):
    norm = normalise(make_post("中華人民共和國與美國舉行會談. Tell us more about the US and NATO."))
    assert norm.countries == ("CN", "US")
    assert norm.organisations == ("NATO",)


def test_language_and_hint_flow_through(make_post):
    assert normalise(make_post("Министр иностранных дел России заявил о переговорах")).lang == "ru"
    assert normalise(make_post("ok", lang="en-US")).lang == "en"


def test_fields_fit_the_enriched_post_schema(make_post):
    fields = normalise(make_post("RT @a: #China and @b talk https://x.y/z")).enriched_fields()
    types = {field.name: field.type for field in msgspec.structs.fields(EnrichedPost)}
    for name, value in fields.items():
        assert msgspec.convert(value, types[name], strict=True) == value
    assert fields["hashtags"] == ["china"] and fields["mentions"] == ["a", "b"] and fields["countries"] == ["CN"]
