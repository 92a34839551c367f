"""`avatarbot serve` as an operator runs it: a real process, env settings, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes.server import serve
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.slack_harness import envelope, sign

AVATARBOT = str(Path(sys.executable).with_name("avatarbot"))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "nope"}, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s", "PORT": "99999"}, "PORT"),
    ],
)
def test_missing_or_invalid_settings_stop_the_start_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "PORT"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 2
    assert named in result.output
    assert BOT_TOKEN not in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_answers_over_http_logs_json_without_secrets_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    slack = FakeSlack()
    slack.add_user("U1", "Ada")
    async with serve(slack.app()) as base_url:
        slack.base_url = base_url
        port = free_port()
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{base_url}/api/",
            "PORT": str(port),
            "AVATARBOT_DATA_DIR": str(tmp_path / "data"),
            "EMBEDDINGS": "none",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",  # the most talkative setting still prints no secret
        }
        proc = await asyncio.create_subprocess_exec(
            AVATARBOT,
            "serve",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None and proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(60):
            while "serving on port" not in (line := (await proc.stderr.readline()).decode()):
                assert line, "serve exited before it was ready"
                lines.append(line)
            lines.append(line)
        # The start-up line says which features are on, and why each other one is off.
        started = json.loads(line)["message"]
        assert "HTTP mode, Slack posts to /slack/events" in started
        assert "On: answers from the knowledge base" in started
        assert "Off: language model: LLM_MODEL unset, answers are extractive" in started
        assert "live avatar and answer videos: set HEYGEN_API_KEY" in started
        event = {
            "type": "app_mention",
            "user": "U1",
            "channel": "C1",
            "ts": "70.0",
            "text": "<@UBOT> how do I add documents?",
            "team": "T0TEAM",
        }
        body = json.dumps(envelope(event))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            headers = {"Content-Type": "application/json", **sign(body)}
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
            ) as resp:
                assert resp.status == 200
        [answer] = await slack.wait_for(lambda: slack.posted("C1"), within=30)
        assert answer["thread_ts"] == "70.0"  # empty knowledge base: an honest "not found"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, rest = await proc.communicate()
        assert proc.returncode == 0
        lines += rest.decode().splitlines()
        logged = "\n".join(lines)
        assert BOT_TOKEN not in logged and SIGNING_SECRET not in logged
        records = [json.loads(x) for x in logged.splitlines() if x.startswith("{")]
        assert records and {"time", "level", "logger", "message"} <= set(records[0])
        assert any("stopping" in r["message"] for r in records)


def test_the_start_up_line_names_each_avatar_feature_on_or_why_off() -> None:
    from types import SimpleNamespace

    from bot.config import load_settings
    from bot.serve import features

    s = load_settings(llm_model="openai:gpt-4o-mini", _env_file=None)
    live_off = SimpleNamespace(live_reason="PUBLIC_BASE_URL is not set", video_reason=None)
    on, off = features(s, live_off)
    assert "language model openai:gpt-4o-mini" in on and "answer videos" in on
    assert off == ["live avatar: PUBLIC_BASE_URL is not set"]
