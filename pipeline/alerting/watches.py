"""Watches: named subjects to monitor (keywords, countries, topics) and the alert rules for each.

Watches live as YAML files in `models/watches/` so analysts change what is monitored, and how
sensitive the alerts are, without touching code. Every file is validated on load; a bad file
raises `WatchConfigError` naming the file and the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import ahocorasick
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from pipeline.alerting import posts

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """Accept seconds or '90s' / '10m' / '1h' / '7d'."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if not found:
            raise ValueError(f"not a duration: {value!r} (use e.g. 300, '5m', '1h', '1d')")
        return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return value


Seconds = Annotated[int, BeforeValidator(parse_duration), Field(gt=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Keywords(_Strict):
    """Keywords per language. zh: substring match (text is simplified Chinese, so list simplified
    forms; traditional variants only help on un-normalised text). en/ru: whole-word,
    case-insensitive; a trailing `*` makes a prefix (`гонконг*` matches `гонконге`)."""

    zh: list[Annotated[str, Field(min_length=1)]] = []
    en: list[Annotated[str, Field(min_length=1)]] = []
    ru: list[Annotated[str, Field(min_length=1)]] = []

    def is_empty(self) -> bool:
        return not (self.zh or self.en or self.ru)


class Context(_Strict):
    """Secondary condition: at least one of these keywords or countries must also be present."""

    keywords: Keywords = Keywords()
    countries: list[str] = []


class MatchSpec(_Strict):
    """All given criteria must hold (AND); within one criterion any listed value suffices (OR)."""

    keywords: Keywords = Keywords()
    context: Context | None = None
    exclude: Keywords = Keywords()
    countries: list[str] = []
    topics: list[str] = []
    secondary_topics: list[str] = []
    langs: list[str] = []

    @model_validator(mode="after")
    def _has_a_positive_criterion(self) -> "MatchSpec":
        if self.keywords.is_empty() and not (self.countries or self.topics or self.secondary_topics):
            raise ValueError("match needs at least one of keywords, countries, topics, secondary_topics")
        return self


class StaticRule(_Strict):
    """Fixed thresholds an analyst can reason about; None disables the rule."""

    min_count: Annotated[int, Field(gt=0)] | None = None
    negative_share: Probability | None = None
    negative_min_count: Annotated[int, Field(gt=0)] = 10


class VolumeSurgeRule(_Strict):
    """Adaptive volume detector: post count per window against its own learned baseline."""

    enabled: bool = True
    method: Literal["ewma", "mad", "cusum"] = "ewma"
    alpha: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    history: Annotated[int, Field(ge=3)] = 168
    z_threshold: Annotated[float, Field(gt=0.0)] = 4.0
    cusum_drift: Annotated[float, Field(ge=0.0)] = 0.5
    cusum_threshold: Annotated[float, Field(gt=0.0)] = 5.0
    seasonal: bool = False
    warmup: Annotated[int, Field(ge=1)] = 24
    min_count: Annotated[int, Field(ge=0)] = 5

    @model_validator(mode="after")
    def _seasonal_needs_baseline(self) -> "VolumeSurgeRule":
        if self.seasonal and self.method == "cusum":
            raise ValueError("seasonal baselines are supported by the ewma and mad methods, not cusum")
        return self


class NegativeSurgeRule(_Strict):
    """Adaptive detector on the share of negative posts; ignores windows with few posts."""

    enabled: bool = True
    alpha: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    z_threshold: Annotated[float, Field(gt=0.0)] = 3.0
    warmup: Annotated[int, Field(ge=1)] = 24
    min_count: Annotated[int, Field(gt=0)] = 10
    min_share: Probability = 0.3


class SeverityRule(_Strict):
    """Severity from the combined score or from observed/baseline volume ratio, whichever is higher."""

    warning_score: Probability = 0.5
    critical_score: Probability = 0.9
    warning_ratio: Annotated[float, Field(gt=1.0)] = 2.0
    critical_ratio: Annotated[float, Field(gt=1.0)] = 5.0

    @model_validator(mode="after")
    def _ordered(self) -> "SeverityRule":
        if self.critical_score < self.warning_score or self.critical_ratio < self.warning_ratio:
            raise ValueError("critical thresholds must not be below warning thresholds")
        return self


class Rules(_Strict):
    window: Seconds = 3600
    allowed_lateness: Annotated[int, BeforeValidator(parse_duration), Field(ge=0)] = 600
    keys: list[Literal["all", "topic", "country"]] = ["all"]
    static: StaticRule = StaticRule()
    volume_surge: VolumeSurgeRule = VolumeSurgeRule()
    negative_surge: NegativeSurgeRule = NegativeSurgeRule()
    keep_score: Probability = 0.3
    resolve_after: Annotated[int, Field(ge=1)] = 3
    update_every: Annotated[int, Field(ge=1)] = 6
    cooldown: Annotated[int, BeforeValidator(parse_duration), Field(ge=0)] = 6 * 3600
    max_samples: Annotated[int, Field(ge=0, le=5)] = 5
    severity: SeverityRule = SeverityRule()


class WatchConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    title: str = ""
    description: str = ""
    match: MatchSpec
    rules: Rules = Rules()


class WatchConfigError(ValueError):
    """A watch file is unreadable or invalid; the message names the file and each bad field."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class KeywordMatcher:
    """One Aho-Corasick pass over the text for all keywords of all languages."""

    def __init__(self, keywords: Keywords):
        entries: dict[str, tuple[bool, bool]] = {}  # needle -> (whole_word, prefix)
        for word in keywords.zh:
            entries[word.lower()] = (False, False)
        for word in [*keywords.en, *keywords.ru]:
            prefix = word.endswith("*")
            needle = word.rstrip("*").strip().lower()
            if needle and entries.get(needle) != (False, False):
                entries[needle] = (True, prefix)
        self._automaton: ahocorasick.Automaton | None = None
        if entries:
            self._automaton = ahocorasick.Automaton()
            for needle, (whole_word, prefix) in entries.items():
                self._automaton.add_word(needle, (len(needle), whole_word, prefix))
            self._automaton.make_automaton()

    def search(self, text: str) -> bool:
        if self._automaton is None:
            return False
        for end, (length, whole_word, prefix) in self._automaton.iter(text):
            if not whole_word:
                return True
            start = end - length + 1
            if start > 0 and text[start - 1].isalnum():
                continue
            if not prefix and end + 1 < len(text) and text[end + 1].isalnum():
                continue
            return True
        return False


class Watch:
    """A validated watch with compiled matchers."""

    def __init__(self, config: WatchConfig):
        self.config = config
        self.name = config.name
        self.rules = config.rules
        spec = config.match
        self._keywords = KeywordMatcher(spec.keywords)
        self._exclude = KeywordMatcher(spec.exclude)
        self._context = KeywordMatcher(spec.context.keywords) if spec.context else None
        self._context_countries = frozenset(c.upper() for c in spec.context.countries) if spec.context else frozenset()
        self._countries = frozenset(c.upper() for c in spec.countries)
        self._topics = frozenset(spec.topics)
        self._secondary_topics = frozenset(spec.secondary_topics)
        self._langs = frozenset(spec.langs)
        self._has_keywords = not spec.keywords.is_empty()
        self._reads_text = self._has_keywords or not spec.exclude.is_empty() or self._context is not None
        """Whether matching searches the post's text (the costly part), not only its fields."""

    def matches(self, post: Any) -> bool:
        """Cheap field checks first; the text is read only by watches with keywords or context."""
        if self._langs and posts.field(post, "lang") not in self._langs:
            return False
        if self._topics and posts.field(post, "topic") not in self._topics:
            return False
        if self._secondary_topics and posts.field(post, "secondary_topic") not in self._secondary_topics:
            return False
        if not (self._countries or self._reads_text):
            return True
        countries = {str(c).upper() for c in posts.field(post, "countries", [])}
        if self._countries and not countries & self._countries:
            return False
        if not self._reads_text:
            return True
        text = posts.text(post)
        if self._has_keywords and not self._keywords.search(text):
            return False
        if self._context is not None and not (countries & self._context_countries or self._context.search(text)):
            return False
        return not self._exclude.search(text)

    def keys_for(self, post: Any) -> list[str]:
        """Window keys this post counts under: 'all', its topic, and/or each country it mentions."""
        keys: list[str] = []
        for kind in self.rules.keys:
            if kind == "all":
                keys.append("all")
            elif kind == "topic":
                keys.append(f"topic:{posts.field(post, 'topic', 'unknown')}")
            else:
                keys.extend(
                    f"country:{c}" for c in sorted({str(c).upper() for c in posts.field(post, "countries", [])})
                )
        return keys

    def __repr__(self) -> str:
        return f"Watch({self.name!r})"


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "<file>"
    return f"{location}: {error['msg']}"


def load_watch(path: str | Path) -> Watch:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WatchConfigError(path, [f"cannot read YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise WatchConfigError(path, ["<file>: expected a mapping at the top level"])
    try:
        return Watch(WatchConfig.model_validate(data))
    except ValidationError as exc:
        raise WatchConfigError(path, [_describe(e) for e in exc.errors()]) from exc


def load_watches(directory: str | Path) -> list[Watch]:
    """All `*.yaml`/`*.yml` watches of a directory, sorted by name; duplicate names are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise WatchConfigError(directory, ["not a directory"])
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    watches = [load_watch(path) for path in files]
    _reject_duplicates(watches, files)
    return sorted(watches, key=lambda watch: watch.name)


def _reject_duplicates(watches: Iterable[Watch], files: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for watch, path in zip(watches, files, strict=True):
        if watch.name in seen:
            raise WatchConfigError(path, [f"name: {watch.name!r} already defined in {seen[watch.name]}"])
        seen[watch.name] = path
