"""`avatarbot serve`: one process, one aiohttp server, the Slack app and the avatar service.

    server = Server(settings, store=store)        # tests pass their own store and knowledge
    await server.start()                           # binds PORT (0 = any free port)
    ...
    await server.stop()                            # graceful: see below

Socket Mode when SLACK_APP_TOKEN is set (no public URL needed), else HTTP mode: Slack posts
to `/slack/events` and bolt verifies each request's signature. Either way the same server
hosts `/healthz` (the process is up), `/readyz` (store, knowledge base and Slack auth
reachable), `/metrics` (Prometheus) and, when the avatar service is configured, its routes.

Stopping (SIGTERM): new events are refused with 503 (Slack retries them, on another replica
if there is one), the Socket Mode connection closes, answers in progress get
`SHUTDOWN_GRACE_SECONDS` to finish, the avatar service persists its jobs, then the store
closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.config import Settings, is_set
from bot.knowledge_sync import ScheduledSync
from bot.malloc import release_free_memory
from bot.serve_settings import check_settings, serving_config
from bot.slack.app import build_app, share_auth
from bot.slack.asking import AskService
from bot.slack.resuming import Resumer
from bot.slack.services import Avatar, SlackServices, web_client
from bot.slack.verification import headers_plausible, signature_valid
from bot.slack.videos import SlackVideoSink
from bot.store.base import Store
from bot.store.factory import retention_cutoff
from bot.web.headers import install_security_headers
from knowledge.answering.answer import Answerer
from knowledge.index import KnowledgeBase
from knowledge.recent import Recent

log = logging.getLogger("bot.serve")

SHUTDOWN_GRACE_SECONDS = 20.0
PURGE_EVERY_SECONDS = 3600.0
DELIVERED_REMEMBERED = 10_000  # event ids; Slack retries within minutes
AVATAR_OFF = (
    "Set HEYGEN_API_KEY and HEYGEN_AVATAR_ID (answer videos) or LIVEAVATAR_API_KEY and "
    "PUBLIC_BASE_URL (live avatar) to turn it on."
)


def features(s: Settings, avatar: Any) -> tuple[list[str], list[str]]:
    """What the start-up line lists: the features on, and each one off with why."""
    on = ["answers from the knowledge base", "/metrics", "/healthz"]
    off: list[str] = []
    if s.llm_model:
        on.insert(1, f"language model {s.llm_model}")
    else:
        off.append("language model: LLM_MODEL unset, answers are extractive")
    if s.knowledge_sync_every_hours > 0:
        on.append(f"knowledge sync every {s.knowledge_sync_every_hours:g} h")
    if avatar is None:
        why = AVATAR_OFF[0].lower() + AVATAR_OFF[1:].removesuffix(".")
        off.append(f"live avatar and answer videos: {why}")
        return on, off
    for name, reason in (
        ("live avatar", getattr(avatar, "live_reason", None)),
        ("answer videos", getattr(avatar, "video_reason", None)),
    ):
        if reason:
            off.append(f"{name}: {str(reason).rstrip('.')}")
        else:
            on.append(name)
    return on, off


def _refused() -> web.Response:
    """Every unsigned, stale or malformed request: the same fast 401, nothing logged."""
    return web.json_response({"error": "invalid request"}, status=401)


SERVICES_KEY: web.AppKey[SlackServices] = web.AppKey("services", SlackServices)


class Server:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        kb: KnowledgeBase | None = None,
        answerer: Answerer | None = None,
        avatar: Avatar | None = None,
        avatar_off_reason: str = "",
        host: str = "0.0.0.0",
    ) -> None:
        check_settings(settings)
        self.settings = settings
        self.host = host
        kb = kb or KnowledgeBase(serving_config(settings))
        self.services = SlackServices(
            settings=settings,
            kb=kb,
            answerer=answerer or Answerer.from_config(kb, settings.answer_config()),
            store=store,
            client=web_client(settings),
            avatar=avatar,
            avatar_off_reason=avatar_off_reason,
        )
        self.sink = SlackVideoSink(self.services)
        self.app: AsyncApp = build_app(self.services)
        self.socket_mode = is_set(settings.slack_app_token)
        secret = settings.slack_signing_secret
        self._signing_secret = secret.get_secret_value() if secret is not None else ""
        self.web = self._web_app()
        self._avatar_given = avatar is not None
        self._stopped = False
        self._exit = contextlib.AsyncExitStack()
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self._purger: asyncio.Task[None] | None = None
        self._syncer: asyncio.Future[None] | None = None  # KNOWLEDGE_SYNC_EVERY_HOURS
        self._resumer: asyncio.Task[None] | None = None
        self._auth_ok_until = 0.0
        self._dispatching: set[asyncio.Future[None]] = set()
        self._delivered: Recent[str, bool] = Recent(DELIVERED_REMEMBERED)  # event ids taken
        self.port = 0

    # --- the web server ----------------------------------------------------------------

    def _web_app(self) -> web.Application:
        web_app = web.Application(client_max_size=1024 * 1024)
        install_security_headers(web_app)  # CSP, nosniff, no framing on every response
        web_app[SERVICES_KEY] = self.services
        if not self.socket_mode:
            web_app.router.add_post("/slack/events", self._slack_events)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        web_app.router.add_get("/metrics", self._metrics)
        return web_app

    async def _slack_events(self, request: web.Request) -> web.Response:
        if self.services.work.closing:
            return web.json_response({"error": "shutting down"}, status=503)
        # The signature first, before the body is parsed or logged (bot.slack.verification).
        if not headers_plausible(request.headers):
            return _refused()
        body = await request.read()  # client_max_size caps it (413 beyond)
        if not await signature_valid(self._signing_secret, request.headers, body):
            return _refused()
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"),
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except Exception:  # signed, yet not UTF-8 JSON or form data: a clear 400, no traceback
            return web.json_response({"error": "malformed request"}, status=400)
        if self._acks_at_once(bolt_request):
            # An event's ack carries nothing, so Slack gets it now, before bolt's middleware
            # and the listeners run: a burst's acks never queue behind answering work.
            event_id = bolt_request.body.get("event_id")
            if not self._first_delivery(event_id):
                return web.Response(status=200)
            task = asyncio.ensure_future(self._dispatch_later(bolt_request, event_id))
            self._dispatching.add(task)
            task.add_done_callback(self._dispatching.discard)
            return web.Response(status=200)
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    @staticmethod
    def _acks_at_once(request: AsyncBoltRequest) -> bool:
        """An Events API callback (its ack is empty), already verified by `_slack_events`."""
        return request.body.get("type") == "event_callback"

    def _first_delivery(self, event_id: Any) -> bool:
        """False for an event this process has taken already (Slack's retry of an event it
        sent a moment ago): acked and dropped without bolt or the store. Other replicas'
        events are told apart by the store's claims, as before."""
        if not isinstance(event_id, str) or not event_id:
            return True
        if event_id in self._delivered:
            return False
        self._delivered.put(event_id, True)
        return True

    async def _dispatch_later(self, request: AsyncBoltRequest, event_id: Any) -> None:
        async with self.services.work.track():
            try:
                response = await self.app.async_dispatch(request)
            except Exception as exc:  # already acked: the log is the only place left to say it
                log.error("handling an acked event failed: %s", type(exc).__name__)
                self._delivered.pop(event_id)  # Slack's retry may take it
                return
        if response.status >= 400:
            log.warning("event refused after its ack: HTTP %s", response.status)
            self._delivered.pop(event_id)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        try:
            await self.services.store.ping()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"unreachable ({type(exc).__name__})"
        try:
            await self.services.kb.astats()
            checks["knowledge"] = "ok"
        except Exception as exc:
            checks["knowledge"] = f"unavailable ({type(exc).__name__})"
        try:
            if time.monotonic() >= self._auth_ok_until:
                await self.services.client.auth_test()
                self._auth_ok_until = time.monotonic() + 30
            checks["slack"] = "ok"
        except Exception as exc:
            checks["slack"] = f"auth failed ({type(exc).__name__})"
        ok = all(v == "ok" for v in checks.values()) and not self.services.work.closing
        return web.json_response({"ok": ok, "checks": checks}, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- lifecycle ---------------------------------------------------------------------

    async def _build_avatar(self) -> None:
        """The avatar service and its web routes, when a HeyGen or LiveAvatar key is set;
        otherwise text answers only, with one line naming the variables that turn it on."""
        s = self.settings
        if self._avatar_given:
            return
        if not (is_set(s.heygen_api_key) or is_set(s.liveavatar_api_key)):
            self.services.avatar_off_reason = AVATAR_OFF
            return
        from bot.avatar.service import AvatarDelivery
        from bot.heygen.clients import heygen_clients
        from bot.web.live_page import add_live_routes
        from bot.web.webhook import add_webhook_routes

        clients = await self._exit.enter_async_context(heygen_clients(s))
        delivery = AvatarDelivery(s, self.services.store, clients, self.sink)
        self.services.avatar = delivery
        reasons = [r for r in (delivery.live_reason, delivery.video_reason) if r]
        self.services.avatar_off_reason = "; ".join(reasons).capitalize() + ("." if reasons else "")
        add_live_routes(self.web, delivery.viewer)
        add_webhook_routes(self.web, delivery)

    async def start(self) -> None:
        await self.services.store.start()
        await self.services.open_connections()
        await self.services.identify()  # fails fast on a wrong token
        if self.services.auth is not None:
            share_auth(self.app, self.services.auth)
        await self._build_avatar()
        if self.services.avatar is not None:
            await self.services.avatar.start()  # type: ignore[attr-defined]
        # The model, the BM25 index and the composer load now, not on a burst's first
        # questions (a cold model costs seconds, times every question waiting on it).
        await self.services.answerer.warm()
        release_free_memory()  # what the warm-up freed (load and index temporaries)
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.settings.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.socket_mode:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            token = self.settings.slack_app_token.get_secret_value()  # type: ignore[union-attr]
            self._socket = AsyncSocketModeHandler(self.app, token)
            await self._socket.connect_async()
        self._purger = asyncio.ensure_future(self._purge_forever())
        if self.settings.knowledge_sync_every_hours > 0:
            scheduled = ScheduledSync(
                self.services.kb,
                self.services.store,
                every_hours=self.settings.knowledge_sync_every_hours,
                limits=self.settings.crawl_limits(),
            )
            self._syncer = asyncio.ensure_future(scheduled.run_forever())
        how = "Socket Mode" if self.socket_mode else "HTTP mode, Slack posts to /slack/events"
        on, off = features(self.settings, self.services.avatar)
        self._resumer = asyncio.ensure_future(self._resume(time.time()))
        log.info(
            "serving on port %s (%s). On: %s. Off: %s.",
            self.port,
            how,
            ", ".join(on),
            "; ".join(off) or "nothing",
        )

    async def _purge_forever(self) -> None:
        days = self.settings.retention_days
        while True:
            try:
                removed = await self.services.store.purge(retention_cutoff(self.settings))
                log.info("retention: purged %d rows older than %g days", removed, days)
            except Exception as exc:
                log.warning("retention purge failed: %s", type(exc).__name__)
            await asyncio.sleep(PURGE_EVERY_SECONDS)

    async def _resume(self, started: float) -> None:
        """Answers a crash left saved but unposted (bot.slack.posting): a pass now, and one
        when the youngest of them is old enough to be sure no live replica is posting it."""
        asker = Resumer(AskService(self.services))
        for wait in (0.0, self.settings.slack_resume_after_seconds):
            await asyncio.sleep(wait)
            try:
                resumed = await asker.resume(before=started)
            except Exception as exc:
                log.warning("resuming unposted answers failed: %s", type(exc).__name__)
                continue
            if resumed:
                log.info("delivered %d answer(s) the last run left unfinished", resumed)

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.services.work.closing = True
        if self._socket is not None:
            await self._socket.close_async()
        if self._dispatching:  # events acked but not yet handed to their listeners
            await asyncio.wait(self._dispatching, timeout=grace)
            await asyncio.sleep(0)  # the listeners they started begin (and are tracked)
        left = await self.services.work.drain(grace)
        if left:
            log.warning("stopped with %d answers still in progress", left)
        for task in (self._purger, self._syncer, self._resumer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.services.avatar is not None:
            await self.services.avatar.stop()  # type: ignore[attr-defined]
        await self._exit.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.services.store.close()
        await self.services.close_connections()


async def serve_until_signalled(server: Server) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    log.info("stopping: finishing answers in progress")
    await server.stop()


async def run_server(settings: Settings, kb: KnowledgeBase | None = None) -> None:
    """`avatarbot serve`: the store, the knowledge base (`kb`, opened with `serving_config`,
    or one opened here), the avatar when configured."""
    from bot.store import open_store

    server = Server(settings, store=open_store(settings), kb=kb)
    await serve_until_signalled(server)
