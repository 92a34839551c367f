"""`POST /heygen/webhook`: HeyGen's signed render notifications.

The signature (HMAC-SHA256 of the raw body, `HEYGEN_WEBHOOK_SECRET`) covers only the body,
so a verified delivery is still only a hint: the video job confirms the state with
`GET /v3/videos/{id}` before trusting it, and deliveries are de-duplicated by video id +
event type in the store. The answer is fast and says nothing about our state.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.heygen.webhooks import WebhookVerificationError, verify_webhook

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
DELIVERY_KEY: web.AppKey[Any] = web.AppKey("avatar_delivery_webhook", object)


def add_webhook_routes(app: web.Application, delivery: Any) -> None:
    app[DELIVERY_KEY] = delivery
    app.router.add_post("/heygen/webhook", _webhook)


async def _webhook(request: web.Request) -> web.Response:
    delivery = request.app[DELIVERY_KEY]
    secret = delivery.settings.heygen_webhook_secret
    if secret is None or not secret.get_secret_value():
        log.warning("HeyGen webhook received but HEYGEN_WEBHOOK_SECRET is not set; ignored")
        return web.json_response({"error": "webhook not configured"}, status=503)
    if (request.content_length or 0) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    body = await request.read()
    try:
        event = verify_webhook(body, request.headers, secret.get_secret_value())
    except WebhookVerificationError as exc:
        log.warning("HeyGen webhook rejected: %s", exc.reason)
        return web.json_response({"error": "verification failed"}, status=401)
    outcome = await delivery.video_webhook(event)
    log.info(
        "HeyGen webhook %s for video %s: %s", event.event_type, event.event_data.video_id, outcome
    )
    return web.json_response({"ok": True})
