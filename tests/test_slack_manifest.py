"""manifest.yml creates an app that sends the bot everything it listens for."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack import blocks

MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[1] / "manifest.yml").read_text())


def test_manifest_declares_the_commands_events_and_scopes_the_bot_uses() -> None:
    features = MANIFEST["features"]
    assert "agent_view" in features and "assistant_view" not in features
    assert {c["command"] for c in features["slash_commands"]} == {
        "/ask-video",
        "/ask",
        "/knowledge",
    }
    assert features["app_home"]["home_tab_enabled"] is True
    assert "suggested_prompts" not in features["agent_view"]  # built from the documents
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert {
        "app_mention",
        "message.im",
        "message.channels",
        "message.groups",
        "message.mpim",
        "app_home_opened",
        "assistant_thread_started",
        "assistant_thread_context_changed",
    } <= events
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    # chat_stream + setStatus, history for threads, files both ways, admin checks
    assert {
        "chat:write",
        "assistant:write",
        "channels:history",
        "channels:read",  # `/knowledge add #channel`: conversations.info/list
        "groups:read",
        "groups:history",
        "im:history",
        "mpim:history",
        "files:read",
        "files:write",
        "users:read",
        "commands",
        "app_mentions:read",
    } == scopes  # and nothing unused (reactions:write, im:read, im:write went)
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
    assert blocks.FEEDBACK and blocks.MAKE_VIDEO  # the interactive actions exist
