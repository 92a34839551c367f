"""Files people send the bot: downloaded from Slack's file hosts only, size-capped.

A file's `url_private` is fetched with the bot token (Slack answers a login page without
it), and only when its host — and every redirect's — is one of Slack's domains or the
configured Web API host (GovSlack, tests): a crafted event cannot make the bot send its
token, or fetch, anywhere else. The size Slack reports is checked first, then the download
stops as soon as it passes the cap; nothing is read from a path a person typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from knowledge.sources.errors import human_size

# Slack's own domains (file hosts, their CDN and GovSlack), over https only.
SLACK_DOMAINS = ("slack.com", "slack-edge.com", "slack-files.com", "slack-gov.com")
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class DownloadRefused(Exception):
    """A file we will not download; `reason` is for people."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def allowed_host(url: str, api_url: str) -> bool:
    try:
        u, api = URL(url), URL(api_url)
    except ValueError:
        return False
    host = (u.host or "").lower()
    if u.scheme == "https" and any(host == d or host.endswith("." + d) for d in SLACK_DOMAINS):
        return True
    # The Web API's own host (e.g. a GovSlack base, or the loopback fake in tests).
    return u.scheme == api.scheme and u.host == api.host and u.port == api.port


async def download(file: dict[str, Any], *, token: str, api_url: str, max_bytes: int) -> bytes:
    """The file's bytes, or DownloadRefused (wrong host, too large, not a file)."""
    name = str(file.get("name") or file.get("id") or "file")
    url = file.get("url_private_download") or file.get("url_private") or ""
    if not allowed_host(url, api_url):
        raise DownloadRefused(name, "it is not hosted on Slack's file servers")
    size = file.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise DownloadRefused(
            name, f"it is {human_size(size)}; the limit is {human_size(max_bytes)}"
        )
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        # Redirects are followed by hand: every hop must be a Slack host too, so the token
        # never leaves Slack and nothing is fetched from anywhere else.
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(
                url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
            ) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    url = str(resp.url.join(URL(resp.headers.get("Location", ""))))
                    if not allowed_host(url, api_url):
                        raise DownloadRefused(name, "Slack redirected it off Slack's servers")
                    continue
                return await _read_capped(resp, name, max_bytes)
    raise DownloadRefused(name, "too many redirects")


async def _read_capped(resp: aiohttp.ClientResponse, name: str, max_bytes: int) -> bytes:
    if resp.status != 200:
        raise DownloadRefused(name, f"Slack answered HTTP {resp.status}")
    if resp.content_type == "text/html" and not name.lower().endswith((".html", ".htm")):
        raise DownloadRefused(name, "Slack sent a login page instead of the file")
    length = resp.content_length
    if length is not None and length > max_bytes:
        raise DownloadRefused(
            name, f"it is {human_size(length)}; the limit is {human_size(max_bytes)}"
        )
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise DownloadRefused(name, f"it is over the {human_size(max_bytes)} limit")
    return bytes(body)
