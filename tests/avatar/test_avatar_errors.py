"""One error contract for the avatar: nothing from the vendor leaves `AvatarDelivery` as
anything but an `AvatarError` with a plain sentence, and "off" says which setting is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.avatar.delivery import LiveScope
from bot.avatar.errors import AvatarError, AvatarUnavailable
from bot.avatar.service import live_off, video_off
from bot.config import load_settings
from bot.heygen.errors import HeyGenError
from tests.avatar_stack import avatar_stack
from tests.fakes.faults import Fault
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.heygen_streaming import AVATAR_ID as STREAMING_AVATAR

SCOPE = LiveScope(team="T1", channel="C1", user="U1")
STREAMING = {
    "heygen_api_key": API_KEY,
    "heygen_live_api": "streaming",
    "live_avatar_id": STREAMING_AVATAR,
    "liveavatar_api_key": None,
}


async def said(*sentences: str) -> AsyncIterator[str]:
    for s in sentences:
        yield s


async def test_a_heygen_5xx_while_speaking_is_an_avatar_error_in_plain_words(
    store, clock, tmp_path
) -> None:
    fake = FakeHeyGen()
    async with avatar_stack(fake.app(), store, clock, tmp_path / "data", **STREAMING) as stack:
        live = stack.delivery.live
        assert live is not None
        await live.viewer_session(stack.delivery.scope_key(SCOPE), None)  # a viewer watches
        fake.faults.add("streaming_task", Fault.server_error(503), times=10)
        with pytest.raises(AvatarError) as info:
            await stack.delivery.speak(SCOPE, "a1", said("Hello from v1."))
    assert not isinstance(info.value, HeyGenError)
    assert info.value.sentence == (
        "HeyGen had a problem (HTTP 503) while speaking the answer live; please try again shortly."
    )
    assert isinstance(info.value.__cause__, HeyGenError)  # the detail stays for the log


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({}, "HEYGEN_API_KEY"),
        ({"heygen_api_key": API_KEY}, "HEYGEN_AVATAR_ID"),
        (
            {"heygen_api_key": API_KEY, "heygen_avatar_id": "a1", "heygen_video_api": "v2"},
            "HEYGEN_VOICE_ID",
        ),
    ],
)
def test_videos_off_names_the_setting_that_is_missing(
    settings: dict[str, Any], variable: str
) -> None:
    unset = {"heygen_api_key": None, "heygen_avatar_id": None, "video_template_id": None}
    off = video_off(load_settings(**{**unset, **settings}))
    assert off is not None and off.variable == variable
    error = off.error()
    assert isinstance(error, AvatarUnavailable) and error.variable == variable
    assert error.sentence.startswith("Avatar videos are off: set " + variable)
    others = {"HEYGEN_API_KEY", "HEYGEN_AVATAR_ID", "HEYGEN_VOICE_ID"} - {variable}
    assert not any(name in error.sentence.split("(")[0] for name in others)


def test_a_v2_template_needs_no_avatar_and_v3_with_an_avatar_is_on() -> None:
    template = {"heygen_video_api": "v2", "video_template_id": "tpl_welcome"}
    assert video_off(load_settings(heygen_api_key=API_KEY, **template)) is None
    assert video_off(load_settings(heygen_api_key=API_KEY, heygen_avatar_id="a1")) is None


def test_liveavatar_never_takes_a_heygen_avatar_id() -> None:
    base = {"liveavatar_api_key": "la-key", "public_base_url": "https://bot.example"}
    only_heygen = load_settings(**base, heygen_avatar_id="Angela-inblackskirt-20220820")
    off = live_off(only_heygen)
    assert off is not None and off.variable == "LIVE_AVATAR_ID"
    assert live_off(load_settings(**base, live_avatar_id="a1b2")) is None
    # the legacy streaming API has its own (interactive) avatars too: never a video avatar id
    streaming = {"heygen_api_key": API_KEY, "heygen_live_api": "streaming", **base}
    off = live_off(load_settings(**streaming, heygen_avatar_id="Wayne_20240711"))
    assert off is not None and off.variable == "LIVE_AVATAR_ID"
    assert live_off(load_settings(**streaming, live_avatar_id="Wayne_20240711")) is None
