"""`avatarbot heygen …` against the HeyGen fake (HEYGEN_API_BASE pointed at it)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes.faults import Fault
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.server import ServerThread

AVATAR = "Angela-inblackskirt-20220820"
VOICE = "hg-voice-1"
HEYGEN_VARS = [
    "HEYGEN_API_KEY",
    "HEYGEN_API_BASE",
    "HEYGEN_AVATAR_ID",
    "HEYGEN_VOICE_ID",
    "HEYGEN_VIDEO_API",
    "HEYGEN_TIMEOUT_SECONDS",
]


@pytest.fixture
def fake() -> FakeHeyGen:
    return FakeHeyGen(polls_to_complete=2)


@pytest.fixture
def server(fake: FakeHeyGen) -> Iterator[ServerThread]:
    with ServerThread(fake.app) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env leaks into these runs


def run(*args: str, **env: str | None) -> tuple[int, str, str]:
    base: dict[str, str | None] = dict.fromkeys(HEYGEN_VARS)
    base.update(COLUMNS="200", **env)
    result = CliRunner().invoke(app, ["heygen", *args], env=base)
    return result.exit_code, result.stdout, result.stderr


def env_for(server: ServerThread, **extra: str) -> dict[str, str]:
    return {"HEYGEN_API_KEY": API_KEY, "HEYGEN_API_BASE": server.base_url, **extra}


def test_avatars_voices_templates_as_json(server) -> None:
    code, out, _ = run("avatars", "--json", **env_for(server))
    assert code == 0
    assert [a["avatar_id"] for a in json.loads(out)] == [AVATAR, "Wayne_20240711"]
    code, out, _ = run("voices", "--json", **env_for(server))
    assert code == 0 and {v["name"] for v in json.loads(out)} == {"Sara", "James"}
    code, out, _ = run("templates", "--json", **env_for(server))
    assert code == 0 and json.loads(out) == [{"template_id": "tpl_welcome", "name": "Welcome"}]


def test_tables_and_legacy_api(server) -> None:
    code, out, _ = run("avatars", **env_for(server))
    assert code == 0 and "Angela in Black Dress" in out and "Avatars (2)" in out
    code, out, _ = run("voices", "--api", "v2", **env_for(server))
    assert code == 0 and "James" in out


def test_render_prints_the_video_id(server, fake) -> None:
    code, out, err = run(
        "render", "Hello there", **env_for(server, HEYGEN_AVATAR_ID=AVATAR, HEYGEN_VOICE_ID=VOICE)
    )
    assert code == 0, err
    assert out.strip() in fake.videos
    [sent] = fake.faults.requests("create_video_v3")
    assert sent.json["avatar_id"] == AVATAR and sent.json["voice_id"] == VOICE


def test_render_wait_prints_the_url(server, fake) -> None:
    code, out, err = run(
        "render",
        "Hello there",
        "--avatar",
        "Wayne_20240711",
        "--wait",
        "--poll-interval",
        "0",
        **env_for(server),
    )
    assert code == 0, err
    [video_id] = fake.videos
    assert out.strip().splitlines()[-1] == fake.video_url(video_id)
    assert len(fake.faults.requests("get_video_v3")) == 3


def test_render_wait_json_with_v2(server, fake) -> None:
    code, out, err = run(
        "render",
        "Hi",
        "--avatar",
        AVATAR,
        "--voice",
        VOICE,
        "--api",
        "v2",
        "--wait",
        "--json",
        "--poll-interval",
        "0",
        **env_for(server),
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "completed" and ".mp4" in job["video_url"]
    assert len(fake.faults.requests("generate_video_v2")) == 1


def test_failed_render_exits_nonzero_with_the_reason(server) -> None:
    failing = FakeHeyGen(fail_renders=True, polls_to_complete=1)
    with ServerThread(failing.app) as srv:
        code, _, err = run(
            "render", "Hi", "--avatar", AVATAR, "--wait", "--poll-interval", "0", **env_for(srv)
        )
    assert code == 1 and "failed: Avatar rendering timed out (rendering_failed)" in err


def test_missing_key_names_the_variable(server) -> None:
    code, out, err = run("avatars", HEYGEN_API_BASE=server.base_url)
    assert code == 2
    assert "HEYGEN_API_KEY is not set" in err and "Traceback" not in err + out


def test_bad_key_is_one_clear_line_without_the_key(server) -> None:
    bad = "sk-not-the-right-key-424242"
    code, out, err = run("voices", HEYGEN_API_KEY=bad, HEYGEN_API_BASE=server.base_url)
    assert code == 1
    assert "HeyGen rejected the API key (HTTP 401)" in err and "HEYGEN_API_KEY" in err
    assert bad not in err + out and len(err.strip().splitlines()) == 1


def test_unknown_avatar_is_explained(server) -> None:
    code, _, err = run("render", "Hi", "--avatar", "nobody", **env_for(server))
    assert code == 1
    assert "Avatar nobody not found" in err and "avatarbot heygen avatars" in err
    assert "Traceback" not in err


def test_no_avatar_configured(server) -> None:
    code, _, err = run("render", "Hi", **env_for(server))
    assert code == 2 and "HEYGEN_AVATAR_ID" in err


def test_outage_after_retries_is_one_line(server, fake) -> None:
    outage = Fault(status=503, message="Service Unavailable", headers={"Retry-After": "0"})
    server.call(lambda: fake.faults.add("list_looks_v3", outage, times=4))
    code, out, err = run("avatars", **env_for(server))
    assert code == 1
    assert "HeyGen is unavailable right now" in err and "503" in err
    assert len(fake.faults.requests("list_looks_v3")) == 4  # 1 + 3 retries
    assert "Traceback" not in err + out and API_KEY not in err + out


def test_connection_refused_is_one_line() -> None:
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(
        "templates", HEYGEN_API_KEY=API_KEY, HEYGEN_API_BASE=f"http://127.0.0.1:{port}"
    )
    assert code == 1
    assert "HeyGen could not be reached" in err and "cannot connect to http://127.0.0.1" in err
    assert "HEYGEN_API_BASE" in err
    assert "Traceback" not in err + out
