"""Shared-data location for the heads' tests; they skip cleanly when it is absent (a user's clone)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (DATA / "README.md").is_file():
        pytest.skip("../shared/data is not present")
    return DATA
