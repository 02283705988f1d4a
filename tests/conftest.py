"""Shared fixtures. Heavy models load once per test session (the `analyzer` fixture)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def analyzer():
    from emollama.api import Analyzer

    return Analyzer()


@pytest.fixture(scope="session")
def perceiver(analyzer):
    """The perception stage of the shared analyzer (same loaded models)."""
    return analyzer.perceiver


@pytest.fixture(scope="session")
def example_result(analyzer):
    from tests.clips import EXAMPLE

    return analyzer.analyze(EXAMPLE)


@pytest.fixture(scope="session")
def shared_clips() -> Path:
    clips = SHARED_DATA / "clips"
    if not clips.is_dir():
        pytest.skip("../shared/data/clips is not present (a user's clone has no research data)")
    return clips
