"""Cheap, dependency-free term extraction for the "top terms" of an alert window.

An analyst reading an alert wants to see *what* people talk about in the surge. A full
segmenter is not needed for that: CJK character bigrams plus latin/cyrillic words, with
function words removed, name the subject well enough and are fully deterministic.
"""

from __future__ import annotations

import re
from collections import Counter

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")

# Characters that make a CJK bigram a function-word fragment rather than a content term.
_CJK_STOP_CHARS = frozenset("的了是在和与及或也就都而着吗呢吧啊呀哦之其这那个们我你他她它有没不很被把对为于从到让给")

_EN_STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be been before being but by can could
    did do does doing for from had has have having he her here hers him his how i if in into is it
    its just me more most my no nor not now of off on once only or other our out over own rt same
    she should so some such than that the their them then there these they this those through to
    too under until up very via was we were what when where which while who whom why will with
    would you your http https www com amp""".split()
)
_RU_STOPWORDS = frozenset(
    """а без более бы был была были было быть в вам вас весь во вот все всё всех вы где да даже
    для до его ее её если есть еще ещё же за здесь и из или им их к как ко когда кто ли либо мне
    может мы на над надо наш не него нее неё нет ни них но ну о об однако он она они оно от очень
    по под при с со так также такой там те тем то того тоже той только том ты у уже хотя чего чей
    чем что чтобы чье чья эта эти это я""".split()
)
_STOPWORDS = _EN_STOPWORDS | _RU_STOPWORDS


def terms(text: str) -> list[str]:
    """Content terms of one text: CJK bigrams (single chars for 1-char runs) + words of length ≥ 2."""
    found: list[str] = []
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            if run not in _CJK_STOP_CHARS:
                found.append(run)
            continue
        for i in range(len(run) - 1):
            bigram = run[i : i + 2]
            if bigram[0] not in _CJK_STOP_CHARS and bigram[1] not in _CJK_STOP_CHARS:
                found.append(bigram)
    for word in _WORD.findall(_CJK_RUN.sub(" ", text).lower()):
        if len(word) >= 2 and word not in _STOPWORDS:
            found.append(word)
    return found


def top_terms(counts: Counter[str], limit: int = 10) -> list[tuple[str, int]]:
    """Most frequent terms, ties broken alphabetically so replays give identical lists."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
