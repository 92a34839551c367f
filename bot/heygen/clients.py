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

from bot.config import Settings, VideoApi
from bot.heygen.errors import MissingApiKeyError
from bot.heygen.http import ApiClient, HttpSession
from bot.heygen.video import (
    Catalog,
    TemplateRenderer,
    V2Catalog,
    V2Renderer,
    V3Catalog,
    V3Renderer,
    VideoRenderer,
)
from bot.heygen.videos_v2 import VideosV2
from bot.heygen.videos_v3 import VideosV3
from bot.heygen.webhooks import Webhooks

if TYPE_CHECKING:
    import aiohttp
    from pydantic import SecretStr


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
        s = self.settings
        return self._api(
            s.heygen_api_key, "HEYGEN_API_KEY", "HeyGen", s.heygen_api_base, "X-Api-Key"
        )

    def liveavatar_api(self) -> ApiClient:
        """ApiClient for LIVEAVATAR_API_BASE authenticated with X-API-KEY: LIVEAVATAR_API_KEY.

        Session-scoped calls pass `Authorization: Bearer <session token>` per request; the
        core redacts those values too.
        """
        s = self.settings
        return self._api(
            s.liveavatar_api_key,
            "LIVEAVATAR_API_KEY",
            "LiveAvatar",
            s.liveavatar_api_base,
            "X-API-KEY",
        )

    def _api(
        self, key: SecretStr | None, variable: str, service: str, base_url: str, header: str
    ) -> ApiClient:
        """One service's ApiClient; a missing or blank key raises naming `variable`."""
        secret = key.get_secret_value().strip() if key is not None else ""
        if not secret:
            raise MissingApiKeyError(variable, service)
        return ApiClient(
            self.session,
            base_url,
            headers={header: secret},
            timeout=self.settings.heygen_timeout_seconds,
            secrets=[secret],
            service=service,
            **self._api_options,
        )

    # --- HeyGen families (built on first use, sharing one ApiClient) ------------------------

    @cached_property
    def _heygen(self) -> ApiClient:
        return self.heygen_api()

    @cached_property
    def videos_v3(self) -> VideosV3:
        return VideosV3(self._heygen)

    @cached_property
    def videos_v2(self) -> VideosV2:
        return VideosV2(self._heygen)

    @cached_property
    def webhooks(self) -> Webhooks:
        return Webhooks(self._heygen)

    def renderer(self, api: VideoApi | None = None) -> VideoRenderer:
        """The renderer for `api`, default HEYGEN_VIDEO_API."""
        chosen = api or self.settings.heygen_video_api
        if chosen == VideoApi.V2:
            template = self.settings.video_template_id
            if template:
                return TemplateRenderer(
                    self.videos_v2, template, self.settings.video_template_variable
                )
            return V2Renderer(self.videos_v2)
        return V3Renderer(self.videos_v3)

    def catalog(self, api: VideoApi | None = None) -> Catalog:
        chosen = api or self.settings.heygen_video_api
        if chosen == VideoApi.V2:
            return V2Catalog(self.videos_v2)
        return V3Catalog(self.videos_v3, self.videos_v2)

    @property
    def video(self) -> VideoRenderer:
        """The renderer HEYGEN_VIDEO_API selects; callers never learn which version it is."""
        return self.renderer()


@asynccontextmanager
async def heygen_clients(settings: Settings, **api_options: Any) -> AsyncIterator[HeyGenClients]:
    """One shared session for the block; every client built from `settings`."""
    async with HttpSession() as http:
        yield HeyGenClients(settings, http, **api_options)
