"""HeyGen's and LiveAvatar's response envelopes, unwrapped into the `data` they carry.

One parser for every family (`unwrap`), because the shapes are few and shared:
- `{code, message, data}`: HeyGen v1 (video_status.get, webhook, streaming; success code 100)
  and LiveAvatar (success code 1000 in its web SDK, 100 in its OpenAPI schema). Any other code
  is an error even when the HTTP status is 200.
- `{error, data}`: HeyGen v2/v3 (https://developers.heygen.com/docs/error-codes) and
  `streaming.create_token`: `error` is null on success, else `{code, message, ...}`.

`ApiModel` is the one base of every request/response model in `bot/heygen/`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.heygen.errors import HeyGenError, HeyGenProtocolError
from bot.redaction import redacted_json

M = TypeVar("M", bound=BaseModel)

V1_SUCCESS = 100
_BODY_CHARS = 500


class ApiModel(BaseModel):
    """Responses may grow fields (ignored); requests are built by us; aliases or names."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _body(payload: Any) -> str:
    """The response as error-body text: credential fields blanked, known secrets replaced."""
    return redacted_json(payload, limit=_BODY_CHARS)


def unwrap(
    payload: Any,
    what: str,
    *,
    success: Collection[int] = (V1_SUCCESS,),
    service: str = "HeyGen",
    method: str | None = None,
    path: str | None = None,
) -> Any:
    """`data` of either envelope; an error in it raises HeyGenError (with its code), a body
    that is neither envelope raises HeyGenProtocolError. `what` names the call in messages."""
    where = {"service": service, "method": method, "path": path}
    if isinstance(payload, dict) and "code" in payload:
        if payload["code"] not in success:
            raise HeyGenError(
                str(payload.get("message") or payload.get("msg") or "request failed"),
                status=200,
                code=payload["code"],
                body=_body(payload),
                **where,
            )
        return payload.get("data")
    if isinstance(payload, dict) and ("error" in payload or "data" in payload):
        err = payload.get("error")
        if err:
            code = err.get("code") if isinstance(err, dict) else None
            message = err.get("message") if isinstance(err, dict) else str(err)
            raise HeyGenError(
                str(message or "request failed"),
                status=200,
                code=code,
                body=_body(payload),
                **where,
            )
        if "data" not in payload:
            raise HeyGenProtocolError(
                f"{what}: response has no 'data'", status=200, body=_body(payload), **where
            )
        return payload["data"]
    raise HeyGenProtocolError(
        f"{what}: response is not a {{code, data}} or {{error, data}} envelope",
        status=200,
        body=_body(payload),
        **where,
    )


def data_v3(payload: Any, what: str) -> Any:
    """`data` of a v2/v3 `{error, data}` envelope (a v1 envelope is refused)."""
    if isinstance(payload, dict) and "code" in payload and "data" not in payload:
        raise HeyGenProtocolError(
            f"{what}: response has no 'data'", status=200, body=_body(payload)
        )
    return unwrap(payload, what)


def data_v1(payload: Any, what: str) -> Any:
    """`data` of a v1 `{code, message, data}` envelope; a code other than 100 is an error."""
    if not isinstance(payload, dict) or "code" not in payload:
        raise HeyGenProtocolError(
            f"{what}: response has no 'code'", status=200, body=_body(payload)
        )
    return unwrap(payload, what)


def parse(
    model: type[M],
    data: Any,
    what: str,
    *,
    service: str = "HeyGen",
    method: str | None = None,
    path: str | None = None,
) -> M:
    """Validate `data` as `model`, turning a shape mismatch into a HeyGenProtocolError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise HeyGenProtocolError(
            f"{what}: unexpected response shape ({exc.error_count()} problem(s): "
            f"{fields}: {exc.errors()[0]['msg']})",
            status=200,
            body=_body(data),
            service=service,
            method=method,
            path=path,
        ) from None
