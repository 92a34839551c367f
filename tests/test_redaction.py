"""Secrets fed through every path that turns a response into text never come out again.

A hostile loopback server answers each call with a body that carries secrets in a different
shape (JSON, Python repr, `key=value`, free text, cut at the body limit); the real clients
raise, and the message, repr, body, the log and the CLI's output are searched for them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.heygen.errors import HeyGenError
from bot.heygen.http import ApiClient
from bot.heygen.liveavatar import AvatarPersona, LiveAvatarClient, SessionTokenRequest
from bot.heygen.streaming_v1 import NewSessionRequest, StreamingClient
from bot.heygen.videos_v2 import VideosV2
from bot.heygen.videos_v3 import VideosV3
from bot.heygen.webhooks import Webhooks
from bot.redaction import REDACTED, RedactingFilter, redact, redacted_json
from tests.fakes.server import ServerThread, serve
from tests.fakes.sleeps import Sleeps

API_KEY = "sk-live-redaction-KEY-000111222"
# Values the client was never told about: minted by the server and echoed back.
MINTED_SECRET = "whsec_minted_by_the_server_4242"
MINTED_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzZXNzaW9uIjoiczEifQ.c2lnbmF0dXJlLXNpZw"
SECRETS = (API_KEY, MINTED_SECRET, MINTED_TOKEN)


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
            assert secret[:12] not in text  # not even a prefix left by a cut


@dataclass
class Reply:
    status: int
    text: str
    content_type: str = "application/json"


class HostileServer:
    """Answers every request, whatever its path, with the reply the test queued."""

    def __init__(self) -> None:
        self.reply = Reply(200, "{}")

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            return web.Response(
                status=self.reply.status, text=self.reply.text, content_type=self.reply.content_type
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[HostileServer, ApiClient]]:
    server = HostileServer()
    async with serve(server.app()) as base, aiohttp.ClientSession() as session:
        yield (
            server,
            ApiClient(
                session,
                base,
                headers={"X-Api-Key": API_KEY},
                max_retries=0,
                secrets=[API_KEY],
                sleep=Sleeps(),
            ),
        )


def _body(payload: object) -> str:
    return json.dumps(payload)


Call = Callable[[ApiClient], Awaitable[object]]
TOKEN_REQUEST = SessionTokenRequest(avatar_id="a1", avatar_persona=AvatarPersona(voice_id="v1"))

PATHS: list[tuple[str, Reply, Call]] = [
    (  # the find: an unexpected shape put the webhook secret into HeyGenError.body
        "v3-shape-mismatch-python-repr",
        Reply(200, _body({"data": {"endpoint_id": 7, "secret": MINTED_SECRET}})),
        lambda api: Webhooks(api).create_endpoint("https://bot.example/hook"),
    ),
    (
        "v3-no-data",
        Reply(200, _body({"secret": MINTED_SECRET, "token": MINTED_TOKEN})),
        lambda api: VideosV3(api).get_video("v1"),
    ),
    (
        "v3-error-in-200-echoes-key",
        Reply(
            200,
            _body(
                {
                    "data": None,
                    "error": {
                        "code": "key_disabled",
                        "message": f"key {API_KEY} is disabled ({MINTED_SECRET})",
                    },
                }
            ),
        ),
        lambda api: VideosV3(api).get_video("v1"),
    ),
    (
        "v1-envelope-key-value",
        Reply(
            200,
            _body(
                {
                    "code": 40001,
                    "message": f"bad session_token={MINTED_TOKEN}",
                    "data": {"api_key": API_KEY},
                }
            ),
        ),
        lambda api: VideosV2(api).video_status("v1"),
    ),
    (
        "http-401-json",
        Reply(
            401,
            _body(
                {"message": f"Unauthorized key {API_KEY}", "data": {"session_token": MINTED_TOKEN}}
            ),
        ),
        lambda api: VideosV3(api).get_video("v1"),
    ),
    (
        "http-500-secret-cut-by-the-body-limit",
        Reply(500, "x" * 1990 + API_KEY + " and " + MINTED_TOKEN, "text/plain"),
        lambda api: VideosV3(api).get_video("v1"),
    ),
    (
        "http-502-python-repr",
        Reply(
            502, repr({"livekit_client_token": MINTED_TOKEN, "secret": MINTED_SECRET}), "text/plain"
        ),
        lambda api: VideosV3(api).get_video("v1"),
    ),
    (
        "liveavatar-code-in-200",
        Reply(200, _body({"code": 4001, "message": f"Authorization: Bearer {MINTED_TOKEN}"})),
        lambda api: LiveAvatarClient(api).create_session_token(TOKEN_REQUEST),
    ),
    (
        "streaming-error-in-200",
        Reply(
            200, _body({"error": {"message": f"x-api-key: {API_KEY}; secret='{MINTED_SECRET}'"}})
        ),
        lambda api: StreamingClient(api).new_session(NewSessionRequest()),
    ),
]


@pytest.mark.parametrize(("reply", "call"), [p[1:] for p in PATHS], ids=[p[0] for p in PATHS])
async def test_no_error_path_lets_a_secret_through(
    hostile: tuple[HostileServer, ApiClient],
    reply: Reply,
    call: Call,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, api = hostile
    server.reply = reply
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HeyGenError) as info:
        await call(api)
    error = info.value
    logging.getLogger("bot").error("call failed: %s (%r) body=%s", error, error, error.body)
    assert_clean(str(error), repr(error), error.message, error.body, str(error.code), caplog.text)
    assert REDACTED in error.body or REDACTED in error.message or not error.body


def test_the_cli_never_prints_a_secret_from_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = HostileServer()
    server.reply = Reply(
        400,
        _body(
            {
                "data": None,
                "error": {
                    "code": "key_disabled",
                    "message": f"key {API_KEY} is disabled; secret={MINTED_SECRET}",
                },
            }
        ),
    )
    with ServerThread(server.app) as running:
        result = CliRunner().invoke(
            cli_app,
            ["heygen", "avatars"],
            env={"HEYGEN_API_KEY": API_KEY, "HEYGEN_API_BASE": running.base_url, "COLUMNS": "200"},
        )
    assert result.exit_code == 1
    assert "key_disabled" not in result.stdout  # an error line, not a table
    assert "is disabled" in result.stderr
    assert_clean(result.stdout, result.stderr)


# --- the rule itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"api_key": "abc123"}', '{"api_key": "[REDACTED]"}'),
        ("{'session_token': 'abc123', 'id': 'v1'}", "{'session_token': '[REDACTED]', 'id': 'v1'}"),
        ('{"secret": "a\\"b"}', '{"secret": "[REDACTED]"}'),  # escaped quote inside
        ("GET /v1?token=abc123&page=2", "GET /v1?token=[REDACTED]&page=2"),
        ("Authorization: Bearer abc.def", "Authorization: [REDACTED]"),
        ("StartedSession(client_secret='abc123')", "StartedSession(client_secret=[REDACTED])"),
        ('{"video_id": "v1", "max_tokens": 5}', '{"video_id": "v1", "max_tokens": 5}'),
        ("plain text", "plain text"),
    ],
)
def test_one_rule_for_json_repr_and_key_value_forms(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_structure_is_redacted_before_it_becomes_text() -> None:
    payload = {
        "data": {"items": [{"webhook_secret": MINTED_SECRET, "n": 1}]},
        "note": f"sent with {API_KEY}",
    }
    text = redacted_json(payload, [API_KEY], limit=60)
    assert_clean(text)
    assert json.loads(redacted_json(payload, [API_KEY]))["data"]["items"][0] == {
        "webhook_secret": REDACTED,
        "n": 1,
    }


def test_the_logging_filter_redacts_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redaction")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="tests.redaction"):
        logger.info("upstream said %s", {"session_token": MINTED_TOKEN})
    assert_clean(caplog.text)
    assert "[REDACTED]" in caplog.text


def test_every_configured_secret_is_redacted_everywhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.config import load_settings

    webhook, llm = "custom-webhook-secret-9f8e7d6c", "local-llm-key-5a4b3c2d1e"
    load_settings(heygen_webhook_secret=webhook, llm_api_key=llm, _env_file=None)
    error = HeyGenError(f"echoed {webhook}", body=f"llm said {llm}")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="tests.redaction"):
        logging.getLogger("tests.redaction").info("model rejected key %s", llm)
    for text in (str(error), error.body, caplog.text):
        assert webhook not in text and llm not in text
