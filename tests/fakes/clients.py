"""The real HeyGen / LiveAvatar clients, built from Settings, pointed at a loopback fake.

    async with served_clients(fake.app(), sleep=sleeps, heygen_api_key=API_KEY) as clients:
        ...

Both API bases point at the fake, so one helper serves every family; other keywords are
`load_settings` overrides. `sleep` / `backoff_base` reach the ApiClient only when given, so a
test that leaves them out runs with the production defaults.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from bot.config import load_settings
from bot.heygen.clients import HeyGenClients, heygen_clients
from bot.heygen.http import Sleep
from tests.fakes.server import serve


@asynccontextmanager
async def served_clients(
    app: web.Application,
    *,
    sleep: Sleep | None = None,
    backoff_base: float | None = None,
    **settings: Any,
) -> AsyncIterator[HeyGenClients]:
    options: dict[str, Any] = {}
    if sleep is not None:
        options["sleep"] = sleep
    if backoff_base is not None:
        options["backoff_base"] = backoff_base
    async with serve(app) as url:
        config = load_settings(heygen_api_base=url, liveavatar_api_base=url, **settings)
        async with heygen_clients(config, **options) as clients:
            yield clients
