"""The route table: a post's kind from its source, its heads from kind and language."""
import pytest

from pipeline.models.enricher import DEFAULT_ROUTES
from pipeline.models.routes import RouteError, load_routes, parse_routes

VALID = {"kinds": {"news": ["rss"], "social": ["weibo"]}, "default_kind": "social",
         "sentiment": {"social": {"zh": ["a"], "*": ["a", "b"]}, "news": {"*": ["b"]}}}


def test_shipped_table_routes_articles_to_news_and_everything_else_to_social():
    routes = load_routes(DEFAULT_ROUTES)
    assert [routes.kind(s) for s in ("rss", "wechat", "weibo", "x", "http", "wechat_comment", "forum")] == [
        "news", "news", "social", "social", "social", "social", "social"]
    assert routes.route("social", "zh") == ("zh_social",) and routes.route("news", "zh") == ("zh_news",)
    assert routes.route("social", "ru") == ("zh_social", "en_social")


def test_unknown_language_takes_the_star_route():
    routes = parse_routes(VALID)
    assert routes.route("social", "zh") == ("a",) and routes.route("social", "fr") == ("a", "b")
    assert routes.route(routes.kind("unlisted"), "zh") == ("a",)


@pytest.mark.parametrize("doc, message", [
    ({**VALID, "sentiment": {"social": {"zh": ["a"]}, "news": {"*": ["b"]}}}, "'\\*' entry"),
    ({**VALID, "kinds": {"news": ["rss"], "social": ["rss"]}}, "two kinds"),
    ({**VALID, "default_kind": "forum"}, "sentiment.forum"),
    ({**VALID, "sentiment": {"social": {"*": []}, "news": {"*": ["b"]}}}, "non-empty list"),
    ([], "expected a mapping"),
])
def test_malformed_tables_say_what_is_wrong(doc, message):
    with pytest.raises(RouteError, match=message):
        parse_routes(doc)


def test_heads_the_build_did_not_make_are_refused():
    with pytest.raises(RouteError, match=r"\['b'\]"):
        parse_routes(VALID).check_heads({"a"}, "test")
