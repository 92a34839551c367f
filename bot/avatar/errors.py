"""The avatar layer's one error type: every vendor failure leaves `bot.avatar` as this."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bot.heygen.errors import HeyGenError


class AvatarError(Exception):
    """An avatar step (live session, speech, video) failed; `sentence` is what a user is told."""

    def __init__(self, sentence: str, *, kind: str = "heygen") -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.kind = kind


class AvatarUnavailable(AvatarError):
    """The feature is not configured; `variable` names the setting that turns it on."""

    def __init__(self, sentence: str, variable: str | None = None) -> None:
        super().__init__(sentence, kind="setup")
        self.variable = variable


class AvatarLimitReached(AvatarError):
    """A budget or concurrency cap was reached (daily minutes, videos per user, sessions)."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence, kind="limit")


def vendor_failure(exc: BaseException, doing: str) -> AvatarError:
    """A vendor or network failure while `doing` (e.g. "speaking the answer") in plain words.

    An AvatarError passes through unchanged; anything else from HeyGen / LiveAvatar or the
    network becomes one sentence that names the service and what to do, never the raw body.
    """
    if isinstance(exc, AvatarError):
        return exc
    if isinstance(exc, HeyGenError):
        return AvatarError(_heygen_sentence(exc, doing))
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return AvatarError(f"HeyGen could not be reached while {doing}; please try again shortly.")
    return AvatarError(f"The avatar failed while {doing}; please try again shortly.")


def _heygen_sentence(exc: HeyGenError, doing: str) -> str:
    service, status = exc.service, exc.status
    if status is None:
        return f"{service} could not be reached while {doing}; please try again shortly."
    if exc.is_rate_limited:
        return f"{service} is busy (too many requests) while {doing}; please try again in a minute."
    if status in (401, 403):
        variable = "LIVEAVATAR_API_KEY" if service == "LiveAvatar" else "HEYGEN_API_KEY"
        return (
            f"{service} refused the bot's API key while {doing}; an admin should check {variable}."
        )
    if status >= 500:
        return f"{service} had a problem (HTTP {status}) while {doing}; please try again shortly."
    return f"{service} refused {doing}: {exc.message.rstrip('.')}."


@dataclass(frozen=True)
class FeatureOff:
    """Why an avatar feature is off, as a value: the setting that turns it on, and why."""

    feature: str  # "the live avatar" | "avatar videos"
    variable: str  # e.g. "HEYGEN_AVATAR_ID"
    detail: str = ""  # what the setting holds, e.g. "an avatar from `avatarbot heygen avatars`"

    @property
    def hint(self) -> str:
        """One clause for logs and Slack: "set HEYGEN_AVATAR_ID (…) to turn on avatar videos"."""
        what = f" ({self.detail})" if self.detail else ""
        return f"set {self.variable}{what} to turn on {self.feature}"

    @property
    def sentence(self) -> str:
        return f"{self.feature[0].upper()}{self.feature[1:]} {self._is} off: {self.hint}."

    @property
    def _is(self) -> str:
        return "are" if self.feature.endswith("s") else "is"

    def error(self) -> AvatarUnavailable:
        return AvatarUnavailable(self.sentence, variable=self.variable)
