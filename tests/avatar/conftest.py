"""Fixtures for the avatar delivery tests: a SQLite store and the avatar service share one
FakeClock, so leases, idle timeouts and render deadlines pass without sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.avatar_state import sql_state, state_clock
from tests.fakes.clock import FakeClock


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return state_clock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator:
    async with sql_state(tmp_path / "state.db", clock) as s:
        yield s
