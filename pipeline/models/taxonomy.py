"""Load and validate a topic taxonomy YAML (see models/taxonomy.yaml for the format).

A taxonomy is data, not code: users replace the file to change the labels. Leaves are the
secondary topics (or a first-level topic that has none); each leaf knows its first-level parent,
its descriptions (zero-shot prototypes) and keywords (lexical fallback) per language.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


class TaxonomyError(ValueError):
    """The taxonomy file is missing, malformed or inconsistent; the message says where."""


@dataclass(frozen=True)
class Leaf:
    id: str
    parent: str
    names: dict[str, str]
    descriptions: dict[str, str]
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Taxonomy:
    topics: tuple[str, ...]
    leaves: tuple[Leaf, ...]
    fallback_topic: str  # reported when there is no evidence at all (lexical path)

    @property
    def leaf_ids(self) -> list[str]:
        return [leaf.id for leaf in self.leaves]

    def leaf(self, leaf_id: str) -> Leaf:
        for leaf in self.leaves:
            if leaf.id == leaf_id:
                return leaf
        raise KeyError(leaf_id)


def _lang_map(value, where: str, *, of_lists: bool = False) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TaxonomyError(f"{where}: expected a mapping of language code -> text, got {type(value).__name__}")
    out = {}
    for lang, item in value.items():
        if of_lists:
            if not isinstance(item, list) or not all(isinstance(k, str) and k.strip() for k in item):
                raise TaxonomyError(f"{where}.{lang}: expected a list of non-empty strings")
            out[str(lang)] = tuple(k.strip().lower() for k in item)
        else:
            if not isinstance(item, str) or not item.strip():
                raise TaxonomyError(f"{where}.{lang}: expected a non-empty string")
            out[str(lang)] = item.strip()
    return out


def _leaf(node: dict, parent: str, where: str) -> Leaf:
    descriptions = _lang_map(node.get("descriptions"), f"{where}.descriptions")
    if not descriptions:
        raise TaxonomyError(f"{where} ({node['id']}): a leaf topic needs at least one description")
    return Leaf(id=node["id"], parent=parent, names=_lang_map(node.get("names"), f"{where}.names"),
                descriptions=descriptions,
                keywords=_lang_map(node.get("keywords"), f"{where}.keywords", of_lists=True))


def _check_id(node, where: str, seen: set[str]) -> None:
    if not isinstance(node, dict):
        raise TaxonomyError(f"{where}: expected a mapping, got {type(node).__name__}")
    node_id = node.get("id")
    if not isinstance(node_id, str) or not node_id.strip():
        raise TaxonomyError(f"{where}: missing 'id'")
    if node_id in seen:
        raise TaxonomyError(f"{where}: duplicate id {node_id!r}")
    seen.add(node_id)


def parse_taxonomy(doc, source: str = "<taxonomy>") -> Taxonomy:
    if not isinstance(doc, dict) or not isinstance(doc.get("topics"), list) or not doc["topics"]:
        raise TaxonomyError(f"{source}: expected a mapping with a non-empty 'topics' list")
    seen: set[str] = set()
    topics, leaves = [], []
    for i, topic in enumerate(doc["topics"]):
        where = f"{source}: topics[{i}]"
        _check_id(topic, where, seen)
        topics.append(topic["id"])
        children = topic.get("secondary")
        if children is None:
            leaves.append(_leaf(topic, topic["id"], where))
            continue
        if not isinstance(children, list) or not children:
            raise TaxonomyError(f"{where}.secondary: expected a non-empty list")
        for j, child in enumerate(children):
            child_where = f"{where}.secondary[{j}]"
            _check_id(child, child_where, seen)
            leaves.append(_leaf(child, topic["id"], child_where))
    if len(leaves) < 2:
        raise TaxonomyError(f"{source}: need at least two leaf topics to classify")
    fallback = doc.get("fallback_topic", topics[-1])
    if fallback not in topics:
        raise TaxonomyError(f"{source}: fallback_topic {fallback!r} is not a first-level topic")
    return Taxonomy(tuple(topics), tuple(leaves), fallback)


def read_config(path: Path, error: type[ValueError], what: str):
    """The YAML document of a model config file; a missing or malformed file raises `error` saying which."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from None


def load_taxonomy(path: Path) -> Taxonomy:
    return parse_taxonomy(read_config(path, TaxonomyError, "taxonomy"), str(path))
