"""`avatarbot serve`: run the Slack bot (Socket Mode or HTTP) until SIGTERM."""

from __future__ import annotations

import asyncio

from bot import logs
from bot.cli.output import console, fail, settings
from bot.config import SettingsError
from bot.serve import check_settings, run_server


def serve() -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT."""
    s = settings()
    try:
        check_settings(s)
    except SettingsError as exc:
        fail(str(exc), code=2)
    logs.configure(s.log_format, s.log_level)
    console.print(
        f"avatarbot: {'Socket Mode' if s.slack_app_token else 'HTTP mode'}, "
        f"health on http://0.0.0.0:{s.port}/healthz",
        highlight=False,
    )
    try:
        asyncio.run(run_server(s))
    except SettingsError as exc:
        fail(str(exc), code=2)
