"""HeyGen webhooks: register/list/delete endpoints (v3) and verify signed deliveries.

Endpoints: `POST/GET /v3/webhooks/endpoints`, `DELETE /v3/webhooks/endpoints/{endpoint_id}`,
`POST /v3/webhooks/endpoints/{endpoint_id}/rotate-secret`. The signing `secret` is returned only
on create and rotate. https://developers.heygen.com/docs/webhooks

Deliveries (same page, "Verifying Payloads"): header `Heygen-Signature` is the hex-encoded
HMAC-SHA256 of the raw request body keyed with the endpoint secret; `Heygen-Timestamp` is the
dispatch time in Unix seconds (reject if older than ~5 minutes); `Heygen-Event-Id` identifies
the delivery for de-duplication (events can be redelivered). Payloads are
`{"event_type": "avatar_video.success", "event_data": {"video_id", "url", "callback_id"}}` or
`avatar_video.fail` with `event_data.msg`. https://docs.heygen.com/docs/using-heygens-webhook-events

Per-video deliveries (the `callback_url` of a create) are NOT signed; only registered
endpoints are, and HeyGen validates an endpoint with an `OPTIONS` request (1 s timeout) when
it is added (https://docs.heygen.com/reference/add-a-webhook-endpoint). `parse_event` reads an
unsigned delivery; the receiver treats it exactly like a signed one: a hint.

Deliveries are hints, never proof: the HMAC covers the body only and the timestamp header is
unsigned, so a captured delivery can be replayed with a fresh timestamp. A receiver therefore
acts on an event only after confirming it with the API (`GET /v3/videos/{id}`) and de-duplicates
by event id and video id in the store; a replay can at most trigger one more status check.
Bodies over `MAX_BODY_BYTES` are refused before any hashing (a real event is well under 1 KB).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, SecretStr, ValidationError

from bot.heygen.envelopes import ApiModel, data_v3, parse
from bot.heygen.http import ApiClient, path_segment
from bot.heygen.videos_v3 import Page

SIGNATURE_HEADER = "Heygen-Signature"
TIMESTAMP_HEADER = "Heygen-Timestamp"
EVENT_ID_HEADER = "Heygen-Event-Id"
MAX_AGE_SECONDS = 300.0
# Real deliveries are a few hundred bytes; anything near this is not from HeyGen. Receivers
# should also cap the read itself (aiohttp `client_max_size`, or read up to this plus one).
MAX_BODY_BYTES = 64 * 1024
MAX_ENDPOINT_PAGES = 20  # 100 endpoints a page: an account has a handful


class WebhookEventType(StrEnum):
    AVATAR_VIDEO_SUCCESS = "avatar_video.success"
    AVATAR_VIDEO_FAIL = "avatar_video.fail"
    AVATAR_VIDEO_GIF_SUCCESS = "avatar_video_gif.success"
    AVATAR_VIDEO_GIF_FAIL = "avatar_video_gif.fail"
    AVATAR_VIDEO_CAPTION_SUCCESS = "avatar_video_caption.success"
    AVATAR_VIDEO_CAPTION_FAIL = "avatar_video_caption.fail"


VIDEO_EVENTS = [WebhookEventType.AVATAR_VIDEO_SUCCESS, WebhookEventType.AVATAR_VIDEO_FAIL]


class WebhookEndpoint(ApiModel):
    endpoint_id: str
    url: str
    events: list[str] | None = None  # None: all events
    status: str | None = None  # enabled | disabled
    created_at: str | int | None = None
    secret: SecretStr | None = Field(
        default=None, description="Signing secret; only on create and rotate."
    )


class CreateEndpointRequest(ApiModel):
    url: str = Field(min_length=1)
    events: list[str] | None = None
    entity_id: str | None = None


class RotatedSecret(ApiModel):
    endpoint_id: str
    secret: SecretStr


class WebhookEventData(ApiModel):
    model_config = ConfigDict(extra="allow")

    video_id: str | None = None
    url: str | None = None  # the video URL on success
    callback_id: str | None = None
    msg: str | None = None  # the failure message on avatar_video.fail
    message: str | None = None


class WebhookEvent(ApiModel):
    event_type: str
    event_data: WebhookEventData
    event_id: str | None = None  # from the Heygen-Event-Id header, for de-duplication
    signed: bool = False  # True once verify_webhook checked the signature

    @property
    def succeeded(self) -> bool:
        return self.event_type == WebhookEventType.AVATAR_VIDEO_SUCCESS

    @property
    def failed(self) -> bool:
        return self.event_type == WebhookEventType.AVATAR_VIDEO_FAIL


class Webhooks:
    """Typed calls to HeyGen's v3 webhook endpoint management."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def create_endpoint(
        self, url: str, events: list[str] | None = None, *, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        body = CreateEndpointRequest(url=url, events=events)
        payload = await self.api.request(
            "POST",
            "/v3/webhooks/endpoints",
            json=body.model_dump(exclude_none=True),
            headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
            idempotent=True,
        )
        return parse(WebhookEndpoint, data_v3(payload, "create endpoint"), "create endpoint")

    async def list_endpoints(
        self, *, limit: int = 100, token: str | None = None
    ) -> Page[WebhookEndpoint]:
        payload = await self.api.request(
            "GET",
            "/v3/webhooks/endpoints",
            params={"limit": limit, "token": token},
            idempotent=True,
        )
        return parse(Page[WebhookEndpoint], payload, "list endpoints")

    async def find_endpoint(self, url: str) -> WebhookEndpoint | None:
        """The registered endpoint for `url` (trailing slash ignored), paging through the list;
        registering again reuses it instead of adding a second endpoint with a second secret."""
        wanted = url.rstrip("/")
        token: str | None = None
        for _ in range(MAX_ENDPOINT_PAGES):
            page = await self.list_endpoints(token=token)
            for endpoint in page.data:
                if endpoint.url.rstrip("/") == wanted:
                    return endpoint
            if not (page.has_more and page.next_token):
                return None
            token = page.next_token
        return None

    async def delete_endpoint(self, endpoint_id: str) -> None:
        # Deleting is naturally idempotent: a repeat can only find it already gone.
        await self.api.request(
            "DELETE", f"/v3/webhooks/endpoints/{path_segment(endpoint_id)}", idempotent=True
        )

    async def rotate_secret(self, endpoint_id: str) -> RotatedSecret:
        payload = await self.api.request(
            "POST",
            f"/v3/webhooks/endpoints/{path_segment(endpoint_id)}/rotate-secret",
            headers={"Idempotency-Key": uuid.uuid4().hex},
            idempotent=True,
        )
        return parse(RotatedSecret, data_v3(payload, "rotate secret"), "rotate secret")


# --- verifying deliveries (pure) ------------------------------------------------------------


class WebhookVerificationError(Exception):
    """A delivery failed verification; `reason` is safe to log (never contains the secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(body: bytes, secret: str) -> str:
    """The `Heygen-Signature` value for `body`: hex HMAC-SHA256 keyed with the secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: float | None = None,
    max_age: float = MAX_AGE_SECONDS,
    max_body: int = MAX_BODY_BYTES,
) -> WebhookEvent:
    """Check a delivery's signature over the raw `body` and return the parsed event.

    Raises WebhookVerificationError for a missing or wrong signature, a timestamp older (or
    further in the future) than `max_age`, a body over `max_body` bytes (refused before it is
    hashed), or a body that is not a webhook event. The timestamp is checked when present;
    the event id is returned for de-duplication. A verified event is still only a hint (see
    the module docstring): confirm it with the API before acting on it.
    """
    if not secret:
        raise WebhookVerificationError("no webhook secret configured")
    if len(body) > max_body:
        raise WebhookVerificationError(f"body too large ({len(body)} > {max_body} bytes)")
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookVerificationError(f"missing {SIGNATURE_HEADER} header")
    if not signature.isascii():  # aiohttp keeps undecodable bytes as surrogates: .encode() fails
        raise WebhookVerificationError("signature does not match the body")
    expected = sign(body, secret)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise WebhookVerificationError("signature does not match the body")
    stamp = _header(headers, TIMESTAMP_HEADER)
    if stamp:
        try:
            sent = float(stamp)
        except ValueError:
            raise WebhookVerificationError(f"bad {TIMESTAMP_HEADER} header") from None
        current = time.time() if now is None else now
        if abs(current - sent) > max_age:
            raise WebhookVerificationError("delivery timestamp is too old (possible replay)")
    event = parse_event(body, headers, max_body=max_body)
    event.signed = True
    return event


def parse_event(
    body: bytes, headers: Mapping[str, str], *, max_body: int = MAX_BODY_BYTES
) -> WebhookEvent:
    """Parse a delivery without checking a signature: a per-video `callback_url` delivery
    is not signed (only registered endpoints are, https://developers.heygen.com/docs/webhooks),
    so it is read as an unsigned hint. Raises WebhookVerificationError for a body that is too
    large or not a webhook event."""
    if len(body) > max_body:
        raise WebhookVerificationError(f"body too large ({len(body)} > {max_body} bytes)")
    try:
        payload: Any = json.loads(body)
        event = WebhookEvent.model_validate(payload)
    except (ValueError, ValidationError):
        raise WebhookVerificationError("body is not a HeyGen webhook event") from None
    event.event_id = _header(headers, EVENT_ID_HEADER)
    return event


def is_signed(headers: Mapping[str, str]) -> bool:
    """Whether the delivery claims a signature (a registered endpoint's delivery)."""
    return bool(_header(headers, SIGNATURE_HEADER))
