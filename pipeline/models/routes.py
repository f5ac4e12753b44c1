"""The route table (`models/routes.yaml`): which sentiment heads score a post, by its kind and language.

A post's kind comes from its source (`news` for feeds of articles, `social` for posts and
comments, the default kind for sources the table does not list); within a kind, its language
picks the heads, and `*` covers every other language (their probabilities are averaged).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.models.taxonomy import read_config

ANY_LANG = "*"


class RouteError(ValueError):
    """The route file is malformed or names a head that was not built; the message says where."""


@dataclass(frozen=True)
class Routes:
    kind_of_source: dict[str, str]
    default_kind: str
    heads: dict[str, dict[str, tuple[str, ...]]]  # kind -> language -> head names

    def kind(self, source: str) -> str:
        return self.kind_of_source.get(source, self.default_kind)

    def route(self, kind: str, lang: str) -> tuple[str, ...]:
        by_lang = self.heads[kind]
        return by_lang.get(lang, by_lang[ANY_LANG])

    @property
    def head_names(self) -> set[str]:
        return {name for by_lang in self.heads.values() for names in by_lang.values() for name in names}

    def check_heads(self, available: set[str], where: str) -> None:
        missing = sorted(self.head_names - available)
        if missing:
            raise RouteError(f"{where}: routes name heads that were not built: {missing} (built: {sorted(available)})")


def parse_routes(doc, source: str = "<routes>") -> Routes:
    if not isinstance(doc, dict):
        raise RouteError(f"{source}: expected a mapping with kinds, default_kind and sentiment")
    kinds, sentiment, default = doc.get("kinds"), doc.get("sentiment"), doc.get("default_kind")
    if not isinstance(kinds, dict) or not isinstance(sentiment, dict):
        raise RouteError(f"{source}: 'kinds' (kind -> sources) and 'sentiment' (kind -> language -> heads) are required")
    kind_of_source: dict[str, str] = {}
    for kind, sources in kinds.items():
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise RouteError(f"{source}: kinds.{kind}: expected a list of source names")
        for name in sources:
            if name in kind_of_source:
                raise RouteError(f"{source}: source {name!r} is in two kinds")
            kind_of_source[name] = str(kind)
    heads: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind in set(kinds) | {default}:
        by_lang = sentiment.get(kind)
        if not isinstance(by_lang, dict) or ANY_LANG not in by_lang:
            raise RouteError(f"{source}: sentiment.{kind}: expected language -> heads with a '{ANY_LANG}' entry")
        heads[str(kind)] = {}
        for lang, names in by_lang.items():
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise RouteError(f"{source}: sentiment.{kind}.{lang}: expected a non-empty list of head names")
            heads[str(kind)][str(lang)] = tuple(names)
    return Routes(kind_of_source, str(default), heads)


def load_routes(path: Path) -> Routes:
    return parse_routes(read_config(path, RouteError, "route"), str(path))
