"""What `avatarbot serve` checks and derives from the settings before anything heavy loads:
the Slack credentials it needs, and the knowledge config it serves with. A module of its
own so the command can check them, and load the model, before it imports the Slack stack
(`bot.cli.serve`)."""

from __future__ import annotations

import os

from bot.config import Settings, SettingsError, is_set
from knowledge.config import KnowledgeConfig


def check_settings(settings: Settings) -> None:
    """Stop the start with the variable's name when Slack cannot work."""
    if not is_set(settings.slack_bot_token):
        raise SettingsError("SLACK_BOT_TOKEN is not set: the bot token (xoxb-…) is required")
    if not settings.slack_bot_token.get_secret_value().startswith("xoxb-"):  # type: ignore[union-attr]
        raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if is_set(settings.slack_app_token):
        if not settings.slack_app_token.get_secret_value().startswith("xapp-"):  # type: ignore[union-attr]
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    elif not is_set(settings.slack_signing_secret):
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests "
            "(or set SLACK_APP_TOKEN for Socket Mode)"
        )


def serving_config(settings: Settings) -> KnowledgeConfig:
    """The knowledge config to serve with: the model's weights ready for small calls (a
    question at a time) and, unless ONNX_THREADS says otherwise, all cores but one, so a
    burst of model calls leaves the event loop (the acks) one."""
    config = settings.knowledge_config()
    threads = config.onnx_threads or max(1, (os.cpu_count() or 1) - 1)
    return config.model_copy(update={"onnx_threads": threads, "onnx_fold_weights": True})
