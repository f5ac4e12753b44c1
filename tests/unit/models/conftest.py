"""Session fixtures for the model tests: the built model directory (built once if missing) and its tiers."""
from __future__ import annotations

import os

import pytest

from pipeline.modelbuild.build import build
from pipeline.models.enricher import DEFAULT_MODEL_DIR, MANIFEST, LearnedEnricher, TransformerEnricher


@pytest.fixture(scope="session")
def model_dir():
    """``make models`` output; building is cached, so this is instant after the first run."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not (DEFAULT_MODEL_DIR / MANIFEST).exists():
        build(DEFAULT_MODEL_DIR)
    return DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def learned(model_dir):
    return LearnedEnricher.load(model_dir)


@pytest.fixture(scope="session")
def transformer(model_dir):
    return TransformerEnricher.load(model_dir)
