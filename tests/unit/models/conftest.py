"""Session fixtures for the model tests: the built model directory (built once if missing)."""
from __future__ import annotations

import os

import pytest

from pipeline.models.build import build
from pipeline.models.enricher import DEFAULT_MODEL_DIR, DEFAULT_TAXONOMY, MANIFEST, Enricher


@pytest.fixture(scope="session")
def model_dir():
    """``make models`` output; building is cached, so this is instant after the first run."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not (DEFAULT_MODEL_DIR / MANIFEST).exists():
        build(DEFAULT_MODEL_DIR)
    return DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def enricher(model_dir):
    return Enricher.load(model_dir, DEFAULT_TAXONOMY, cache_size=1000)
