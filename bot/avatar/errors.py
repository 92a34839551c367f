"""The avatar layer's one error type: every vendor failure leaves `bot.avatar` as this."""

from __future__ import annotations


class AvatarError(Exception):
    """An avatar step (live session, speech, video) failed; `sentence` is what a user is told."""

    def __init__(self, sentence: str, *, kind: str = "heygen") -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.kind = kind
