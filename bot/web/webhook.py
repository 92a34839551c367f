"""`/heygen/webhook`: HeyGen's render notifications, signed or not, and its OPTIONS probe.

Two kinds of delivery arrive here (https://developers.heygen.com/docs/webhooks):
- from a registered endpoint: signed (`Heygen-Signature`, HMAC-SHA256 of the raw body with
  `HEYGEN_WEBHOOK_SECRET`); a wrong signature is refused with 401;
- from a render's own `callback_url`: NOT signed, so it is read without a signature.
Either is only a hint: the video job confirms the state with `GET /v3/videos/{id}` before it
trusts anything, and deliveries are de-duplicated in the store, so a forged or replayed one
can at most cause one more status check. HeyGen validates an endpoint with an `OPTIONS`
request and a 1-second timeout when it is registered
(https://docs.heygen.com/reference/add-a-webhook-endpoint): that is answered at once.
Answers are fast and say nothing about our state.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.heygen.webhooks import (
    WebhookVerificationError,
    is_signed,
    parse_event,
    verify_webhook,
)

log = logging.getLogger(__name__)

PATH = "/heygen/webhook"
MAX_BODY = 64 * 1024
DELIVERY_KEY: web.AppKey[Any] = web.AppKey("avatar_delivery_webhook", object)


def add_webhook_routes(app: web.Application, delivery: Any) -> None:
    app[DELIVERY_KEY] = delivery
    app.router.add_post(PATH, _webhook)
    app.router.add_route("OPTIONS", PATH, _probe)


async def _probe(_request: web.Request) -> web.Response:
    return web.Response(status=200, headers={"Allow": "OPTIONS, POST"})


async def _read_capped(request: web.Request) -> bytes:
    """The body, read up to one byte past MAX_BODY (a chunked body declares no length)."""
    body = bytearray()
    while len(body) <= MAX_BODY:
        chunk = await request.content.read(MAX_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


async def _webhook(request: web.Request) -> web.Response:
    delivery = request.app[DELIVERY_KEY]
    if (request.content_length or 0) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    body = await _read_capped(request)
    secret = delivery.settings.heygen_webhook_secret
    secret_value = secret.get_secret_value() if secret is not None else ""
    try:
        if is_signed(request.headers) and secret_value:
            event = verify_webhook(body, request.headers, secret_value, max_body=MAX_BODY)
        else:
            # A per-video callback (never signed), or a signed delivery this replica cannot
            # check because no secret is set: either way only a hint, confirmed by GET.
            event = parse_event(body, request.headers, max_body=MAX_BODY)
    except WebhookVerificationError as exc:
        log.warning("HeyGen webhook rejected: %s", exc.reason)
        status = 413 if len(body) > MAX_BODY else 401 if is_signed(request.headers) else 400
        return web.json_response({"error": "not a valid HeyGen delivery"}, status=status)
    outcome = await delivery.video_webhook(event)
    log.info(
        "HeyGen %s %s for video %s: %s",
        "webhook" if event.signed else "callback",
        event.event_type,
        event.event_data.video_id,
        outcome,
    )
    return web.json_response({"ok": True})
