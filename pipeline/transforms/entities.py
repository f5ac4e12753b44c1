"""Countries and organisations a post mentions, from the zh/en/ru gazetteer `models/gazetteer.yaml`.

One Aho-Corasick automaton over the lower-cased text finds every key in one pass; acronyms
that are also common words ("US", "WHO") are keys too but only count where the original text
has exactly their case. Leftmost-longest matching lets a longer key override the keys inside
it ("白俄罗斯", "latin america", "中美洲"). Chinese keys match as substrings, because Chinese has
no spaces; the others need word boundaries, and a key ending in ``*`` is a stem (Russian
inflection).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import ahocorasick
import yaml

DEFAULT_GAZETTEER = Path(__file__).resolve().parents[2] / "models" / "gazetteer.yaml"

_SECTIONS = ("countries", "organisations")
_LANGUAGE_LISTS = ("zh", "en", "ru")
_CASE_LIST = "case"
_STEM = "*"
# Code points from here on (CJK radicals onwards) are not part of a Latin/Cyrillic word.
_FIRST_CJK = 0x2E80


@dataclass(frozen=True)
class Mentions:
    countries: tuple[str, ...]
    organisations: tuple[str, ...]


@dataclass(frozen=True)
class Key:
    """A gazetteer name: its codes (none = ignore the phrase) and how it must match."""

    codes: tuple[str, ...]
    exact_case: bool = False


def _is_word_char(char: str) -> bool:
    return char.isalnum() and ord(char) < _FIRST_CJK


def _is_cjk(text: str) -> bool:
    return any(ord(char) >= _FIRST_CJK for char in text)


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


class Gazetteer:
    """Finds entity codes in (simplified-Chinese-normalised) text, in order of first mention."""

    def __init__(self, keys: Mapping[str, Key], kinds: Mapping[str, str]):
        """`keys`: name as written (``*`` = stem) -> Key; `kinds`: code -> countries|organisations."""
        self._kinds = dict(kinds)
        self._automaton = ahocorasick.Automaton()
        folded_names: dict[str, str] = {}
        for name, key in keys.items():
            literal = name.removesuffix(_STEM)
            folded = _fold(literal)
            clash = folded_names.setdefault(folded, name)
            if clash != name:
                raise ValueError(f"gazetteer keys {clash!r} and {name!r} are the same text")
            whole_word = not _is_cjk(literal)
            stem = name.endswith(_STEM)
            self._automaton.add_word(
                folded,
                (len(folded), key.codes, whole_word, whole_word and not stem, literal if key.exact_case else None),
            )
        self._automaton.make_automaton()

    @classmethod
    def from_yaml(cls, path: Path = DEFAULT_GAZETTEER) -> "Gazetteer":
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        kinds: dict[str, str] = {}
        keys: dict[str, Key] = {}
        for section in _SECTIONS:
            for code, names in spec[section].items():
                if code in kinds:
                    raise ValueError(f"gazetteer code {code} defined twice")
                kinds[code] = section
                for language in _LANGUAGE_LISTS:
                    _add(keys, names.get(language, ()), Key((code,)))
                _add(keys, names.get(_CASE_LIST, ()), Key((code,), exact_case=True))
        for name, codes in spec.get("combined", {}).items():
            unknown = set(codes) - kinds.keys()
            if unknown:
                raise ValueError(f"gazetteer key {name!r} names unknown codes {sorted(unknown)}")
            _add(keys, [name], Key(tuple(codes)))
        for language in _LANGUAGE_LISTS:
            _add(keys, spec.get("ignore", {}).get(language, ()), Key(()))
        return cls(keys, kinds)

    def find(self, text: str) -> Mentions:
        folded = _fold(text)
        if len(folded) != len(text):
            # A few letters lower-case to two characters (Turkish İ); keep those as they are so
            # that positions still line up with `text` for the case-sensitive acronyms.
            folded = "".join(low if len(low := char.lower()) == 1 else char for char in text).replace("ё", "е")
        seen: dict[str, None] = {}
        for end, (length, codes, left_boundary, right_boundary, exact) in self._automaton.iter_long(folded):
            start = end - length + 1
            if left_boundary and start > 0 and _is_word_char(folded[start - 1]):
                continue
            if right_boundary and end + 1 < len(folded) and _is_word_char(folded[end + 1]):
                continue
            if exact is not None and text[start : end + 1] != exact:
                continue
            seen.update(dict.fromkeys(codes))
        kinds = self._kinds
        return Mentions(
            countries=tuple(code for code in seen if kinds[code] == "countries"),
            organisations=tuple(code for code in seen if kinds[code] == "organisations"),
        )


def _add(keys: dict[str, Key], names: Iterable[str], key: Key) -> None:
    for name in names:
        if _STEM in name[:-1]:
            raise ValueError(f"gazetteer key {name!r}: '*' only at the end")
        if keys.get(name, key) != key:
            raise ValueError(f"gazetteer key {name!r} maps to both {keys[name].codes} and {key.codes}")
        keys[name] = key


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    return Gazetteer.from_yaml()
