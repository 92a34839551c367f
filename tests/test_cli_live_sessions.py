"""`avatarbot heygen sessions` against the LiveAvatar and streaming fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes import heygen_streaming, liveavatar
from tests.fakes.heygen_streaming import FakeStreaming, StreamingSession
from tests.fakes.liveavatar import FakeLiveAvatar, FakeSession
from tests.fakes.server import ServerThread

VARS = [
    "HEYGEN_API_KEY",
    "HEYGEN_API_BASE",
    "LIVEAVATAR_API_KEY",
    "LIVEAVATAR_API_BASE",
    "HEYGEN_LIVE_API",
]


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env leaks into these runs


def run(**env: str) -> tuple[int, str, str]:
    base: dict[str, str | None] = dict.fromkeys(VARS)
    base.update(COLUMNS="200", **env)
    result = CliRunner().invoke(app, ["heygen", "sessions", "--json"], env=base)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def la_fake() -> FakeLiveAvatar:
    fake = FakeLiveAvatar()
    now = fake.clock()
    for sid, state in (("la-open", "started"), ("la-done", "stopped")):
        fake.sessions[sid] = FakeSession(sid, "tok-" + sid, {}, now, now, state=state)
    return fake


@pytest.fixture
def la_server(la_fake: FakeLiveAvatar) -> Iterator[ServerThread]:
    with ServerThread(la_fake.app) as running:
        yield running


def test_lists_open_liveavatar_sessions(la_server: ServerThread) -> None:
    code, out, err = run(
        LIVEAVATAR_API_KEY=liveavatar.API_KEY, LIVEAVATAR_API_BASE=la_server.base_url
    )
    assert code == 0, err
    assert [s["session_id"] for s in json.loads(out)] == ["la-open"]


def test_lists_open_streaming_sessions() -> None:
    fake = FakeStreaming()
    now = fake.clock()
    fake.sessions["hg-open"] = StreamingSession("hg-open", {}, now, now, 120.0, state="started")
    with ServerThread(fake.app) as server:
        code, out, err = run(
            HEYGEN_LIVE_API="streaming",
            HEYGEN_API_BASE=server.base_url,
            HEYGEN_API_KEY=heygen_streaming.API_KEY,
        )
    assert code == 0, err
    assert [(s["session_id"], s["status"]) for s in json.loads(out)] == [("hg-open", "connected")]


def test_a_bad_liveavatar_key_names_the_right_variable(la_server: ServerThread) -> None:
    wrong = "la-wrong-key-SECRET-000"
    code, out, err = run(LIVEAVATAR_API_KEY=wrong, LIVEAVATAR_API_BASE=la_server.base_url)
    assert code == 1
    assert "LiveAvatar rejected the API key" in err and "LIVEAVATAR_API_KEY" in err
    assert wrong not in out + err


def test_a_missing_key_is_one_clear_line() -> None:
    code, _, err = run()
    assert code == 2
    assert "LIVEAVATAR_API_KEY is not set" in err
    assert "Traceback" not in err


def test_an_unreachable_liveavatar_names_its_own_base_url() -> None:
    with ServerThread(FakeLiveAvatar().app) as server:
        closed_base = server.base_url  # the port is free again once the server stops
    code, _, err = run(LIVEAVATAR_API_KEY=liveavatar.API_KEY, LIVEAVATAR_API_BASE=closed_base)
    assert code == 1
    assert "LiveAvatar could not be reached" in err and "LIVEAVATAR_API_BASE" in err
    assert "HEYGEN_API_BASE" not in err
