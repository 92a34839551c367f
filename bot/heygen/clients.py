"""Build every HeyGen / LiveAvatar client from Settings over one shared aiohttp session.

    async with heygen_clients(settings) as clients:
        job_id = await clients.video.submit(...)

Family clients are built on first use, so a deployment with only `LIVEAVATAR_API_KEY` can run
live sessions without `HEYGEN_API_KEY` and vice versa; a missing key raises
`MissingApiKeyError` naming the variable when that family is first touched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.heygen.errors import MissingApiKeyError
from bot.heygen.http import ApiClient, HttpSession

if TYPE_CHECKING:
    import aiohttp


class HeyGenClients:
    """Lazily built API clients sharing one session. Construct via `heygen_clients()`."""

    def __init__(self, settings: Settings, http: HttpSession, **api_options: Any) -> None:
        self.settings = settings
        self.http = http
        # Extra ApiClient keyword arguments (max_retries, backoff_base, sleep...): tests use
        # them to make backoff tiny; production keeps the defaults.
        self._api_options = api_options

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.http.session

    def heygen_api(self) -> ApiClient:
        """ApiClient for HEYGEN_API_BASE authenticated with X-Api-Key: HEYGEN_API_KEY."""
        key = self.settings.heygen_api_key
        if key is None or not key.get_secret_value().strip():
            raise MissingApiKeyError("HEYGEN_API_KEY", "HeyGen")
        secret = key.get_secret_value().strip()
        return ApiClient(
            self.session, self.settings.heygen_api_base,
            headers={"X-Api-Key": secret},
            timeout=self.settings.heygen_timeout_seconds,
            secrets=[secret], service="HeyGen", **self._api_options,
        )

    def liveavatar_api(self) -> ApiClient:
        """ApiClient for LIVEAVATAR_API_BASE authenticated with X-API-KEY: LIVEAVATAR_API_KEY.

        Session-scoped calls pass `Authorization: Bearer <session token>` per request; the
        core redacts those values too.
        """
        key = self.settings.liveavatar_api_key
        if key is None or not key.get_secret_value().strip():
            raise MissingApiKeyError("LIVEAVATAR_API_KEY", "LiveAvatar")
        secret = key.get_secret_value().strip()
        return ApiClient(
            self.session, self.settings.liveavatar_api_base,
            headers={"X-API-KEY": secret},
            timeout=self.settings.heygen_timeout_seconds,
            secrets=[secret], service="LiveAvatar", **self._api_options,
        )

    @cached_property
    def _heygen(self) -> ApiClient:
        return self.heygen_api()


@asynccontextmanager
async def heygen_clients(settings: Settings, **api_options: Any) -> AsyncIterator[HeyGenClients]:
    """One shared session for the block; every client built from `settings`."""
    async with HttpSession() as http:
        yield HeyGenClients(settings, http, **api_options)
