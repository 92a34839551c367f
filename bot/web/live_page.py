"""The live viewer page: `GET /live/<token>` shows the avatar, its captions and the answers.

Routes (mount with `add_live_routes(app, viewer)`; any replica can serve any link, every
piece of state is in the store). The routes call only `bot.avatar.live.viewer.ViewerApi`:

    GET  /live/{token}                  the page (or a clear "expired" / "unknown" page)
    POST /live/{token}/session          join info: LiveKit URL + client token (no-store)
    GET  /live/{token}/events           SSE: snapshot, answers, sentences, interrupts, status
    POST /live/{token}/claim/{item}     one publisher per sentence (store.claim_speech)
    POST /live/{token}/replay/{answer}  queue an answer's sentences again (throttled)
    GET  /live/static/{name}            the page's script, styles and the vendored livekit-client

No key or token is ever in a URL, the page source or a log line: the link token only names
a scope (>= 128 bits, expiring); the LiveKit client token travels only in the body of the
POST answer, marked `Cache-Control: no-store`. POSTs from another site's page are refused
(`Origin` must be this server's), so a link seen by a stranger's page cannot start a billed
session. Every response of the web server carries CSP (`frame-ancestors 'none'`), nosniff
and no-referrer headers.

Why `livekit-client` and not `@heygen/liveavatar-web-sdk`: the vendor SDK's
`LiveAvatarSession(sessionAccessToken)` *starts* the session itself from the browser
(`POST /v1/sessions/start` with the session token, a credential that can also stop it), so
every page load would start a new billed session, and the page would hold a server
credential. The bot starts and reuses one session per scope server-side and hands the page
only the room's client token, so the page joins the existing LiveKit room and does what the
SDK does inside it: wait for the avatar participant (`heygen`), publish `avatar.speak_text`
on `agent-control`, read `avatar.speak_started/ended` and `session.stopped` on
`agent-response`. tests/test_liveavatar_sdk.py checks these names against the SDK's own
package. Pinned to livekit-client 2.15.7, the version the vendor SDK itself pins; installed
by `make` from npm (see Makefile) into `bot/web/static/vendor/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.avatar.delivery import AvatarError, AvatarLimitReached
from bot.avatar.live.events import PAGE_EVENTS, BusEvent
from bot.avatar.live.viewer import HEARTBEAT_SECONDS, LinkState, StreamRefused, ViewerApi
from bot.failures import report
from bot.heygen.errors import HeyGenError
from bot.web.headers import install_security_headers

log = logging.getLogger(__name__)

STATIC = resources.files("bot.web") / "static"
STATIC_FILES = {
    "live.js": "application/javascript",
    "live.css": "text/css",
    "poster.svg": "image/svg+xml",
    "livekit-client.umd.js": "application/javascript",
}
VIEWER_KEY: web.AppKey[ViewerApi] = web.AppKey("avatar_viewer", ViewerApi)
NO_STORE = {"Cache-Control": "no-store"}
CLOSED_CHECK_SECONDS = 2.0  # how soon a stream notices its page left (frees its cap place)


def add_live_routes(app: web.Application, viewer: ViewerApi) -> None:
    """Mount the viewer page on `app` (and security headers on every response of it)."""
    app[VIEWER_KEY] = viewer
    install_security_headers(app)
    r = app.router
    r.add_get("/live/static/{name}", _static)
    r.add_get("/live/{token}", _page)
    r.add_post("/live/{token}/session", _session)
    r.add_get("/live/{token}/events", _events)
    r.add_post("/live/{token}/claim/{item}", _claim)
    r.add_post("/live/{token}/replay/{answer}", _replay)


# --- page -----------------------------------------------------------------------------------


def _shell(title: str, body: str, status: int = 200) -> web.Response:
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="/live/static/live.css">
</head><body>{body}</body></html>"""
    return web.Response(text=page, content_type="text/html", status=status, headers=NO_STORE)


def ttl_words(hours: float) -> str:
    """LIVE_LINK_TTL_HOURS in words: "a day", "2 hours", "90 minutes", "3 days"."""
    if hours < 1:
        minutes = max(1, round(hours * 60))
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    if hours % 24 == 0:
        days = int(hours // 24)
        return "a day" if days == 1 else f"{days} days"
    if hours == 1:
        return "an hour"
    return f"{hours:g} hours"


def _gone_page(state: LinkState, ttl_hours: float) -> web.Response:
    if state.link is None:
        return _shell(
            "Unknown live link",
            """<main class="notice" id="notice" data-kind="unknown">
<h1>This live link is not valid</h1>
<p>Check that you copied the whole link, or ask the bot your question again for a new one.</p>
</main>""",
            status=404,
        )
    return _shell(
        "Live link expired",
        f"""<main class="notice" id="notice" data-kind="expired">
<h1>This live link has expired</h1>
<p>Live links last {ttl_words(ttl_hours)}. Ask the bot your question again to get a new one.</p>
</main>""",
        status=410,
    )


async def _link(request: web.Request) -> tuple[ViewerApi, LinkState]:
    viewer = request.app[VIEWER_KEY]
    state = await viewer.resolve(request.match_info["token"])
    if state.ok and not viewer.enabled and request.method != "GET":
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "The live avatar is turned off."}),
            content_type="application/json",
        )
    return viewer, state


async def _page(request: web.Request) -> web.Response:
    viewer, state = await _link(request)
    if not state.ok:
        return _gone_page(state, viewer.link_ttl_hours)
    if not viewer.enabled:
        return _shell(
            "Live avatar off",
            """<main class="notice" id="notice" data-kind="off">
<h1>The live avatar is turned off</h1>
<p>The bot's operator has switched live answers off; the answers are in Slack.</p>
</main>""",
            status=503,
        )
    ttl = html.escape(ttl_words(viewer.link_ttl_hours))
    body = f"""<main class="live">
<header><h1>Avatar answers</h1>
<span id="status" class="status" data-status="connecting" role="status">Connecting…</span></header>
<section class="stage" id="stage">
<video id="avatar" autoplay playsinline muted poster="/live/static/poster.svg"></video>
<audio id="voice" autoplay></audio>
<div id="poster" class="poster"><div class="spinner" aria-hidden="true"></div>
<p id="poster-text">Connecting to the avatar…</p></div>
<p id="caption" class="caption" aria-live="polite" hidden></p>
<button id="sound" class="control primary sound" type="button">
<span aria-hidden="true">🔊</span> Click to start sound</button>
<button id="rejoin" class="control primary rejoin" type="button" hidden>
Reconnect the avatar</button>
</section>
<p id="alert" class="alert" role="alert" hidden></p>
<section class="transcript"><h2>Answers</h2>
<p class="hint">Newest first. This link works for {ttl} after it was made.</p>
<ol id="answers"></ol>
<p id="empty" class="empty">Answers appear here as the bot gives them.</p></section>
</main>
<script src="/live/static/livekit-client.umd.js"></script>
<script src="/live/static/live.js"></script>"""
    return _shell("Avatar answers (live)", body)


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = STATIC_FILES.get(name)
    if kind is None:
        raise web.HTTPNotFound()
    path = STATIC / ("vendor/" + name if name.startswith("livekit") else name)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        log.error("%s is missing: run `make` to install the viewer page's npm packages", name)
        raise web.HTTPNotFound() from None
    return web.Response(
        body=data, content_type=kind, headers={"Cache-Control": "public, max-age=3600"}
    )


# --- json endpoints -------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=NO_STORE)


def _foreign_origin(request: web.Request, viewer: ViewerApi) -> bool:
    """A browser POST from another site's page (browsers always send `Origin` on POST;
    a request without one is not a browser's cross-site request, and still needs the link)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    allowed = {f"{request.scheme}://{request.host}"}
    if viewer.settings.public_base_url:
        base = urlsplit(viewer.settings.public_base_url)
        allowed.add(f"{base.scheme}://{base.netloc}")
    return origin not in allowed


async def _post_link(request: web.Request) -> tuple[ViewerApi, LinkState] | web.Response:
    viewer, state = await _link(request)
    if _foreign_origin(request, viewer):
        return _error(403, "This live page can only be used from the bot's own site.")
    if not state.ok:
        return _error(410 if state.link else 404, "This live link has expired or is not valid.")
    return viewer, state


async def _session(request: web.Request) -> web.Response:
    checked = await _post_link(request)
    if isinstance(checked, web.Response):
        return checked
    viewer, state = checked
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return _error(400, "The request body must be JSON.")
    gone = body.get("gone") if isinstance(body, dict) else None
    try:
        join = await viewer.join(state.scope, gone if isinstance(gone, str) else None)
    except AvatarLimitReached as exc:
        return _error(429, str(exc))
    except AvatarError as exc:
        return _error(503, str(exc))
    except HeyGenError as exc:
        return _error(503, report(exc, "a viewer session for a live link", log).text)
    return web.json_response(join.model_dump(mode="json"), headers=NO_STORE)


async def _claim(request: web.Request) -> web.Response:
    checked = await _post_link(request)
    if isinstance(checked, web.Response):
        return checked
    viewer, state = checked
    try:
        item_id = int(request.match_info["item"])
    except ValueError:
        return _error(400, "Unknown sentence.")
    claimed = await viewer.claim(state.scope, item_id, f"viewer:{request.remote}")
    return web.json_response({"claimed": claimed}, headers=NO_STORE)


async def _replay(request: web.Request) -> web.Response:
    checked = await _post_link(request)
    if isinstance(checked, web.Response):
        return checked
    viewer, state = checked
    try:
        count = await viewer.replay(state.scope, request.match_info["answer"])
    except AvatarError as exc:
        return _error(429 if isinstance(exc, AvatarLimitReached) else 503, str(exc))
    if not count:
        return _error(404, "That answer is no longer available to replay.")
    return web.json_response({"queued": count}, headers=NO_STORE)


# --- server-sent events ---------------------------------------------------------------------


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(request: web.Request) -> web.StreamResponse:
    viewer, state = await _link(request)
    if not state.ok:
        return _error(410 if state.link else 404, "This live link has expired or is not valid.")
    if not viewer.enabled:
        return _error(503, "The live avatar is turned off.")
    assert state.link is not None
    token, client, scope = state.link.token, request.remote or "?", state.scope
    try:
        viewer.check_stream(token, client)
    except StreamRefused as exc:
        return _error(exc.status, str(exc))
    if request.headers.get("Accept", "").startswith("application/json"):
        # The page asks this way, after its stream failed, whether (and why) it may not
        # reconnect: EventSource itself cannot read a refusal's status or text.
        return web.json_response({"ok": True}, headers=NO_STORE)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    expires_at = state.link.expires_at
    loop = asyncio.get_running_loop()
    with viewer.watching(token, client, scope) as queue:
        try:
            await response.prepare(request)
            snapshot = await viewer.snapshot(scope)
            await response.write(_sse("snapshot", snapshot.model_dump(mode="json")))
            await viewer.heartbeat(scope)
            beat_at = loop.time()
            while True:
                left = expires_at - viewer.clock()
                if left <= 0:  # the link expired while open: the stream ends with it
                    await response.write(_sse("expired", {}))
                    break
                if request.transport is None or request.transport.is_closing():
                    break  # the page went away: free its place now, not at the next beat
                try:
                    event = await asyncio.wait_for(queue.get(), min(CLOSED_CHECK_SECONDS, left))
                except TimeoutError:
                    if loop.time() - beat_at >= HEARTBEAT_SECONDS:
                        beat_at = loop.time()
                        await response.write(b": heartbeat\n\n")
                        await viewer.heartbeat(scope)
                    continue
                kind = event["kind"]
                if kind == BusEvent.ANSWER:
                    entry = await viewer.entry(scope, event["answer_id"])
                    await response.write(_sse(kind, entry.model_dump(mode="json")))
                elif kind in PAGE_EVENTS:
                    data = {k: v for k, v in event.items() if k not in ("origin", "scope", "eid")}
                    await response.write(_sse(kind, data))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await response.write_eof()
    return response
