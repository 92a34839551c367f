"""Bad input: property-based tests over the URL guard, the document parsers and the webhook
verifier, and hostile documents that must be skipped with a reason in bounded time and memory.

Nothing here asserts on speed: a generous per-example deadline and a per-file cap only catch
hangs (a parser that never returns). Measured figures are printed (`pytest -s`).
"""

from __future__ import annotations

import io
import ipaddress
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

import pytest
from aiohttp import web
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.heygen.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookEvent,
    WebhookVerificationError,
    sign,
    verify_webhook,
)
from knowledge.sources import SourceError, UrlPolicy, fetch_url, parse_bytes
from knowledge.sources.limits import MAX_HTML_DEPTH, MAX_PDF_PAGES
from tests.fakes.server import serve
from tests.fixtures.adversarial import (
    deeply_nested_html,
    gzip_bomb_html,
    pdf_with_page_tree,
    zip_bomb_docx,
)
from tests.fixtures.documents import handbook_pdf

T = TypeVar("T")
MB = 1024 * 1024
HANG_CAP_SECONDS = 60.0  # far above any real parse: only a hang trips it
FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every run: CI never flakes on a new draw
)

# --- URL guard -----------------------------------------------------------------------------


def spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Every notation inet_aton and the WHATWG URL parser accept for one IPv4 address."""
    n = int(ip)
    a, b, c, d = ip.packed
    return [
        str(ip),
        str(n),
        hex(n),
        f"0{n:o}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"{ip}.",
        f"[::ffff:{ip}]",
        f"[64:ff9b::{ip}]",
    ]


@FUZZ
@given(st.integers(0, 2**32 - 1))
@example(int(ipaddress.IPv4Address("127.0.0.1")))
@example(int(ipaddress.IPv4Address("169.254.169.254")))
def test_every_spelling_of_an_internal_address_is_refused(value: int) -> None:
    ip = ipaddress.IPv4Address(value)
    internal = not ip.is_global
    policy = UrlPolicy()
    for host in spellings(ip):
        reason = policy.refusal_for_url(URL(f"http://{host}/"))
        if internal:
            assert reason is not None and reason.startswith("refused"), (host, reason)
        else:
            assert reason is None, (host, reason)


@FUZZ
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
@example("0x")
@example("1.2.3.4.5")
@example("[::ffff:0177.0.0.1]")
def test_the_guard_answers_any_host_without_crashing(host: str) -> None:
    try:
        url = URL.build(scheme="http", host=host, encoded=False)
    except (ValueError, TypeError):
        assume(False)  # yarl refuses it before we ever see it
        return
    reason = UrlPolicy().refusal_for_url(url)
    assert reason is None or isinstance(reason, str)


# --- document parsers ----------------------------------------------------------------------

FORMATS = ["x.md", "x.txt", "x.rst", "x.html", "x.pdf", "x.docx"]


def _valid_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Handbook", level=1)
    document.add_paragraph("Rotate the bot token every ninety days.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


VALID = {
    "x.md": b"# Title\n\nSome *text* here.\n",
    "x.txt": b"Plain text.\n",
    "x.rst": b"Title\n=====\n\nText ``code``.\n",
    "x.html": b"<html><head><title>T</title></head><body><h1>T</h1><p>Text</p></body></html>",
    "x.pdf": handbook_pdf(),
    "x.docx": _valid_docx(),
}


def parses_or_skips(data: bytes, filename: str) -> None:
    """The contract: a Document, or a SourceError with a reason, and nothing else."""
    try:
        doc = parse_bytes(data, filename, max_bytes=MB)
    except SourceError as exc:
        assert exc.reason and exc.source == filename
    else:
        assert doc.text.strip()


@pytest.mark.parametrize("filename", FORMATS)
@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_escape_as_another_exception(filename: str, data: bytes) -> None:
    parses_or_skips(data, filename)


@pytest.mark.parametrize("filename", FORMATS)
@FUZZ
@given(data=st.data())
def test_corrupted_real_files_never_escape_as_another_exception(
    filename: str, data: st.DataObject
) -> None:
    original = bytearray(VALID[filename])
    cut = data.draw(st.integers(1, len(original)), label="truncate at")
    damaged = original[:cut]
    for _ in range(data.draw(st.integers(0, 8), label="flips")):
        where = data.draw(st.integers(0, len(damaged) - 1))
        damaged[where] = data.draw(st.integers(0, 255))
    parses_or_skips(bytes(damaged), filename)


# --- webhook verifier ----------------------------------------------------------------------

SECRET = "whsec_property_secret_0001"


@FUZZ
@given(
    body=st.binary(max_size=2048),
    signature=st.one_of(st.none(), st.text(max_size=80)),
    stamp=st.one_of(st.none(), st.text(max_size=20)),
)
def test_the_verifier_only_accepts_or_refuses(
    body: bytes, signature: str | None, stamp: str | None
) -> None:
    headers = {
        k: v
        for k, v in {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp}.items()
        if v is not None
    }
    try:
        event = verify_webhook(body, headers, SECRET, now=1000)
    except WebhookVerificationError as exc:
        assert SECRET not in exc.reason
    else:
        assert isinstance(event, WebhookEvent)


@FUZZ
@given(body=st.binary(min_size=1, max_size=512), flip=st.data())
def test_any_change_to_a_signed_body_is_refused(body: bytes, flip: st.DataObject) -> None:
    signature = sign(body, SECRET)
    where = flip.draw(st.integers(0, len(body) - 1))
    tampered = bytearray(body)
    tampered[where] ^= flip.draw(st.integers(1, 255))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(bytes(tampered), {SIGNATURE_HEADER: signature}, SECRET)


# --- hostile documents ---------------------------------------------------------------------


@contextmanager
def measured(label: str) -> Iterator[None]:
    """Print the time and peak Python memory the block used (figures, not assertions)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"\n{label}: {time.perf_counter() - started:.2f} s, peak {peak / MB:.1f} MB")
        measured.peak = peak  # type: ignore[attr-defined]


def within_cap(work: Callable[[], T]) -> T:
    """Run `work` in a thread and give up on it after HANG_CAP_SECONDS (a hang detector)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result(timeout=HANG_CAP_SECONDS)


def skipped_reason(data: bytes, filename: str, *, max_bytes: int = 20 * MB) -> str:
    with pytest.raises(SourceError) as caught:
        within_cap(lambda: parse_bytes(data, filename, max_bytes=max_bytes))
    return caught.value.reason


def test_a_zip_bomb_docx_is_skipped_before_it_inflates() -> None:
    bomb = zip_bomb_docx(unpacked_mb=100)
    members = zipfile.ZipFile(io.BytesIO(bomb)).infolist()
    assert sum(m.file_size for m in members) > 100 * MB > 100 * len(bomb)
    with measured("zip-bomb DOCX (100 MB inflated)"):
        reason = skipped_reason(bomb, "bomb.docx")
    assert "zip bomb" in reason
    assert measured.peak < 20 * MB  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pdf", "label"),
    [
        (lambda: pdf_with_page_tree(claimed=10**9), "a root claiming 10^9 pages"),
        (lambda: pdf_with_page_tree(leaves=MAX_PDF_PAGES + 1, claimed=1), "a lying /Count"),
        (lambda: pdf_with_page_tree(depth=5000), "5000 nested /Pages nodes"),
    ],
    ids=["claims-a-billion", "lying-count", "deep-tree"],
)
def test_a_pdf_with_a_huge_page_tree_is_skipped(pdf: Callable[[], bytes], label: str) -> None:
    data = pdf()
    with measured(f"PDF page tree, {label} ({len(data) / MB:.1f} MB file)"):
        reason = skipped_reason(data, "tree.pdf")
    assert "page limit" in reason or "corrupt" in reason
    assert measured.peak < 400 * MB  # type: ignore[attr-defined]


def test_deeply_nested_html_is_skipped_with_a_reason() -> None:
    data = deeply_nested_html(100_000)
    with measured("HTML nested 100,000 deep"):
        reason = skipped_reason(data, "deep.html")
    assert reason == f"HTML nested more than {MAX_HTML_DEPTH} levels deep"
    assert measured.peak < 50 * MB  # type: ignore[attr-defined]
    shallow = deeply_nested_html(MAX_HTML_DEPTH - 10).replace(b"hello", b"hello world")
    assert "hello world" in parse_bytes(shallow, "ok.html", max_bytes=MB).text


async def test_an_html_page_inflating_to_50_mb_is_cut_off_at_the_limit() -> None:
    compressed = gzip_bomb_html(unpacked_mb=50)
    served: list[int] = []

    async def bomb(request: web.Request) -> web.Response:
        served.append(len(compressed))
        return web.Response(
            body=compressed, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
        )

    app = web.Application()
    app.router.add_get("/bomb.html", bomb)
    policy = UrlPolicy(allowed_networks=("127.0.0.1/32",))
    async with serve(app) as base:
        label = f"gzip bomb over HTTP ({len(compressed) // 1024} KB -> 50 MB)"
        with measured(label), pytest.raises(SourceError) as caught:
            await fetch_url(f"{base}/bomb.html", max_bytes=MB, policy=policy)
    assert served and caught.value.reason == "too large: over the 1 MB limit"
    assert measured.peak < 20 * MB  # type: ignore[attr-defined]
