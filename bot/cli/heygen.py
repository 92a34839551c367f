"""`avatarbot heygen …` commands: the catalog and a test render.

Every HeyGen failure is one line (no traceback, never a secret): the error types carry
status/code/message, and `bot.failures.describe` picks the words, as for Slack.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.table import Table

from bot.cli.output import console, fail, settings
from bot.config import VideoApi
from bot.failures import describe
from bot.heygen.clients import HeyGenClients, heygen_clients
from bot.heygen.errors import (
    HeyGenError,
    MissingApiKeyError,
)
from bot.heygen.video import Render, RenderRequest, VideoStatus, wait_until_done

app = typer.Typer(no_args_is_help=True)

T = TypeVar("T")

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")
API_OPT = typer.Option(None, "--api", help="v3 (current) or v2 (legacy); default HEYGEN_VIDEO_API.")


def _run(work: Callable[[HeyGenClients], Awaitable[T]], **api_options: Any) -> T:
    cfg = settings()

    async def main() -> T:
        async with heygen_clients(cfg, **api_options) as clients:
            return await work(clients)

    try:
        return asyncio.run(main())
    except MissingApiKeyError as exc:  # a setting, not an outage: the usage exit status
        fail(describe(exc).line, code=2)
    except HeyGenError as exc:
        fail(describe(exc).line)
    except ValueError as exc:  # bad input caught before any request (e.g. empty script)
        fail(str(exc).splitlines()[0], code=2)


def _emit(
    rows: list[dict[str, Any]], columns: list[tuple[str, str]], as_json: bool, title: str
) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{title} ({len(rows)})")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*[str(row.get(key) or "") for key, _ in columns])
    console.print(table)


@app.command()
def avatars(as_json: bool = JSON_OPT, api: VideoApi | None = API_OPT) -> None:
    """List the avatars (v3 looks) you can render with."""
    found = _run(lambda c: c.catalog(api).avatars())
    _emit(
        [a.model_dump() for a in found],
        [
            ("avatar_id", "Avatar ID"),
            ("name", "Name"),
            ("gender", "Gender"),
            ("default_voice_id", "Default voice"),
        ],
        as_json,
        "Avatars",
    )


@app.command()
def voices(as_json: bool = JSON_OPT, api: VideoApi | None = API_OPT) -> None:
    """List the voices you can render with."""
    found = _run(lambda c: c.catalog(api).voices())
    _emit(
        [v.model_dump() for v in found],
        [
            ("voice_id", "Voice ID"),
            ("name", "Name"),
            ("language", "Language"),
            ("gender", "Gender"),
        ],
        as_json,
        "Voices",
    )


@app.command()
def templates(as_json: bool = JSON_OPT) -> None:
    """List your video templates (legacy v2 template API)."""
    found = _run(lambda c: c.catalog(VideoApi.V2).templates())
    _emit(
        [t.model_dump() for t in found],
        [("template_id", "Template ID"), ("name", "Name")],
        as_json,
        "Templates",
    )


@app.command()
def render(
    script: str = typer.Argument(..., help="What the avatar says."),
    avatar: str | None = typer.Option(None, "--avatar", help="Avatar id (HEYGEN_AVATAR_ID)."),
    voice: str | None = typer.Option(None, "--voice", help="Voice id (HEYGEN_VOICE_ID)."),
    title: str | None = typer.Option(None, "--title"),
    wait: bool = typer.Option(False, "--wait", help="Poll until done; print the video URL."),
    as_json: bool = JSON_OPT,
    api: VideoApi | None = API_OPT,
    poll_interval: float = typer.Option(5.0, "--poll-interval", min=0, hidden=True),
    key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Same key = same video (HeyGen keeps keys about a day). Default: derived from "
        "the script, avatar, voice, title and API, so re-running after a crash or a lost "
        "answer never renders twice.",
    ),
) -> None:
    """Render a short avatar video; prints the video id (and with --wait, its URL)."""
    cfg = settings()
    avatar_id = avatar or cfg.heygen_avatar_id
    if not avatar_id:
        fail(
            "no avatar: pass --avatar or set HEYGEN_AVATAR_ID (see `avatarbot heygen avatars`)",
            code=2,
        )
    if not script.strip():
        fail("the script is empty: pass the text the avatar should say", code=2)
    try:
        voice_id = voice or cfg.heygen_voice_id
        chosen_api = api or cfg.heygen_video_api
        job_id = (
            key
            or hashlib.sha256(
                json.dumps([script, avatar_id, voice_id, title, chosen_api.value]).encode()
            ).hexdigest()[:32]
        )
        request = RenderRequest(
            script=script, avatar_id=avatar_id, voice_id=voice_id, title=title, job_id=job_id
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        fail(f"invalid {problem['loc'][0]}: {problem['msg']}", code=2)

    async def work(clients: HeyGenClients) -> tuple[str, Render | None]:
        renderer = clients.renderer(api)
        video_id = await renderer.submit(request)
        if not wait:
            return video_id, None
        if not as_json:
            console.print(f"video id: {video_id}", highlight=False)
        with console.status("Rendering: queued…") as status:

            def progress(job: Render) -> None:
                status.update(f"Rendering: {job.status.value}…")

            job = await wait_until_done(
                renderer, video_id, poll_interval=poll_interval, on_update=progress
            )
        return video_id, job

    video_id, job = _run(work)
    if job is None:
        typer.echo(json.dumps({"video_id": video_id}) if as_json else video_id)
        return
    if as_json:
        typer.echo(job.model_dump_json(indent=2))
    elif job.status == VideoStatus.COMPLETED:
        console.print(job.video_url or "", highlight=False, soft_wrap=True)
    if job.status == VideoStatus.FAILED:
        fail(
            f"render {video_id} failed: {job.error_message or 'no reason given'}"
            + (f" ({job.error_code})" if job.error_code else "")
        )


@app.command()
def sessions(as_json: bool = JSON_OPT) -> None:
    """List the live avatar sessions open on the account (HEYGEN_LIVE_API picks the API)."""
    from bot.heygen.live import build_room_api

    cfg = settings()
    found = _run(lambda c: build_room_api(cfg, c).list_open())
    _emit(
        [s.model_dump() for s in found],
        [("session_id", "Session ID"), ("status", "Status"), ("created_at", "Created")],
        as_json,
        f"Live sessions ({cfg.heygen_live_api.value})",
    )


webhook_app = typer.Typer(no_args_is_help=True)
app.add_typer(webhook_app, name="webhook", help="HeyGen webhook endpoints (render completion).")


@webhook_app.command("register")
def webhook_register(
    url: str = typer.Argument(..., help="Public URL of this bot's /heygen/webhook route."),
    rotate: bool = typer.Option(
        False,
        "--rotate-secret",
        help="When URL is already registered, give it a new signing secret (the old one "
        "stops working at once).",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Register URL for video success/failure events (POST /v3/webhooks/endpoints).

    An endpoint already registered for URL is reused, never doubled (HeyGen shows a secret
    only when it creates or rotates one, so a second endpoint would mean a second secret)."""
    from bot.heygen.webhooks import VIDEO_EVENTS

    if not url.startswith("https://") and not url.startswith("http://"):
        fail("the URL must be absolute, e.g. https://bot.example.com/heygen/webhook", code=2)
    if not url.rstrip("/").endswith("/heygen/webhook"):
        console.print("note: the bot serves its webhook at /heygen/webhook", highlight=False)
    # One key per URL: a retried create of the same URL does not add a second endpoint.
    idem = hashlib.sha256(url.encode()).hexdigest()[:32]

    async def work(c: HeyGenClients) -> tuple[str, str, str | None, bool]:
        existing = await c.webhooks.find_endpoint(url)
        if existing is None:
            created = await c.webhooks.create_endpoint(
                url, [e.value for e in VIDEO_EVENTS], idempotency_key=idem
            )
            secret = created.secret.get_secret_value() if created.secret else None
            return created.endpoint_id, created.url, secret, False
        if rotate:
            rotated = await c.webhooks.rotate_secret(existing.endpoint_id)
            return existing.endpoint_id, existing.url, rotated.secret.get_secret_value(), True
        return existing.endpoint_id, existing.url, None, True

    endpoint_id, registered, secret, reused = _run(work)
    if as_json:
        typer.echo(
            json.dumps(
                {"endpoint_id": endpoint_id, "url": registered, "secret": secret, "reused": reused}
            )
        )
        return
    what = "already registered" if reused else "registered"
    console.print(f"{what}: {registered} (endpoint {endpoint_id})", highlight=False, soft_wrap=True)
    if secret:
        # The secret is shown once by HeyGen; printing it here is the only way to hand it over.
        console.print(
            "Put this in HEYGEN_WEBHOOK_SECRET (environment or .env) on every "
            "replica, then restart the bot:",
            highlight=False,
        )
        typer.echo(f"HEYGEN_WEBHOOK_SECRET={secret}")
    else:
        console.print(
            "Keep the HEYGEN_WEBHOOK_SECRET you set when it was first registered; if it is "
            "lost, run this again with --rotate-secret for a new one.",
            highlight=False,
        )
