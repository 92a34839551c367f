"""A process-local Store with the parts the Slack app uses (until the SQLite store lands)."""

from __future__ import annotations

import time
from typing import Any

from bot.store.base import AnswerRecord, Feedback


class MemoryStore:
    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], float] = {}
        self.answers: dict[str, AnswerRecord] = {}
        self.feedback: dict[tuple[str, str], Feedback] = {}
        self.bound: dict[str, list[str]] = {}
        self.audits: list[dict[str, Any]] = []

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    async def claim_once(self, namespace: str, key: str, ttl_seconds: float) -> bool:
        now = time.time()
        if self.claims.get((namespace, key), 0) > now:
            return False
        self.claims[(namespace, key)] = now + ttl_seconds
        return True

    async def save_answer(self, answer: AnswerRecord) -> None:
        self.answers[answer.id] = answer

    async def get_answer(self, answer_id: str) -> AnswerRecord | None:
        return self.answers.get(answer_id)

    async def set_answer_message(self, answer_id: str, message_ts: str) -> None:
        self.answers[answer_id] = self.answers[answer_id].model_copy(
            update={"message_ts": message_ts}
        )

    async def thread_answers(self, channel: str, thread_ts: str) -> list[AnswerRecord]:
        return [
            a for a in self.answers.values() if a.channel == channel and a.thread_ts == thread_ts
        ]

    async def record_feedback(
        self, answer_id: str, user: str, value: Feedback, comment: str | None = None
    ) -> None:
        self.feedback[(answer_id, user)] = value

    async def feedback_counts(self, answer_id: str) -> dict[Feedback, int]:
        out = {f: 0 for f in Feedback}
        for (a, _), v in self.feedback.items():
            if a == answer_id:
                out[v] += 1
        return out

    async def bind(self, channel: str, datasource: str, by: str) -> None:
        self.bound.setdefault(channel, []).append(datasource)

    async def unbind(self, channel: str, datasource: str | None = None) -> int:
        return len(self.bound.pop(channel, []))

    async def bindings(self, channel: str) -> list[str]:
        return list(self.bound.get(channel, []))

    async def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        self.audits.append({"actor": actor, "action": action, "detail": detail})

    async def purge(self, older_than: float) -> int:
        return 0
