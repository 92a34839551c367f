"""fetch_url against loopback fake servers: formats, failures, limits and the SSRF guard.

Only loopback addresses are ever connected to. Non-loopback addresses appear only in the
pure predicate tests, which connect nowhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from knowledge.sources import SourceError, UrlPolicy, fetch_url, open_session
from knowledge.sources.urlguard import address_refusal
from tests.fakes.server import serve
from tests.fixtures.documents import DEPLOY_PAGE as PAGE
from tests.fixtures.documents import handbook_pdf

LOOPBACK_ONLY = UrlPolicy(allowed_networks=("127.0.0.1/32",))
LIMIT = 1024 * 1024


class Origin:
    """The fake site: a handful of routes that each play one part of the HTTP contract."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stream_stopped = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get("/docs/deploy.html", self.page)
        self.app.router.add_get("/raw/README.md", self.readme)
        self.app.router.add_get("/files/handbook", self.pdf)
        self.app.router.add_get("/image.md", self.image)
        self.app.router.add_get("/stall", self.stall)
        self.app.router.add_get("/hop/{n}", self.hop)
        self.app.router.add_get("/to", self.redirect_to)
        self.app.router.add_get("/big", self.big)
        self.app.router.add_get("/endless", self.endless)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html", charset="utf-8")

    async def readme(self, request: web.Request) -> web.Response:
        return web.Response(text="# Readme\n\n## Setup\n\nRun make demo.\n")

    async def pdf(self, request: web.Request) -> web.Response:
        return web.Response(body=handbook_pdf(), content_type="application/pdf")

    async def image(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG\r\n", content_type="image/png")

    async def stall(self, request: web.Request) -> web.Response:
        await self.release.wait()  # never answers within the client's timeout
        return web.Response(text="late")

    async def hop(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            raise web.HTTPFound("../docs/deploy.html#http-mode")  # relative, with a fragment
        raise web.HTTPFound(f"/hop/{n - 1}")

    async def redirect_to(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["target"])

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 3 * 1024, content_type="text/plain")

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()  # no Content-Length: the client must count
        await response.prepare(request)
        try:
            while True:
                await response.write(b"y" * 1024)
        except (ConnectionError, asyncio.CancelledError):
            self.stream_stopped.set()
            raise


@pytest.fixture
async def origin() -> AsyncIterator[tuple[Origin, str]]:
    site = Origin()
    async with serve(site.app) as base:
        yield site, base
        site.release.set()


@asynccontextmanager
async def bystander(host: str) -> AsyncIterator[tuple[int, list[str]]]:
    """A server on another loopback address that records every request it receives."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="should never be reached")

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, hits
    finally:
        await runner.cleanup()


async def refusal(url: str, **kwargs: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await fetch_url(url, max_bytes=LIMIT, policy=LOOPBACK_ONLY, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- documents over HTTP ---------------------------------------------------------------------


async def test_html_page_is_fetched_and_parsed(origin: tuple[Origin, str]) -> None:
    _, base = origin
    doc = await fetch_url(f"{base}/docs/deploy.html", max_bytes=LIMIT, policy=LOOPBACK_ONLY)
    assert doc.source == f"{base}/docs/deploy.html"
    assert doc.url == f"{base}/docs/deploy.html"
    assert doc.format == "html"
    assert doc.title == "Deploying avatarbot"
    assert "## HTTP mode {#http-mode}" in doc.text


async def test_markdown_served_as_text_plain_is_parsed_as_markdown(
    origin: tuple[Origin, str],
) -> None:
    _, base = origin
    doc = await fetch_url(f"{base}/raw/README.md", max_bytes=LIMIT, policy=LOOPBACK_ONLY)
    assert doc.format == "md"
    assert doc.title == "Readme"


async def test_pdf_is_recognised_by_content_type(origin: tuple[Origin, str]) -> None:
    _, base = origin
    doc = await fetch_url(f"{base}/files/handbook", max_bytes=LIMIT, policy=LOOPBACK_ONLY)
    assert doc.format == "pdf"
    assert doc.title == "Operator Handbook"


async def test_five_redirects_are_followed_to_the_final_url(origin: tuple[Origin, str]) -> None:
    _, base = origin
    doc = await fetch_url(f"{base}/hop/4", max_bytes=LIMIT, policy=LOOPBACK_ONLY)
    assert doc.source == f"{base}/hop/4"
    assert doc.url == f"{base}/docs/deploy.html"  # final URL, fragment dropped


async def test_a_shared_guarded_session_is_reused(origin: tuple[Origin, str]) -> None:
    _, base = origin
    async with open_session(LOOPBACK_ONLY) as session:
        for path in ("/docs/deploy.html", "/raw/README.md"):
            doc = await fetch_url(
                f"{base}{path}", max_bytes=LIMIT, policy=LOOPBACK_ONLY, session=session
            )
            assert doc.text
        assert not session.closed  # fetch_url leaves a caller's session open


# --- failures --------------------------------------------------------------------------------


async def test_http_404_is_reported(origin: tuple[Origin, str]) -> None:
    _, base = origin
    error = await refusal(f"{base}/no/such/page")
    assert (error.source, error.reason) == (f"{base}/no/such/page", "HTTP 404")


async def test_credentials_in_the_url_never_reach_the_error(origin: tuple[Origin, str]) -> None:
    _, base = origin
    url = str(URL(f"{base}/no/such/page").with_user("admin").with_password("hunter2"))
    error = await refusal(url)
    assert "hunter2" not in error.source and "hunter2" not in str(error)
    assert error.reason == "HTTP 404"
    page = str(URL(f"{base}/docs/deploy.html").with_user("admin").with_password("hunter2"))
    doc = await fetch_url(page, max_bytes=LIMIT, policy=LOOPBACK_ONLY)
    assert doc.source == doc.url == f"{base}/docs/deploy.html"


async def test_a_plain_session_is_still_guarded_on_every_hop(origin: tuple[Origin, str]) -> None:
    _, base = origin
    async with aiohttp.ClientSession() as session:
        doc = await fetch_url(
            f"{base}/docs/deploy.html", max_bytes=LIMIT, policy=LOOPBACK_ONLY, session=session
        )
        assert doc.title == "Deploying avatarbot"
        for target, reason in [
            ("http://127.0.0.2:9/", "refused: a loopback address (127.0.0.2)"),
            ("http://localhost:9/", "refused: localhost is a loopback name"),
        ]:
            error = await refusal(str(URL(f"{base}/to").with_query(target=target)), session=session)
            assert error.reason == reason


async def test_stalled_server_times_out(origin: tuple[Origin, str]) -> None:
    _, base = origin
    assert (await refusal(f"{base}/stall", timeout=0.3)).reason == "timed out after 0.3 s"


async def test_more_than_five_redirects_are_refused(origin: tuple[Origin, str]) -> None:
    _, base = origin
    assert (await refusal(f"{base}/hop/5")).reason == "more than 5 redirects"


async def test_body_over_limit_with_content_length(origin: tuple[Origin, str]) -> None:
    _, base = origin
    with pytest.raises(SourceError) as caught:
        await fetch_url(f"{base}/big", max_bytes=1024, policy=LOOPBACK_ONLY)
    assert caught.value.reason == "too large: 3 KB > 1 KB limit"


async def test_endless_body_without_length_is_cut_off(origin: tuple[Origin, str]) -> None:
    site, base = origin
    with pytest.raises(SourceError) as caught:
        await fetch_url(f"{base}/endless", max_bytes=16 * 1024, policy=LOOPBACK_ONLY)
    assert caught.value.reason == "too large: over the 16 KB limit"
    # The client hung up: the server's endless write loop ends.
    await asyncio.wait_for(site.stream_stopped.wait(), timeout=10)


async def test_unsupported_content_type_is_refused(origin: tuple[Origin, str]) -> None:
    _, base = origin
    assert (await refusal(f"{base}/image.md")).reason == "unsupported content type image/png"


async def test_non_http_schemes_are_refused() -> None:
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/file.md", "gopher://127.0.0.1/"):
        assert (await refusal(url)).reason.startswith("unsupported URL scheme")


# --- SSRF guard ------------------------------------------------------------------------------


async def test_default_policy_refuses_loopback_before_connecting() -> None:
    async with bystander("127.0.0.1") as (port, hits):
        with pytest.raises(SourceError) as caught:
            await fetch_url(f"http://127.0.0.1:{port}/x.md", max_bytes=LIMIT)
        assert caught.value.reason == "refused: a loopback address (127.0.0.1)"
        assert hits == []


async def test_redirect_to_other_loopback_address_is_refused_before_connecting(
    origin: tuple[Origin, str],
) -> None:
    _, base = origin
    async with bystander("127.0.0.2") as (port, hits):
        target = f"http://127.0.0.2:{port}/admin"
        error = await refusal(str(URL(f"{base}/to").with_query(target=target)))
        assert error.reason == "refused: a loopback address (127.0.0.2)"
        assert hits == []


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://localhost:9/", "refused: localhost is a loopback name"),
        ("http://app.localhost:9/", "refused: app.localhost is a loopback name"),
        ("http://[::1]:9/", "refused: a loopback address (::1)"),
        ("http://[::ffff:127.0.0.3]:9/", "refused: a loopback address (::ffff:"),
        (
            "http://metadata.google.internal/v1/",
            "refused: metadata.google.internal is a cloud metadata host",
        ),
    ],
)
async def test_redirects_to_internal_hosts_are_refused(
    origin: tuple[Origin, str], target: str, reason: str
) -> None:
    _, base = origin
    error = await refusal(str(URL(f"{base}/to").with_query(target=target)))
    assert error.reason.startswith(reason)  # IPv4-mapped spelling varies by Python version
    assert error.source.startswith(base)


class FakeDNS(AbstractResolver):
    """A DNS server in a dict, so names can be exercised without real lookups."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = records
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        name = host.rstrip(".")
        if name not in self.records:
            raise OSError(f"no such host {name}")
        return [
            ResolveResult(
                hostname=host,
                host=self.records[name],
                port=port,
                family=family,
                proto=0,
                flags=0,
            )
        ]

    async def close(self) -> None:
        return None


async def test_names_are_checked_on_the_address_actually_connected_to(
    origin: tuple[Origin, str],
) -> None:
    _, base = origin
    port = URL(base).port
    dns = FakeDNS({"docs.test": "127.0.0.1", "intranet.test": "127.0.0.2"})
    async with bystander("127.0.0.2") as (bystander_port, hits):
        async with open_session(LOOPBACK_ONLY, dns=dns) as session:
            doc = await fetch_url(
                f"http://docs.test:{port}/docs/deploy.html",
                max_bytes=LIMIT,
                policy=LOOPBACK_ONLY,
                session=session,
            )
            assert doc.title == "Deploying avatarbot"
            # A name that resolves to an address outside the policy, reached by redirect.
            target = f"http://intranet.test:{bystander_port}/"
            error = await refusal(str(URL(f"{base}/to").with_query(target=target)), session=session)
        assert error.reason == "refused: resolves to a loopback address (127.0.0.2)"
        assert "intranet.test" in [host.rstrip(".") for host in dns.asked]
        assert hits == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.100.100.200", "non-public"),  # carrier-grade NAT; Alibaba's metadata address
        ("fd00::1", "private"),
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("::", "unspecified"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:a00:1::", "private"),  # 6to4 wrapping 10.0.0.1
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_predicate(address: str, kind: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == kind


def test_allowlist_opens_only_the_listed_networks() -> None:
    assert LOOPBACK_ONLY.refusal_for_address(ipaddress.ip_address("127.0.0.1")) is None
    assert LOOPBACK_ONLY.refusal_for_address(ipaddress.ip_address("127.0.0.2")) == "loopback"
    intranet = UrlPolicy(allowed_networks=("10.20.0.0/16",))
    assert intranet.refusal_for_address(ipaddress.ip_address("10.20.3.4")) is None
    assert intranet.refusal_for_address(ipaddress.ip_address("10.21.0.1")) == "private"
    assert intranet.refusal_for_url(URL("http://169.254.169.254/latest/meta-data/")) == (
        "refused: a link-local address (169.254.169.254)"
    )


# --- hosts written the way resolvers read them (issue 11) -----------------------------------


@pytest.mark.parametrize(
    "host",
    ["2130706434", "127.2", "0177.0.0.2", "0x7f.2", "0x7F000002", "127.0.0.2.", "%31%32%37.0.0.2"],
    ids=["decimal", "short", "octal", "hex-short", "hex", "trailing-dot", "percent-escaped"],
)
async def test_numeric_spellings_of_loopback_are_refused_before_connecting(
    origin: tuple[Origin, str], host: str
) -> None:
    _, base = origin
    async with bystander("127.0.0.2") as (port, hits):
        for session in (None, aiohttp.ClientSession()):  # guarded, then a caller's plain one
            target = f"http://{host}:{port}/admin"
            error = await refusal(str(URL(f"{base}/to").with_query(target=target)), session=session)
            assert error.reason == "refused: a loopback address (127.0.0.2)"
            if session is not None:
                await session.close()
        assert hits == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://167772161/", "refused: a private address (10.0.0.1)"),
        ("http://012.0.0.1/", "refused: a private address (10.0.0.1)"),  # octal 012 = 10
        ("http://0xa.1/", "refused: a private address (10.0.0.1)"),
        ("http://0xa9.0xfe.0xa9.0xfe/", "refused: a link-local address (169.254.169.254)"),
        ("http://0/", "refused: a unspecified address (0.0.0.0)"),
        ("http://[::ffff:a00:1]/", "refused: a private address (::ffff:a00:1)"),
        ("http://[0:0:0:0:0:ffff:169.254.169.254]/", "refused: a link-local address"),
        ("http://[64:ff9b::7f00:1]/", "refused: a loopback address (64:ff9b::7f00:1)"),
        ("http://[fe80::1%25eth0]/", "refused: a link-local address (fe80::1)"),
        ("http://1.2.3.4.5/", "invalid URL host 1.2.3.4.5"),
        ("http://08.0.0.1/", "invalid URL host 08.0.0.1"),  # not octal, not decimal
        ("http://4294967296/", "invalid URL host 4294967296"),  # past 255.255.255.255
        ("http://wiki.123/", "invalid URL host wiki.123"),  # ends in a number: never a name
        ("http://93.184.216.34/", None),
        ("http://1572395042/", None),  # 93.184.216.34 written as one number: public
        ("http://example.com/", None),
    ],
)
def test_hosts_are_normalised_the_way_resolvers_read_them(url: str, reason: str | None) -> None:
    refusal_reason = UrlPolicy().refusal_for_url(URL(url))
    if reason is None:
        assert refusal_reason is None
    else:
        assert refusal_reason is not None and refusal_reason.startswith(reason)


async def test_url_allow_hosts_trusts_only_the_listed_names(origin: tuple[Origin, str]) -> None:
    _, base = origin
    port = URL(base).port
    dns = FakeDNS({"wiki.corp": "127.0.0.1", "other.corp": "127.0.0.1"})
    trusted = UrlPolicy.from_allow_list(["wiki.corp"])
    async with open_session(trusted, dns=dns) as session:
        doc = await fetch_url(
            f"http://wiki.corp:{port}/raw/README.md",
            max_bytes=LIMIT,
            policy=trusted,
            session=session,
        )
        assert doc.title == "Readme"
        with pytest.raises(SourceError) as caught:
            await fetch_url(
                f"http://other.corp:{port}/raw/README.md",
                max_bytes=LIMIT,
                policy=trusted,
                session=session,
            )
    assert caught.value.reason == "refused: resolves to a loopback address (127.0.0.1)"
    wildcard = UrlPolicy.from_allow_list(["*.corp.example", "10.2.0.0/16", " "])
    assert wildcard.allowed_networks == ("10.2.0.0/16",)
    assert wildcard.host_allowed("wiki.corp.example") and not wildcard.host_allowed("corp.example")
    assert wildcard.refusal_for_url(URL("http://10.2.3.4/")) is None
    refused = wildcard.refusal_for_url(URL("http://10.3.0.1/"))
    assert refused == "refused: a private address (10.3.0.1)"
