"""The one exception type every HeyGen / LiveAvatar client raises.

Errors are raised where they are known (the HTTP core, the family modules) and turned into
user words in one place per surface (CLI, Slack, viewer page). `str(error)` is one clear line
that never contains a key or token; `error.body` is the raw response body, redacted. Whatever
path raised it, the constructor applies `bot.redaction.redact` to the message and the body.
"""

from __future__ import annotations

from bot.redaction import REDACTED, redact

__all__ = ["REDACTED", "redact"]  # re-exported: the rule itself lives in bot.redaction

# HeyGen API error codes we act on (https://docs.heygen.com/reference/errors, streaming v1).
CODE_SESSION_STATE_WRONG = 10005  # e.g. "session state wrong: closed"
CODE_SESSION_NOT_FOUND = 10006
CODE_CONCURRENT_LIMIT = 10007
CODE_AVATAR_NOT_FOUND = 10013
CODE_RATE_LIMITED = 10014  # "exceed rate limit" in the v1 envelope
_NOT_FOUND_CODES = {CODE_SESSION_NOT_FOUND, 400116, "not_found", "video_not_found"}
_AUTH_CODES = {400112, "invalid_api_key", "unauthorized", "authentication_error"}


class HeyGenError(Exception):
    """A HeyGen (or LiveAvatar) API call failed.

    status: HTTP status, or None when no response arrived (connection error, timeout).
    code: the API's own error code (e.g. 10006 session not found, 10007 concurrent limit,
        400112 unauthorized), or None when the body carried none.
    message: the API's message, or ours when it gave none.
    body: the raw response body with any key or token redacted ("" when there was none).
    retry_after: seconds the server asked us to wait (429/503 Retry-After), if any.
    service: which API answered ("HeyGen", "LiveAvatar"), for the one-line message.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | str | None = None,
        body: str = "",
        retry_after: float | None = None,
        service: str = "HeyGen",
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        # The last line of defence: every path that builds an error gets the one rule.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code if not isinstance(code, str) else redact(code)
        self.body = redact(body)
        self.retry_after = retry_after
        self.service = service
        self.method = method
        self.path = path

    def __str__(self) -> str:
        if self.status is None:
            where = f" ({self.method} {self.path})" if self.method and self.path else ""
            return f"{self.service} API request failed{where}: {self.message}"
        code = f" (code {self.code})" if self.code is not None else ""
        if self.status < 400:  # an error code inside a 2xx envelope (v1 `{code, message}`)
            return f"{self.service} API error{code}: {self.message}"
        return f"{self.service} API error {self.status}{code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )

    @property
    def is_rate_limited(self) -> bool:
        return self.status == 429 or self.code == CODE_RATE_LIMITED

    @property
    def is_not_found(self) -> bool:
        return self.status == 404 or self.code in _NOT_FOUND_CODES

    @property
    def is_session_not_found(self) -> bool:
        return self.code == CODE_SESSION_NOT_FOUND

    @property
    def is_concurrency_limit(self) -> bool:
        return self.code == CODE_CONCURRENT_LIMIT

    @property
    def is_auth_error(self) -> bool:
        return self.status in (401, 403) or self.code in _AUTH_CODES

    @property
    def is_server_error(self) -> bool:
        return self.status is not None and self.status >= 500

    @property
    def is_transient(self) -> bool:
        """Worth trying again later: rate limit, 5xx, or no response at all."""
        return self.status is None or self.is_rate_limited or self.is_server_error


class HeyGenAuthError(HeyGenError):
    """The API key is missing, invalid, or lacks access (HTTP 401/403)."""


class MissingApiKeyError(HeyGenAuthError):
    """No key configured; the message names the variable to set."""

    def __init__(self, variable: str, service: str = "HeyGen") -> None:
        super().__init__(
            f"{variable} is not set; set it to your {service} API key", service=service
        )
        self.variable = variable

    def __str__(self) -> str:
        return self.message


class HeyGenTimeout(HeyGenError):
    """No (complete) response within the timeout; status is None."""


class HeyGenConnectionError(HeyGenError):
    """The server could not be reached (refused, DNS, reset); status is None."""


class HeyGenProtocolError(HeyGenError):
    """The server answered 2xx with something that is not the documented shape."""
