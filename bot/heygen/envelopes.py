"""HeyGen's response envelopes, unwrapped into the `data` they carry.

- v3 (https://developers.heygen.com/docs/error-codes): success `{"data": ...}`, error
  `{"error": {"code": "unauthorized", "message": ..., "doc_url": ...}}` with a 4xx/5xx status.
- v2 (video generate, catalog, templates): `{"error": null | {...}, "data": ...}`.
- v1 (video_status.get, webhook, streaming): `{"code": 100, "message": "Success", "data": ...}`;
  any other code is an error even when the HTTP status is 200.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.heygen.errors import HeyGenError, HeyGenProtocolError
from bot.redaction import redacted_json

M = TypeVar("M", bound=BaseModel)

V1_SUCCESS = 100
_BODY_CHARS = 500


def _body(payload: Any) -> str:
    """The response as error-body text: credential fields blanked, known secrets replaced."""
    return redacted_json(payload, limit=_BODY_CHARS)


def data_v3(payload: Any, what: str) -> Any:
    """`data` of a v2/v3 `{error, data}` envelope; raises on an error object sent with 200."""
    if not isinstance(payload, dict) or "data" not in payload:
        raise HeyGenProtocolError(
            f"{what}: response has no 'data'", status=200, body=_body(payload)
        )
    err = payload.get("error")
    if err:
        code = err.get("code") if isinstance(err, dict) else None
        message = err.get("message") if isinstance(err, dict) else str(err)
        raise HeyGenError(str(message or "error"), status=200, code=code, body=_body(payload))
    return payload["data"]


def data_v1(payload: Any, what: str) -> Any:
    """`data` of a v1 `{code, message, data}` envelope; a code other than 100 is an error."""
    if not isinstance(payload, dict) or "code" not in payload:
        raise HeyGenProtocolError(
            f"{what}: response has no 'code'", status=200, body=_body(payload)
        )
    if payload["code"] != V1_SUCCESS:
        raise HeyGenError(
            str(payload.get("message") or payload.get("msg") or "error"),
            status=200,
            code=payload["code"],
            body=_body(payload),
        )
    return payload.get("data")


def parse(model: type[M], data: Any, what: str) -> M:
    """Validate `data` as `model`, turning a shape mismatch into a HeyGenProtocolError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HeyGenProtocolError(
            f"{what}: unexpected response shape ({exc.error_count()} problem(s): "
            f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']})",
            status=200,
            body=_body(data),
        ) from None
