"""Shared fixtures: small and generic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.sleeps import Sleeps

# `store`, `any_store`, `postgres`, `store_clock`: see tests/store_fixtures.py
pytest_plugins = ["tests.store_fixtures"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir shared by tests that load the real onnx-minilm model (assembled once)."""
    return tmp_path_factory.mktemp("models-data")


@pytest.fixture
def sleeps() -> Sleeps:
    """Records the backoff delays a client asks for instead of waiting them out."""
    return Sleeps()
