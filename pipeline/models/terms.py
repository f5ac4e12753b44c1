"""Lexicon term matching shared by the lexical model and the taxonomy classifier's keyword evidence."""
from __future__ import annotations

import re
from typing import Sequence

import ahocorasick
import numpy as np

from pipeline.models.taxonomy import Taxonomy

CJK = re.compile(r"[\u3400-\u9fff]")
WORD = re.compile(r"[^\W\d_\u3400-\u9fff]+(?:'[^\W\d_\u3400-\u9fff]+)?")
_HEAD = 2


class TermMatcher:
    """Finds lexicon terms fast: CJK terms as substrings, alphabetic terms (and phrases) as
    word-start prefixes, so a stem like "санкци" or "congratulat" covers every inflection.
    CJK terms are found in one Aho-Corasick pass over the text (a `str.find` per term cost
    a fifth of the lexical model's time); alphabetic terms are bucketed by their first
    letters: a few dict lookups per word."""

    def __init__(self, terms: Sequence[tuple[str, int]]) -> None:
        self._cjk: ahocorasick.Automaton | None = None
        cjk: dict[str, list[int]] = {}
        self._by_head: dict[str, list[tuple[str, int, int]]] = {}
        for term, owner in terms:
            if CJK.match(term):
                cjk.setdefault(term, []).append(owner)
            else:
                self._by_head.setdefault(term[:_HEAD], []).append((term, owner, term.count(" ") + 1))
        if cjk:
            self._cjk = ahocorasick.Automaton()
            for term, owners in cjk.items():
                self._cjk.add_word(term, (term, len(term), owners))
            self._cjk.make_automaton()

    def find(self, lowered: str, words: Sequence[str]) -> list[tuple[int, str]]:
        """(owner, text just before the hit) for every hit; the prefix lets callers spot negation.

        A CJK term counts its non-overlapping occurrences, left to right."""
        hits = []
        if self._cjk is not None:
            free_from: dict[str, int] = {}  # term -> first position a next occurrence may start at
            for end, (term, length, owners) in self._cjk.iter(lowered):
                at = end - length + 1
                if at < free_from.get(term, 0):
                    continue
                free_from[term] = end + 1
                hits.extend((owner, lowered[max(0, at - 2):at]) for owner in owners)
        for i, word in enumerate(words):
            for term, owner, n_words in self._by_head.get(word[:_HEAD], ()):
                phrase = word if n_words == 1 else " ".join(words[i:i + n_words])
                if phrase.startswith(term):
                    hits.append((owner, words[i - 1] if i else ""))
        return hits


class KeywordScorer:
    """Hits of each taxonomy leaf's hand-written keywords in a text (all languages at once)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.n_leaves = len(taxonomy.leaves)
        self._matcher = TermMatcher([(k, i) for i, leaf in enumerate(taxonomy.leaves)
                                     for kws in leaf.keywords.values() for k in kws])

    def hits(self, text: str) -> np.ndarray:
        lowered = text.lower()
        counts = np.zeros(self.n_leaves)
        for owner, _ in self._matcher.find(lowered, WORD.findall(lowered)):
            counts[owner] += 1
        return counts

    def hits_matrix(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.hits(t) for t in texts]).reshape(len(texts), self.n_leaves)
