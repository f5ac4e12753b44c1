from pathlib import Path

import pytest

from pipeline.models.enricher import DEFAULT_TAXONOMY
from pipeline.models.taxonomy import TaxonomyError, load_taxonomy


def test_shipped_taxonomy_has_table1_structure():
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    assert taxonomy.topics == ("political_affairs", "cultural_exchanges", "economic_trade_cooperation", "other")
    children = {t: [leaf.id for leaf in taxonomy.leaves if leaf.parent == t] for t in taxonomy.topics}
    assert len(children["political_affairs"]) == 4
    assert {"religion", "sports_world_cup", "tourism"} <= set(children["cultural_exchanges"])
    assert children["economic_trade_cooperation"] == ["economic_cooperation", "energy_cooperation"]
    assert all(set(leaf.descriptions) == {"zh", "en", "ru"} for leaf in taxonomy.leaves)
    assert taxonomy.fallback_topic == "other"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, message", [
    ("topics: [unclosed", "invalid YAML"),
    ("just a string", "non-empty 'topics' list"),
    ("topics:\n  - names: {en: x}\n", "missing 'id'"),
    ("topics:\n  - id: a\n    descriptions: {en: A}\n  - id: a\n    descriptions: {en: B}\n", "duplicate id 'a'"),
    ("topics:\n  - id: a\n    descriptions: {en: A}\n  - id: b\n", "needs at least one description"),
    ("topics:\n  - id: a\n    descriptions: {en: A}\n  - id: b\n    descriptions: {en: ''}\n", "non-empty string"),
    ("topics:\n  - id: a\n    descriptions: {en: A}\n    keywords: {en: x}\n  - id: b\n    descriptions: {en: B}\n",
     "list of non-empty strings"),
    ("fallback_topic: z\ntopics:\n  - id: a\n    descriptions: {en: A}\n  - id: b\n    descriptions: {en: B}\n",
     "fallback_topic 'z'"),
])
def test_bad_taxonomy_gives_clear_error(tmp_path, text, message):
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(_write(tmp_path, text))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_flat_taxonomy_leaves_are_their_own_topics(tmp_path):
    taxonomy = load_taxonomy(_write(tmp_path, "topics:\n  - id: a\n    descriptions: {en: A}\n"
                                              "  - id: b\n    descriptions: {zh: 乙}\n"))
    assert taxonomy.topics == ("a", "b")
    assert [leaf.parent for leaf in taxonomy.leaves] == ["a", "b"]
    assert taxonomy.fallback_topic == "b"
