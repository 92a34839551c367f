"""`avatarbot heygen render` never renders twice for a re-run; `heygen webhook register`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.server import ServerThread

AVATAR = "Angela-inblackskirt-20220820"
VARS = [
    "HEYGEN_API_KEY",
    "HEYGEN_API_BASE",
    "HEYGEN_AVATAR_ID",
    "HEYGEN_VOICE_ID",
    "HEYGEN_VIDEO_API",
    "HEYGEN_WEBHOOK_SECRET",
]


@pytest.fixture
def fake() -> FakeHeyGen:
    return FakeHeyGen()


@pytest.fixture
def server(fake: FakeHeyGen) -> Iterator[ServerThread]:
    with ServerThread(fake.app) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(server: ServerThread, *args: str) -> tuple[int, str, str]:
    env: dict[str, str | None] = dict.fromkeys(VARS)
    env.update(COLUMNS="200", HEYGEN_API_KEY=API_KEY, HEYGEN_API_BASE=server.base_url)
    result = CliRunner().invoke(app, ["heygen", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_rerunning_the_same_render_returns_the_same_video(server, fake) -> None:
    first = run(server, "render", "Hello there", "--avatar", AVATAR)
    again = run(server, "render", "Hello there", "--avatar", AVATAR)
    other = run(server, "render", "Something else", "--avatar", AVATAR)
    assert first[0] == again[0] == other[0] == 0
    assert first[1] == again[1] != other[1]
    assert len(fake.videos) == 2  # the re-run did not start a second render


def test_an_explicit_key_names_the_render(server, fake) -> None:
    a = run(server, "render", "Hello", "--avatar", AVATAR, "--idempotency-key", "job-1")
    b = run(server, "render", "Hello", "--avatar", AVATAR, "--idempotency-key", "job-2")
    assert a[1] != b[1] and len(fake.videos) == 2
    keys = [r.headers["Idempotency-Key"] for r in fake.faults.requests("create_video_v3")]
    assert keys == ["job-1", "job-2"]


def test_webhook_register_prints_where_the_secret_goes(server, fake) -> None:
    fake.validate_endpoints = False  # bot.example.com is not served here
    code, out, err = run(server, "webhook", "register", "https://bot.example.com/heygen/webhook")
    assert code == 0, err
    [endpoint] = fake.endpoints.values()
    assert endpoint.url == "https://bot.example.com/heygen/webhook"
    assert set(endpoint.events or []) == {"avatar_video.success", "avatar_video.fail"}
    assert f"HEYGEN_WEBHOOK_SECRET={endpoint.secret}" in out
    # a retried registration of the same URL does not create a second endpoint
    assert run(server, "webhook", "register", "https://bot.example.com/heygen/webhook")[0] == 0
    assert len(fake.endpoints) == 1


def test_registering_again_later_reuses_the_endpoint_and_its_secret(server, fake) -> None:
    fake.validate_endpoints = False  # bot.example.com is not served here
    url = "https://bot.example.com/heygen/webhook"
    assert run(server, "webhook", "register", url)[0] == 0
    [endpoint] = fake.endpoints.values()
    first_secret = endpoint.secret
    fake._replays.clear()  # a day later: HeyGen no longer remembers the Idempotency-Key
    code, out, err = run(server, "webhook", "register", url + "/")
    assert code == 0, err
    assert list(fake.endpoints.values()) == [endpoint] and endpoint.secret == first_secret
    assert "already registered" in out and "HEYGEN_WEBHOOK_SECRET=" not in out
    code, out, _ = run(server, "webhook", "register", url, "--rotate-secret", "--json")
    assert code == 0 and len(fake.endpoints) == 1
    shown = json.loads(out)
    assert shown["reused"] and shown["secret"] == endpoint.secret != first_secret


def test_webhook_register_refuses_a_relative_url(server, fake) -> None:
    code, _, err = run(server, "webhook", "register", "/heygen/webhook")
    assert code == 2 and "absolute" in err and not fake.endpoints
