"""The live viewer page: `GET /live/<token>` shows the avatar, its status and the transcript.

Routes (mount with `add_live_routes(app, delivery)`; any replica can serve any link, every
piece of state is in the store):

    GET  /live/{token}                  the page (or a clear "expired" / "unknown" page)
    POST /live/{token}/session          join info: LiveKit URL + client token (no-store)
    GET  /live/{token}/events           SSE: snapshot, answers, sentences, interrupts, status
    POST /live/{token}/claim/{item}     one publisher per sentence (store.claim_speech)
    POST /live/{token}/replay/{answer}  queue an answer's sentences again
    GET  /live/static/{name}            the page's script and the vendored livekit-client

No key or token is ever in a URL, the page source or a log line: the link token only names
a scope (>= 128 bits, expiring); the LiveKit client token travels only in the body of the
POST answer, marked `Cache-Control: no-store`.

Why `livekit-client` and not `@heygen/liveavatar-web-sdk`: the vendor SDK starts the session
itself from the browser with the LiveAvatar *session token* (a server credential that can
stop or keep alive the session), and each page load would start a new billed session. The
bot starts and reuses one session per scope server-side, so the page only needs to join an
existing LiveKit room with the client token and publish the documented `agent-control`
events, which is exactly what `livekit-client` does. Pinned to 2.15.7, the version the vendor
SDK itself pins; installed by `make` from npm (see Makefile) into `bot/web/static/vendor/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web

from bot.avatar.delivery import AvatarError, AvatarLimitReached
from bot.avatar.live.speech import answer_sentences, item_json
from bot.heygen.errors import HeyGenError
from bot.store.base import LiveLink, ScopeAnswer

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
TRANSCRIPT_ANSWERS = 50  # the newest answers a page opens with
STATIC = resources.files("bot.web") / "static"
STATIC_FILES = {
    "live.js": "application/javascript",
    "live.css": "text/css",
    "livekit-client.umd.js": "application/javascript",
}
DELIVERY_KEY: web.AppKey[Any] = web.AppKey("avatar_delivery", object)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def add_live_routes(app: web.Application, delivery: Any) -> None:
    """Mount the viewer page on `app`; `delivery` is a started `AvatarDelivery`."""
    app[DELIVERY_KEY] = delivery
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


def _gone_page(link: LiveLink | None) -> web.Response:
    if link is None:
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
        """<main class="notice" id="notice" data-kind="expired">
<h1>This live link has expired</h1>
<p>Live links last a day. Ask the bot your question again to get a new one.</p>
</main>""",
        status=410,
    )


async def _link(request: web.Request) -> tuple[Any, LiveLink | None, bool]:
    delivery = request.app[DELIVERY_KEY]
    link = await delivery.resolve_link(request.match_info["token"])
    ok = link is not None and not link.expired(delivery.clock())
    if ok and delivery.live is None and request.method != "GET":
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "The live avatar is turned off."}),
            content_type="application/json",
        )
    return delivery, link, ok


async def _page(request: web.Request) -> web.Response:
    delivery, link, ok = await _link(request)
    if not ok:
        return _gone_page(link)
    if delivery.live is None:
        return _shell(
            "Live avatar off",
            """<main class="notice" id="notice" data-kind="off">
<h1>The live avatar is turned off</h1>
<p>The bot's operator has switched live answers off; the answers are in Slack.</p>
</main>""",
            status=503,
        )
    body = """<main class="live">
<header><h1>Avatar answers</h1>
<span id="status" class="status" data-status="connecting">Connecting…</span></header>
<section class="stage"><video id="avatar" autoplay playsinline></video>
<audio id="voice" autoplay></audio>
<button id="rejoin" hidden>Watch here</button></section>
<section class="transcript"><h2>Transcript</h2><ol id="answers"></ol>
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


async def _session(request: web.Request) -> web.Response:
    delivery, link, ok = await _link(request)
    if not ok:
        return _error(410 if link else 404, "This live link has expired or is not valid.")
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return _error(400, "The request body must be JSON.")
    gone = body.get("gone") if isinstance(body, dict) else None
    try:
        session, publisher = await delivery.live.viewer_session(
            link.scope, gone if isinstance(gone, str) else None
        )
    except AvatarLimitReached as exc:
        return _error(429, str(exc))
    except AvatarError as exc:
        return _error(503, str(exc))
    except HeyGenError as exc:
        log.warning("viewer session for a live link failed: %s", exc)
        return _error(503, "The avatar service is not answering right now; retrying shortly.")
    return web.json_response(
        {
            "session_id": session.session_id,
            "livekit_url": session.livekit_url,
            "token": session.access_token.get_secret_value(),
            "publisher": publisher,
        },
        headers=NO_STORE,
    )


async def _claim(request: web.Request) -> web.Response:
    delivery, link, ok = await _link(request)
    if not ok:
        return _error(410, "This live link has expired.")
    try:
        item_id = int(request.match_info["item"])
    except ValueError:
        return _error(400, "Unknown sentence.")
    pending = {i.id for i in await delivery.store.pending_speech(link.scope)}
    if item_id not in pending:
        return web.json_response({"claimed": False}, headers=NO_STORE)
    claimed = await delivery.store.claim_speech(item_id, f"viewer:{request.remote}")
    return web.json_response({"claimed": claimed}, headers=NO_STORE)


async def _replay(request: web.Request) -> web.Response:
    delivery, link, ok = await _link(request)
    if not ok:
        return _error(410, "This live link has expired.")
    try:
        count = await delivery.live.replay(link.scope, request.match_info["answer"])
    except AvatarError as exc:
        return _error(429 if isinstance(exc, AvatarLimitReached) else 503, str(exc))
    if not count:
        return _error(404, "That answer is no longer available to replay.")
    return web.json_response({"queued": count}, headers=NO_STORE)


# --- server-sent events ---------------------------------------------------------------------


def entry_json(item: ScopeAnswer) -> dict[str, Any]:
    """One transcript entry: the saved answer (question, text, sources) once the chat
    surface saved it, else the sentences the avatar speaks."""
    record = item.answer
    entry: dict[str, Any] = {
        "answer_id": item.answer_id,
        "question": "",
        "text": " ".join(item.sentences),
        "sources": [],
    }
    if record is not None:
        entry.update(
            question=record.question,
            text=record.spoken or record.text,
            sources=[
                {"title": s.get("title") or s.get("link", ""), "link": s.get("link", "")}
                for s in record.sources
            ],
        )
    return entry


async def answer_json(delivery: Any, scope: str, answer_id: str) -> dict[str, Any]:
    """The entry for an answer just announced on the bus (read from the store)."""
    sentences = await answer_sentences(delivery.store, scope, answer_id)
    record = await delivery.store.get_answer(answer_id)
    return entry_json(ScopeAnswer(answer_id=answer_id, answer=record, sentences=sentences))


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(request: web.Request) -> web.StreamResponse:
    delivery, link, ok = await _link(request)
    if not ok:
        return _error(410 if link else 404, "This live link has expired or is not valid.")
    live = delivery.live
    if live is None:
        return _error(503, "The live avatar is turned off.")
    scope = link.scope
    queue = delivery.bus.subscribe(scope)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        record = await delivery.store.get_live_session(scope)
        # From the shared store, not this process: a replica that started later, or never
        # handled the question, shows the same transcript.
        transcript = await delivery.store.scope_answers(scope, TRANSCRIPT_ANSWERS)
        answers = [entry_json(a) for a in transcript]
        pending = [item_json(i) for i in await delivery.store.pending_speech(scope)]
        await response.write(
            _sse(
                "snapshot",
                {
                    "answers": answers,
                    "pending": pending,
                    "session_id": record.session_id if record and record.state == "live" else None,
                },
            )
        )
        await live.viewer_heartbeat(scope)
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                await live.viewer_heartbeat(scope)
                continue
            kind = event["kind"]
            if kind == "answer":
                payload = await answer_json(delivery, scope, event["answer_id"])
                await response.write(_sse("answer", payload))
            elif kind in ("speech", "interrupt", "session", "ended"):
                data = {k: v for k, v in event.items() if k not in ("origin", "scope", "eid")}
                await response.write(_sse(kind, data))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        delivery.bus.unsubscribe(scope, queue)
        with contextlib.suppress(Exception):
            await response.write_eof()
    return response
