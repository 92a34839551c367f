"""`avatarbot serve`: run the Slack bot (Socket Mode or HTTP) until SIGTERM."""

from __future__ import annotations

import asyncio
import logging

from bot import logs
from bot.cli.output import console, fail, settings
from bot.config import Settings, SettingsError
from bot.malloc import release_free_memory
from bot.serve_settings import check_settings, serving_config
from knowledge.index import KnowledgeBase

log = logging.getLogger("bot.serve")


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
    kb = _knowledge_with_model(s)
    from bot.serve import run_server  # the Slack app, the server, the store: after the model

    try:
        asyncio.run(run_server(s, kb))
    except SettingsError as exc:
        fail(str(exc), code=2)


def _knowledge_with_model(s: Settings) -> KnowledgeBase | None:
    """The knowledge base with its embedding model loaded, before the rest of the server is
    imported: the load's temporaries (~70 MB while onnxruntime folds the weights) then
    peak while the process is small, and are handed back before the server grows, so
    they never add to its peak. None when it cannot: the server then opens it itself and
    its warm-up says why in the log."""
    try:
        kb = KnowledgeBase(serving_config(s))
        if (embedder := kb.embedder) is not None:
            embedder.embed_query("warm-up")
    except Exception as exc:  # the server's own warm-up meets it again and logs it
        log.debug("early model load failed: %s", type(exc).__name__)
        return None
    finally:
        release_free_memory()
    return kb
