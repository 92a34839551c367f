"""http(s) URLs -> Documents: guarded, bounded downloads with aiohttp, parsed off the loop.

Redirects are followed by hand so that every hop is checked against the UrlPolicy before
any connection is made; the body is streamed and abandoned as soon as it passes the limit.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from knowledge.models import Document
from knowledge.sources.errors import HttpStatusError, Skipped, SourceError
from knowledge.sources.limits import check_declared_size, read_capped
from knowledge.sources.parsers import SUPPORTED_EXTENSIONS, parse_bytes
from knowledge.sources.urlguard import AddressRefused, GuardedResolver, UrlPolicy

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK = 64 * 1024
# The product token robots.txt groups are matched against (RFC 9309 section 2.2.1).
USER_AGENT = "avatarbot-knowledge"
_HEADERS = {
    "User-Agent": f"{USER_AGENT}/0.1 (+https://github.com/avatarbot)",
    "Accept": "text/html, text/markdown, text/plain, application/pdf, "
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document;q=0.9, */*;q=0.1",
}
_CONTENT_TYPE_EXTENSIONS = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/x-rst": ".rst",
    "text/prs.fallenstein.rst": ".rst",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
# Types that say little: the URL's own extension (README.md served as text/plain) decides.
_GENERIC_TYPES = frozenset({"text/plain", "application/octet-stream", "binary/octet-stream", ""})

_guarded_sessions: weakref.WeakSet[aiohttp.ClientSession] = weakref.WeakSet()


def open_session(
    policy: UrlPolicy | None = None, *, dns: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """A ClientSession whose connector resolves through the guard (reuse it for many URLs).

    `dns` replaces the system resolver underneath the guard (tests use a fake DNS).
    """
    resolver = GuardedResolver(policy or UrlPolicy(), inner=dns)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver), headers=_HEADERS, trust_env=False
    )
    _guarded_sessions.add(session)
    return session


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 20.0,  # noqa: ASYNC109 - the agreed API; applied via asyncio.timeout
    max_redirects: int = 5,
    session: aiohttp.ClientSession | None = None,
    policy: UrlPolicy | None = None,
) -> Document:
    """Download and parse one URL. Document.source is the URL as given (minus any password),
    Document.url the final URL after redirects. Raises SourceError.

    Pass a session from `open_session(policy)` to reuse connections; any other session gets
    a DNS check before each hop, which cannot close the rebinding gap the guarded one does.
    """
    policy = policy or UrlPolicy()
    try:
        start = URL(url)
    except ValueError as exc:
        raise SourceError(url, "invalid URL") from exc
    source = str(start.with_user(None)) if start.user or start.password else url
    own_session = session is None
    active = open_session(policy) if session is None else session
    try:
        async with asyncio.timeout(timeout):
            fetched = await _download(
                active,
                start,
                source=source,
                policy=policy,
                max_bytes=max_bytes,
                max_redirects=max_redirects,
            )
    except TimeoutError as exc:
        raise SourceError(source, f"timed out after {timeout:g} s") from exc
    finally:
        if own_session:
            await active.close()
    return await parse_fetched(fetched, source=source, max_bytes=max_bytes)


async def parse_fetched(fetched: Fetched, *, source: str, max_bytes: int) -> Document:
    """A 2xx response as a Document, parsed off the loop; raises SourceError."""
    filename = _filename(fetched.url, fetched.content_type, source=source)
    doc = await asyncio.to_thread(
        parse_bytes,
        fetched.body,
        filename,
        source=source,
        url=str(fetched.url.with_user(None)),  # links must not carry credentials
        max_bytes=max_bytes,
        charset=fetched.charset,
    )
    return doc.model_copy(update={"etag": fetched.etag, "last_modified": fetched.last_modified})


async def fetch_urls(
    urls: list[str], *, max_bytes: int, policy: UrlPolicy | None = None
) -> tuple[list[Document], list[Skipped]]:
    """Fetch many URLs over one guarded session: the documents, and what was skipped and why
    (a failure of one URL never stops the others)."""
    docs: list[Document] = []
    skipped: list[Skipped] = []
    if not urls:
        return docs, skipped
    async with open_session(policy) as session:
        results = await asyncio.gather(
            *(fetch_url(u, max_bytes=max_bytes, session=session, policy=policy) for u in urls),
            return_exceptions=True,
        )
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, SourceError):
            skipped.append(Skipped(result.source, result.reason))
        elif isinstance(result, BaseException):
            skipped.append(Skipped(url, f"fetch failed ({type(result).__name__})"))
        else:
            docs.append(result)
    return docs, skipped


@dataclass(frozen=True)
class Fetched:
    """One response after redirects: what a crawler needs beyond the parsed document."""

    url: URL  # final URL, without fragment
    status: int  # 2xx, or 304 when a conditional request found the page unchanged
    body: bytes
    content_type: str
    charset: str | None
    etag: str = ""
    last_modified: str = ""


async def fetch_raw(
    session: aiohttp.ClientSession,
    url: str | URL,
    *,
    source: str,
    policy: UrlPolicy,
    max_bytes: int,
    max_redirects: int = 5,
    validators: tuple[str, str] = ("", ""),
    hop_refusal: Callable[[URL], str | None] | None = None,
) -> Fetched:
    """GET one URL through the guard, following redirects by hand; raises SourceError.

    `validators` (ETag, Last-Modified) from an earlier fetch make the request conditional
    (RFC 9110 If-None-Match / If-Modified-Since): an unchanged page answers 304, no body.
    `hop_refusal` can refuse a redirect target before it is connected to (a crawl's scope).
    """
    etag, last_modified = validators
    extra = {"If-None-Match": etag} if etag else {}
    if last_modified:
        extra["If-Modified-Since"] = last_modified
    return await _download(
        session,
        URL(url) if isinstance(url, str) else url,
        source=source,
        policy=policy,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        extra_headers=extra,
        hop_refusal=hop_refusal,
    )


async def _download(
    session: aiohttp.ClientSession,
    url: URL,
    *,
    source: str,
    policy: UrlPolicy,
    max_bytes: int,
    max_redirects: int,
    extra_headers: dict[str, str] | None = None,
    hop_refusal: Callable[[URL], str | None] | None = None,
) -> Fetched:
    """The final response (2xx or 304), following redirects."""
    current = url.with_fragment(None)
    headers = {**_HEADERS, **(extra_headers or {})}
    for hop in range(max_redirects + 1):
        reason = policy.refusal_for_url(current) or (
            hop_refusal(current) if hop and hop_refusal else None
        )
        if reason:
            raise SourceError(source, reason)
        if session not in _guarded_sessions:
            await _check_dns(current, policy, source)
        try:
            async with session.get(current, allow_redirects=False, headers=headers) as resp:
                if resp.status in REDIRECT_STATUSES:
                    location = resp.headers.get("Location")
                    if not location:
                        raise SourceError(source, f"HTTP {resp.status} without a Location")
                    current = current.join(URL(location)).with_fragment(None)
                    continue
                if resp.status == 304 and extra_headers:
                    body = b""
                elif not 200 <= resp.status < 300:
                    raise HttpStatusError(source, resp.status)
                else:
                    body = await _read_limited(resp, source=source, max_bytes=max_bytes)
                return Fetched(
                    url=current,
                    status=resp.status,
                    body=body,
                    content_type=resp.content_type,
                    charset=resp.charset,
                    etag=resp.headers.get("ETag", ""),
                    last_modified=resp.headers.get("Last-Modified", ""),
                )
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise SourceError(source, exc.os_error.reason) from exc
            raise SourceError(source, f"cannot resolve host {current.host}") from exc
        except aiohttp.ServerTimeoutError as exc:  # a caller's session with shorter timeouts
            raise SourceError(source, "timed out waiting for the server") from exc
        except aiohttp.ClientConnectorError as exc:
            raise SourceError(source, f"cannot connect to {current.host}") from exc
        except aiohttp.InvalidURL as exc:
            raise SourceError(source, "invalid URL") from exc
        except aiohttp.ClientError as exc:
            raise SourceError(source, f"download failed ({type(exc).__name__})") from exc
    raise SourceError(source, f"more than {max_redirects} redirects")


async def _read_limited(resp: aiohttp.ClientResponse, *, source: str, max_bytes: int) -> bytes:
    # Content-Length counts the compressed body; read_capped counts what aiohttp inflated,
    # so a gzip bomb stops at max_bytes of memory.
    check_declared_size(resp.content_length, max_bytes=max_bytes, source=source)
    return await read_capped(
        resp.content.iter_chunked(_READ_CHUNK), max_bytes=max_bytes, source=source
    )


async def _check_dns(url: URL, policy: UrlPolicy, source: str) -> None:
    """Best effort for sessions we did not build: resolve and refuse internal answers."""
    host = url.raw_host or ""
    try:
        await GuardedResolver(policy).resolve(host, url.port or 0)
    except AddressRefused as exc:
        raise SourceError(source, exc.reason) from exc
    except OSError as exc:
        raise SourceError(source, f"cannot resolve host {host}") from exc


def _filename(url: URL, content_type: str, *, source: str) -> str:
    """A file name for parse_bytes: the URL's last segment with the right extension."""
    name = unquote(PurePosixPath(url.path).name) or url.host or "page"
    url_ext = PurePosixPath(name).suffix.lower()
    if url_ext in SUPPORTED_EXTENSIONS and content_type in _GENERIC_TYPES:
        return name
    ext = _CONTENT_TYPE_EXTENSIONS.get(content_type)
    if ext is None:
        if url_ext in SUPPORTED_EXTENSIONS and not content_type.startswith(("image/", "video/")):
            return name
        raise SourceError(source, f"unsupported content type {content_type or '(none)'}")
    stem = PurePosixPath(name).stem if url_ext in SUPPORTED_EXTENSIONS else name
    return f"{stem}{ext}"
