"""A loopback Slack: the Web API methods the bot calls, its file hosts, and Socket Mode.

Point the real `slack_sdk` client at it with `SLACK_API_URL=<base_url>/api/`. Methods answer
Slack's documented JSON (`{"ok": true, ...}` / `{"ok": false, "error": "..."}`,
https://docs.slack.dev/reference/methods): chat.postMessage/update/postEphemeral,
chat.startStream/appendStream/stopStream, assistant.threads.setStatus/setSuggestedPrompts/
setTitle, views.publish/open, chat.getPermalink, message metadata, reactions.add,
conversations.replies, users.info, auth.test, files.info, files.getUploadURLExternal + the
upload URL + files.completeUploadExternal, apps.connections.open (Socket Mode), plus
`response_url` posts for slash commands and `url_private` downloads of shared files.

Every call is recorded (`slack.calls(method)`); faults per method name come from
`tests.fakes.faults` (e.g. `faults.add("chat.postMessage", Fault.rate_limited("1"))`) and
answer in Slack's envelope (`{"ok": false, "error": "ratelimited"}`).

Socket Mode: `slack.push(envelope)` sends an envelope to the connected client;
`await slack.acked(envelope_id)` waits for its ack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.faults import Faults, install_faults

BOT_TOKEN = "xoxb-test-bot-token-0000"
APP_TOKEN = "xapp-test-app-token-0000"
SIGNING_SECRET = "test-signing-secret-0000"
TEAM = "T0TEAM"
BOT_USER = "UBOT"
BOT_ID = "BBOT"


def slack_error_body(status: int, code: int | str | None, message: str) -> dict[str, Any]:
    error = "ratelimited" if status == 429 else (str(code) if code else "internal_error")
    return {"ok": False, "error": error}


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_bodies: dict[str, bytes] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> msgs
    uploads: dict[str, bytes] = field(default_factory=dict)  # file_id -> uploaded bytes
    redirects: dict[str, str] = field(default_factory=dict)  # file_id -> Location (302)
    responses: list[dict[str, Any]] = field(default_factory=list)  # response_url posts
    refuse_streaming: bool = False  # chat.startStream answers an error (old workspace)
    faults: Faults = field(default_factory=Faults)
    log: list[Call] = field(default_factory=list)
    base_url: str = ""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    socket_connected: asyncio.Event = field(default_factory=asyncio.Event)
    # method -> event: apply the call, then hold its answer until the event is set (a crash
    # between a call's effect and the caller learning of it)
    hold_after: dict[str, asyncio.Event] = field(default_factory=dict)
    # thread_ts -> monotonic times at which a finished bot message (blocks set) appeared in it
    finished: dict[str, list[float]] = field(default_factory=dict)
    # channel id -> conversations.info's `channel` (name, is_private, is_member); channels not
    # listed here behave as public channels the bot is in
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> published Home
    modals: list[dict[str, Any]] = field(default_factory=list)  # views.open, in order
    prompts: list[dict[str, Any]] = field(default_factory=list)  # setSuggestedPrompts calls
    titles: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, thread) -> title
    _triggers_used: set[str] = field(default_factory=set)
    # thread_ts -> monotonic time at which the bot's first message (streamed or posted)
    # appeared in it: when a person sees the answer start
    started: dict[str, float] = field(default_factory=dict)

    # --- setup -------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        admin: bool = False,
        owner: bool = False,
        bot: bool = False,
    ) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM,
            "name": name.lower(),
            "real_name": name,
            "is_admin": admin,
            "is_owner": owner,
            "is_bot": bot,
            "profile": {"display_name": name, "real_name": name},
        }

    def add_file(
        self,
        file_id: str,
        name: str,
        body: bytes,
        *,
        user: str,
        filetype: str = "text",
        size: int | None = None,
        host: str | None = None,
    ) -> dict[str, Any]:
        """A file shared in Slack; `url_private` points at this server unless `host`."""
        base = host or self.base_url
        info = {
            "id": file_id,
            "name": name,
            "title": name,
            "filetype": filetype,
            "mimetype": "application/octet-stream",
            "size": len(body) if size is None else size,
            "user": user,
            "url_private": f"{base}/files-pri/{TEAM}-{file_id}/{name}",
            "url_private_download": f"{base}/files-pri/{TEAM}-{file_id}/download/{name}",
            # https://docs.slack.dev/reference/objects/file-object: where a person opens it
            "permalink": f"https://fake.slack.com/files/{user}/{file_id}/{name}",
        }
        self.files[file_id] = info
        self.file_bodies[file_id] = body
        return info

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        ts: str,
        thread_ts: str | None = None,
        bot: bool = False,
    ) -> None:
        msg: dict[str, Any] = {"type": "message", "text": text, "user": user, "ts": ts}
        if thread_ts:
            msg["thread_ts"] = thread_ts
        if bot:
            msg["bot_id"] = BOT_ID
        self.messages.setdefault(channel, []).append(msg)

    def add_channel(
        self, channel: str, name: str, *, private: bool = False, member: bool = True
    ) -> None:
        self.channels[channel] = {
            "id": channel,
            "name": name,
            "is_channel": not private,
            "is_group": False,
            "is_private": private,
            "is_member": member,
        }

    def delete_message(self, channel: str, ts: str) -> None:
        self.messages[channel] = [m for m in self.messages.get(channel, []) if m["ts"] != ts]

    # --- reading what the bot did -----------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        return [c for c in self.log if method is None or c.method == method]

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted or finished streaming, in order."""
        return [
            m
            for ch, msgs in self.messages.items()
            for m in msgs
            if m.get("bot_id") == BOT_ID
            and m.get("final", True)
            and (channel is None or ch == channel)
        ]

    async def wait_for(self, predicate: Any, within: float = 20.0) -> Any:
        """Wait until `predicate()` is truthy (re-checked after every call); return it."""
        async with asyncio.timeout(within):
            async with self.changed:
                while not (result := predicate()):
                    await self.changed.wait()
                return result

    # --- the server --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        # One named route per Web API method, so faults can target one method by name.
        for attr in dir(self):
            if attr.startswith("_m_"):
                method = attr[3:].replace("_", ".")
                app.router.add_post(f"/api/{method}", self._api, name=method)
                app.router.add_get(f"/api/{method}", self._api, name=f"{method}:get")
        app.router.add_post("/upload/{file_id}", self._upload, name="upload")
        app.router.add_get("/files-pri/{key}/{rest:.*}", self._download, name="download")
        app.router.add_post("/response/{id}", self._response, name="response_url")
        app.router.add_get("/link", self._socket, name="socket")
        install_faults(app, self.faults, error_body=slack_error_body)
        return app

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _api(self, request: web.Request) -> web.Response:
        method = request.path.rsplit("/", 1)[1]
        args = await _arguments(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        self.log.append(Call(method, args, token))
        try:
            expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
            if token != expected:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return web.json_response({"ok": False, "error": "unknown_method"})
            result = await handler(args)
            hold = self.hold_after.get(method)
            if hold is not None:
                # The call took effect; its answer never comes (the caller is killed here).
                await self._notify()
                await hold.wait()
            return web.json_response(result)
        finally:
            await self._notify()

    # --- methods -----------------------------------------------------------------------

    async def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "avatarbot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
        }

    async def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args.get("user", ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _store(self, channel: str, msg: dict[str, Any]) -> dict[str, Any]:
        msg.setdefault("ts", self._next_ts())
        msg["bot_id"] = BOT_ID
        msg["user"] = BOT_USER
        self.messages.setdefault(channel, []).append(msg)
        if msg.get("thread_ts") and msg.get("type") == "message":
            self.started.setdefault(msg["thread_ts"], time.monotonic())
        return msg

    def _finished(self, msg: dict[str, Any], *, stopped: bool = False) -> None:
        if stopped or msg.get("blocks"):
            thread = msg.get("thread_ts") or msg["ts"]
            self.finished.setdefault(thread, []).append(time.monotonic())

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    async def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not (args.get("text") or args.get("blocks")):
            return {"ok": False, "error": "no_text"}
        msg = self._store(
            args["channel"],
            {
                "type": "message",
                "text": args.get("text", ""),
                "blocks": _blocks(args),
                "thread_ts": args.get("thread_ts"),
                **_metadata(args),
            },
        )
        self._finished(msg)
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"], "message": msg}

    async def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._store(
            args["channel"],
            {
                "type": "ephemeral",
                "text": args.get("text", ""),
                "blocks": _blocks(args),
                "to": args.get("user"),
                "thread_ts": args.get("thread_ts"),
            },
        )
        return {"ok": True, "message_ts": self._next_ts()}

    async def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(args.get("channel", ""), args.get("ts", ""))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if msg.get("streaming"):
            # Undocumented; the harsher reading: a message still streaming is only changed
            # through the stream (append/stop), chat.update once the stream has ended
            # (https://github.com/slackapi/python-slack-sdk/pull/1880 uses it after expiry).
            return {"ok": False, "error": "cant_update_message"}
        msg["text"] = args.get("text", msg.get("text", ""))
        msg.update(_metadata(args))
        if "blocks" in args:
            msg["blocks"] = _blocks(args)
            self._finished(msg)
        msg.update(_metadata(args))
        msg["edits"] = msg.get("edits", 0) + 1
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"]}

    def expire_streams(self) -> int:
        """Slack ends a stream a few minutes after it started or last grew: appendStream and
        stopStream then answer `message_not_in_streaming_state` and the message stays with
        the text it had (https://github.com/slackapi/python-slack-sdk/issues/1859). Ends
        every open stream now; returns how many."""
        ended = 0
        for msgs in self.messages.values():
            for msg in msgs:
                if msg.get("streaming"):
                    msg.update(streaming=False, final=True)
                    ended += 1
        return ended

    # https://docs.slack.dev/reference/methods/chat.startStream (+ appendStream, stopStream).
    # startStream takes no `metadata` (only stopStream does): anything sent is not kept.
    async def _m_chat_startStream(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.refuse_streaming:
            return {"ok": False, "error": "not_allowed_token_type"}
        if not args.get("channel") or not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        if args.get("channel", "").startswith("C") and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            return {"ok": False, "error": "missing_recipient_user_id"}
        msg = self._store(
            args["channel"],
            {
                "type": "message",
                "text": _streamed(args),
                "streaming": True,
                "final": False,
                "thread_ts": args["thread_ts"],
                "recipient_user_id": args.get("recipient_user_id"),
                "appends": 0,
            },
        )
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"]}

    async def _m_chat_appendStream(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(args.get("channel", ""), args.get("ts", ""))
        if msg is None or not msg.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        msg["text"] += _streamed(args)
        msg["appends"] += 1
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"]}

    async def _m_chat_stopStream(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(args.get("channel", ""), args.get("ts", ""))
        if msg is None or not msg.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        msg["text"] += _streamed(args)
        msg["streaming"] = False
        msg["final"] = True
        msg["blocks"] = _blocks(args)
        msg.update(_metadata(args))
        self._finished(msg, stopped=True)
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"], "message": msg}

    async def _m_assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel_id") or not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    # https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts: up to
    # four prompts, each with a title and a message; agent apps must not send thread_ts
    # (Slack then silently ignores the call: recorded here as `ignored`).
    async def _m_assistant_threads_setSuggestedPrompts(
        self, args: dict[str, Any]
    ) -> dict[str, Any]:
        prompts = _json_arg(args.get("prompts"))
        if not args.get("channel_id") or not isinstance(prompts, list) or not prompts:
            return {"ok": False, "error": "invalid_arguments"}
        if len(prompts) > 4 or not all(p.get("title") and p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        self.prompts.append(
            {
                "channel_id": args["channel_id"],
                "title": args.get("title"),
                "prompts": prompts,
                "ignored": bool(args.get("thread_ts")),
            }
        )
        return {"ok": True}

    # https://docs.slack.dev/reference/methods/assistant.threads.setTitle
    async def _m_assistant_threads_setTitle(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel_id") or not args.get("thread_ts") or not args.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        self.titles[(args["channel_id"], args["thread_ts"])] = args["title"]
        return {"ok": True}

    # https://docs.slack.dev/reference/methods/views.publish: a `home` view, at most 100
    # blocks, for one user.
    async def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _json_arg(args.get("view"))
        if not args.get("user_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if args["user_id"] not in self.users:
            return {"ok": False, "error": "user_not_found"}
        if view.get("type") != "home" or len(view.get("blocks") or []) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        problem = _view_problem(view)
        if problem:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [problem]},
            }
        self.homes[args["user_id"]] = view
        return {"ok": True, "view": {"id": f"V{next(self._ts):06d}", **view}}

    # https://docs.slack.dev/reference/methods/views.open: a modal, for a trigger_id (valid
    # once, for 3 s: a trigger used twice is expired here).
    async def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _json_arg(args.get("view"))
        trigger = args.get("trigger_id")
        if not trigger or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if trigger in self._triggers_used:
            return {"ok": False, "error": "expired_trigger_id"}
        self._triggers_used.add(trigger)
        title = (view.get("title") or {}).get("text", "")
        if view.get("type") != "modal" or not title or len(title) > 24:
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("private_metadata") or "") > 3000 or _view_problem(view):
            return {"ok": False, "error": "invalid_arguments"}
        self.modals.append(view)
        return {"ok": True, "view": {"id": f"V{next(self._ts):06d}", **view}}

    # https://docs.slack.dev/reference/methods/chat.getPermalink
    async def _m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(args.get("channel", ""), args.get("message_ts", ""))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        ts = msg["ts"].replace(".", "")
        return {
            "ok": True,
            "channel": args["channel"],
            "permalink": f"https://fake.slack.com/archives/{args['channel']}/p{ts}",
        }

    async def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    async def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel", ""), args.get("ts", "")
        if refused := self._unreadable(channel):
            return refused
        msgs = [
            self._public(m, args)
            for m in self.messages.get(channel, [])
            # A message still streaming is in the thread (people watch it being written).
            if (m.get("ts") == ts or m.get("thread_ts") == ts) and m.get("type") == "message"
        ]
        return self._page(msgs, args, "messages")

    async def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first, with reply_count on thread parents."""
        channel = args.get("channel", "")
        if refused := self._unreadable(channel):
            return refused
        everything = self.messages.get(channel, [])
        top = []
        for m in everything:
            if m.get("thread_ts") not in (None, m["ts"]) or not m.get("final", True):
                continue
            replies = [r for r in everything if r.get("thread_ts") == m["ts"] and r is not m]
            shown = self._public(m, args)
            if replies:
                shown |= {"thread_ts": m["ts"], "reply_count": len(replies)}
            top.append(shown)
        top.sort(key=lambda m: float(m["ts"]), reverse=True)
        return self._page(top, args, "messages")

    async def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        info = self.channels.get(channel)
        if info is None and channel in self.messages:
            info = {"id": channel, "name": channel.lower(), "is_private": False, "is_member": True}
        return (
            {"ok": True, "channel": info} if info else {"ok": False, "error": "channel_not_found"}
        )

    async def _m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._page(list(self.channels.values()), args, "channels")

    def _unreadable(self, channel: str) -> dict[str, Any] | None:
        info = self.channels.get(channel)
        if info is not None and not info["is_member"]:
            return {"ok": False, "error": "not_in_channel"}
        return None

    @staticmethod
    def _public(msg: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        """A message as the Web API shows it. Metadata is only returned when asked for
        (https://docs.slack.dev/reference/methods/conversations.replies: include_all_metadata)."""
        hidden = {"final", "streaming", "appends"}
        if str(args.get("include_all_metadata", "")).lower() not in ("1", "true"):
            hidden.add("metadata")
        return {k: v for k, v in msg.items() if k not in hidden}

    @staticmethod
    def _page(items: list[Any], args: dict[str, Any], key: str) -> dict[str, Any]:
        """Cursor paging as the Web API does it: `limit`, then response_metadata.next_cursor."""
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "ok": True,
            key: chunk,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self.files.get(args.get("file", ""))
        return {"ok": True, "file": info} if info else {"ok": False, "error": "file_not_found"}

    # https://docs.slack.dev/messaging/working-with-files#upload
    async def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"FUP{next(self._ts):05d}"
        self.files[file_id] = {
            "id": file_id,
            "name": args.get("filename"),
            "length": int(args.get("length", 0)),
        }
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    async def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        out = []
        for f in files or []:
            if f["id"] not in self.uploads:
                return {"ok": False, "error": "file_not_found"}
            channel = args.get("channel_id")
            share = {"ts": self._next_ts(), "thread_ts": args.get("thread_ts")}
            shares = self.files[f["id"]].setdefault("shares", {}).setdefault("public", {})
            self.files[f["id"]].update(
                title=f.get("title"),
                channel=channel,
                thread_ts=args.get("thread_ts"),
                initial_comment=args.get("initial_comment"),
                # files.info shows where a file is shared: https://docs.slack.dev/reference/objects/file-object
                channels=sorted({*self.files[f["id"]].get("channels", []), channel}),
            )
            shares.setdefault(channel, []).append(share)
            out.append({"id": f["id"], "title": f.get("title")})
        return {"ok": True, "files": out}

    async def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.base_url.replace("http://", "ws://")
        return {"ok": True, "url": f"{ws}/link"}

    # --- non-API endpoints -------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            body = await part.read() if part is not None else b""  # type: ignore[union-attr]
        else:
            body = await request.read()
        self.uploads[file_id] = bytes(body)
        await self._notify()
        return web.Response(text=f"OK - {len(body)}")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            # Slack answers an HTML login page, not the file, without the token.
            return web.Response(text="<html>login</html>", content_type="text/html")
        file_id = request.match_info["key"].split("-", 1)[1]
        if file_id in self.redirects:
            raise web.HTTPFound(self.redirects[file_id])
        body = self.file_bodies.get(file_id)
        if body is None:
            raise web.HTTPNotFound()
        # Chunked, no Content-Length: the client must cap the bytes it reads, not trust headers.
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(body), 1024):
            await resp.write(body[i : i + 1024])
        await resp.write_eof()
        return resp

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        await self._notify()
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"}}
        )
        self.socket_connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self._acks[data["envelope_id"]] = data
                    await self._notify()
        self._sockets.remove(ws)
        return ws

    async def push(self, envelope: dict[str, Any]) -> None:
        await self.socket_connected.wait()
        await self._sockets[-1].send_json(envelope)

    async def acked(self, envelope_id: str, within: float = 10.0) -> dict[str, Any]:
        return await self.wait_for(lambda: self._acks.get(envelope_id), within)

    async def close_sockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close()


async def _arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    raw = await request.read()
    if not raw:
        return args
    if request.content_type == "application/json":
        args.update(json.loads(raw))
    else:
        args.update(parse_qsl(raw.decode()))
    return args


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def _metadata(args: dict[str, Any]) -> dict[str, Any]:
    """`metadata` ({event_type, event_payload}, JSON text in form posts) as stored on a message
    (https://docs.slack.dev/messaging/message-metadata)."""
    meta = args.get("metadata")
    if not meta:
        return {}
    meta = json.loads(meta) if isinstance(meta, str) else meta
    return {"metadata": {"event_type": meta["event_type"], "event_payload": meta["event_payload"]}}


def _streamed(args: dict[str, Any]) -> str:
    """Text sent to a stream: `markdown_text` and/or `markdown_text` chunks
    (https://docs.slack.dev/messaging/sending-and-scheduling-messages#text-streaming)."""
    chunks = args.get("chunks") or []
    chunks = json.loads(chunks) if isinstance(chunks, str) else chunks
    text = args.get("markdown_text") or ""
    return text + "".join(c.get("text", "") for c in chunks if c.get("type") == "markdown_text")


def _json_arg(value: Any) -> Any:
    """A JSON argument: sent as JSON (already parsed) or form-encoded as a string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _metadata(args: dict[str, Any]) -> dict[str, Any]:
    """Message metadata (https://docs.slack.dev/messaging/message-metadata): event_type and
    event_payload, kept with the message."""
    meta = _json_arg(args.get("metadata"))
    if isinstance(meta, dict) and meta.get("event_type"):
        return {
            "metadata": {
                "event_type": meta["event_type"],
                "event_payload": meta.get("event_payload") or {},
            }
        }
    return {}


def _view_problem(view: dict[str, Any]) -> str | None:
    """Block Kit limits Slack enforces on views: header text 150, section text 3000,
    button text 75, option text 75 and value 150 characters."""
    for block in view.get("blocks") or []:
        kind = block.get("type")
        text = (block.get("text") or {}).get("text", "")
        if kind == "header" and len(text) > 150:
            return "header text over 150 characters"
        if kind == "section" and len(text) > 3000:
            return "section text over 3000 characters"
        for el in block.get("elements") or []:
            if el.get("type") == "button" and len((el.get("text") or {}).get("text", "")) > 75:
                return "button text over 75 characters"
        element = block.get("element") or {}
        for opt in element.get("options") or []:
            if len(opt["text"]["text"]) > 75 or len(opt["value"]) > 150:
                return "option over its limits"
    return None
