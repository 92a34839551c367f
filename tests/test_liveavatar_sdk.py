"""The names the viewer page, the LiveAvatar client and its fake use, checked against
LiveAvatar's own published web SDK (npm `@heygen/liveavatar-web-sdk`, pinned in the Makefile,
fetched by `make test` into build/npm/liveavatar-web-sdk/).

If the vendor renames a topic, an event or a session field, this fails, instead of the page
and the fake agreeing with each other and with nobody else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from bot.heygen import liveavatar
from bot.heygen.live import AVATAR_PARTICIPANT
from tests.fakes import liveavatar as fake_module
from tests.fakes.liveavatar import API_KEY, AVATAR_ID, FakeLiveAvatar
from tests.fakes.server import serve

ROOT = Path(__file__).parents[1]
SDK = ROOT / "build" / "npm" / "liveavatar-web-sdk"
PAGE_JS = (ROOT / "bot" / "web" / "static" / "live.js").read_text()
# Documented on https://docs.liveavatar.com/docs/full-mode/events but not (yet) in the SDK's
# command enum: the push-to-talk commands the fake accepts.
DOCUMENTED_ONLY_COMMANDS = {"user.start_push_to_talk", "user.stop_push_to_talk"}
# Documented on the start-session API page (a token for a backend participant), not in the
# SDK's SessionInfo, which describes what a *browser* needs.
DOCUMENTED_ONLY_START_FIELDS = {"livekit_agent_token"}


def sdk_file(relative: str) -> str:
    path = SDK / relative
    if not path.exists():
        pytest.fail(f"{SDK} is missing: run `make test` (it fetches the pinned LiveAvatar SDK)")
    return path.read_text()


def enum_values(source: str, name: str) -> set[str]:
    body = re.search(r"enum " + name + r" \{(.*?)\}", source, re.S)
    assert body, f"the SDK no longer defines {name}"
    return set(re.findall(r'= "([^"]+)"', body.group(1)))


def interface_fields(source: str, name: str) -> set[str]:
    body = re.search(r"interface " + name + r" \{(.*?)\}", source, re.S)
    assert body, f"the SDK no longer defines {name}"
    return set(re.findall(r"^\s*(\w+)\??:", body.group(1), re.M))


def test_the_pinned_version_is_the_one_installed() -> None:
    pin = re.search(r"LIVEAVATAR_SDK_VERSION := (\S+)", (ROOT / "Makefile").read_text())
    assert pin and json.loads(sdk_file("package.json"))["version"] == pin.group(1)


def test_topics_are_the_sdks() -> None:
    const = sdk_file("lib/const.d.ts")
    control = re.search(r'LIVEKIT_COMMAND_CHANNEL_TOPIC = "([^"]+)"', const)
    response = re.search(r'LIVEKIT_SERVER_RESPONSE_CHANNEL_TOPIC = "([^"]+)"', const)
    assert control and response
    assert liveavatar.AGENT_CONTROL_TOPIC == fake_module.AGENT_CONTROL_TOPIC == control.group(1)
    assert response.group(1) == liveavatar.AGENT_RESPONSE_TOPIC
    assert f'topic: "{control.group(1)}"' in PAGE_JS
    assert f'topic !== "{response.group(1)}"' in PAGE_JS


def test_the_avatar_participant_is_the_sdks() -> None:
    session = sdk_file("lib/LiveAvatarSession/LiveAvatarSession.js")
    identity = re.search(r'HEYGEN_PARTICIPANT_ID = "([^"]+)"', session)
    assert identity
    assert AVATAR_PARTICIPANT == fake_module.AVATAR_IDENTITY == identity.group(1)
    assert f'const AVATAR = "{identity.group(1)}"' in PAGE_JS


def test_every_event_name_we_use_is_one_the_sdk_defines() -> None:
    events = sdk_file("lib/LiveAvatarSession/events.d.ts")
    commands = enum_values(events, "CommandEventsEnum")
    responses = enum_values(events, "AgentEventsEnum")
    # what the page sends and listens for
    used_by_page = set(re.findall(r'"((?:avatar|session|user)\.[a-z_]+)"', PAGE_JS))
    assert used_by_page, "the page names no events?"
    assert used_by_page <= commands | responses, used_by_page - commands - responses
    assert {"avatar.speak_text", "avatar.speak_started", "avatar.speak_ended"} <= used_by_page
    # what the server can send
    assert set(liveavatar.AGENT_CONTROL_EVENTS) <= commands
    # what the fake accepts and answers with
    assert commands >= fake_module._COMMANDS - DOCUMENTED_ONLY_COMMANDS
    assert set(fake_module._REPLIES) <= responses


async def test_the_session_start_fields_are_the_sdks(tmp_path: Path) -> None:
    info = interface_fields(sdk_file("lib/LiveAvatarSession/types.d.ts"), "SessionInfo")
    fake = FakeLiveAvatar()
    async with serve(fake.app()) as url, aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/v1/sessions/token",
            json={"mode": "FULL", "avatar_id": AVATAR_ID},
            headers={"X-API-KEY": API_KEY},
        ) as resp:
            minted = (await resp.json())["data"]
        async with http.post(
            f"{url}/v1/sessions/start",
            headers={"Authorization": f"Bearer {minted['session_token']}"},
        ) as resp:
            started = await resp.json()
    assert started["code"] in liveavatar.SUCCESS_CODES
    assert set(started["data"]) <= info | DOCUMENTED_ONLY_START_FIELDS
    # the client's model reads only fields the SDK (or the API page) defines
    model_fields = set(liveavatar.StartedSession.model_fields)
    assert model_fields <= info | DOCUMENTED_ONLY_START_FIELDS
    required = {n for n, f in liveavatar.StartedSession.model_fields.items() if f.is_required()}
    assert required <= info


def test_the_sdks_success_code_is_accepted() -> None:
    client = sdk_file("lib/LiveAvatarSession/SessionApiClient.js")
    code = re.search(r"SUCCESS_CODE = (\d+)", client)
    assert code and int(code.group(1)) in liveavatar.SUCCESS_CODES
