"""Language-model plumbing for answers: model creation, prompts, question rewriting, errors.

Any LangChain chat model works (`init_chat_model` strings such as `openai:gpt-4o-mini`,
`anthropic:…`, `ollama:…`). The prompts ask for `[n]` citations of numbered passages and for
the exact reply `NO_ANSWER` when the passages do not hold the answer, so "I don't know" is
decided by the Answerer, in our words, not improvised by the model.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from knowledge.config import LLMConfig
from knowledge.errors import LLMError  # defined with the other knowledge errors
from knowledge.models import Hit

NO_ANSWER = "NO_ANSWER"
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|xox[a-z]|key|token)[-_][A-Za-z0-9*_\-]{6,}", re.IGNORECASE)

# (role, text) turns of a conversation; role is "user" or "assistant".
Turn = tuple[str, str]

ANSWER_SYSTEM = f"""You are avatarbot, a helpful colleague answering questions in Slack from \
the team's knowledge base.
Answer only from the numbered passages the user gives you. Never use outside knowledge.
Cite the passage behind each sentence with its number in square brackets before the final \
punctuation, like this [1] or this [2][3]. Cite only numbers that exist.
Be brief and direct: two to five sentences, or a short list of steps. Plain Slack markdown; \
no headings.
If the passages do not contain the answer, reply with exactly {NO_ANSWER} and nothing else."""

REWRITE_SYSTEM = """Rewrite the user's last question as one standalone question that can be \
understood without the conversation: resolve pronouns and references from the earlier turns \
and keep the user's own wording where possible. Reply with the question only."""


def create_chat_model(config: LLMConfig) -> BaseChatModel:
    """A LangChain chat model from the config; kwargs named as the providers expect them."""
    from langchain.chat_models import init_chat_model  # heavy import, only with an LLM

    kwargs: dict[str, Any] = {"temperature": 0}
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.api_key is not None:
        kwargs["api_key"] = config.api_key.get_secret_value()
    if not config.model.startswith("ollama:"):
        # Ollama's client takes neither; the others accept both names.
        kwargs["timeout"] = config.timeout_seconds
        kwargs["max_retries"] = config.max_retries
    try:
        return init_chat_model(config.model, **kwargs)
    except (ImportError, ValueError) as exc:
        raise LLMError(f"cannot use LLM_MODEL={config.model!r}: {_first_line(exc)}") from None


def passages_block(hits: Sequence[Hit]) -> str:
    parts = []
    for number, hit in enumerate(hits, 1):
        where = hit.chunk.title + (f" — {hit.chunk.section}" if hit.chunk.section else "")
        parts.append(f"[{number}] {where}\n{hit.chunk.text.strip()}")
    return "\n\n".join(parts)


def answer_messages(question: str, hits: Sequence[Hit]) -> list[BaseMessage]:
    return [
        SystemMessage(ANSWER_SYSTEM),
        HumanMessage(f"Passages:\n\n{passages_block(hits)}\n\nQuestion: {question}"),
    ]


def rewrite_messages(question: str, history: Sequence[Turn]) -> list[BaseMessage]:
    conversation = "\n".join(f"{role}: {text.strip()}" for role, text in history)
    return [
        SystemMessage(REWRITE_SYSTEM),
        HumanMessage(f"Conversation:\n{conversation}\n\nLast question: {question}"),
    ]


async def standalone_question(
    model: BaseChatModel, question: str, history: Sequence[Turn], timeout_seconds: float
) -> str:
    """The follow-up `question` rewritten to stand alone, from the thread `history`."""
    if not history:
        return question
    try:
        async with asyncio.timeout(timeout_seconds):
            reply = await model.ainvoke(rewrite_messages(question, history))
    except Exception as exc:
        raise describe_failure(exc) from exc
    text = reply.text.strip() if isinstance(reply.text, str) else ""
    return text.splitlines()[0].strip() if text else question


def describe_failure(exc: BaseException) -> LLMError:
    """One short, secret-free reason for a provider failure."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, TimeoutError):
        return LLMError("the language model did not answer in time")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        what = {
            401: "rejected the API key (check LLM_API_KEY)",
            403: "refused access (check LLM_API_KEY)",
            404: "does not know the model (check LLM_MODEL)",
            429: "is rate-limiting requests",
        }.get(status, "returned an error")
        return LLMError(f"the language model {what} (HTTP {status})", status=status)
    name = type(exc).__name__
    if "Connection" in name or isinstance(exc, ConnectionError | OSError):
        return LLMError("the connection to the language model failed (check LLM_BASE_URL)")
    message = getattr(exc, "message", None)  # the provider's own words, e.g. "Overloaded."
    if isinstance(message, str) and message.strip():
        return LLMError(f"the language model reported an error: {_redacted(message)}")
    return LLMError(f"the language model failed ({name})")


def _redacted(message: str) -> str:
    """First line, at most 200 characters, with anything shaped like a key masked."""
    line = _first_line(Exception(message))[:200].rstrip(".")
    return _KEYLIKE.sub("[redacted]", line)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
