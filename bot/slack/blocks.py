"""Every Block Kit message the bot sends, in one place (pure: data in, blocks out).

Answers: the text (mrkdwn, split under the 3,000-character section limit), the sources with
links, an actions row ("Watch live" when a live link exists, "Make a video" when videos are
on) and Slack's feedback buttons in a `context_actions` block
(https://docs.slack.dev/reference/block-kit/block-elements/feedback-buttons-element).
A message holds at most 50 blocks; answers are cut to fit and say so.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

from bot.redaction import redact
from bot.slack.mrkdwn import escape, link, split_text, to_mrkdwn
from knowledge.answering.answer import Answer, Source
from knowledge.models import Hit

Block = dict[str, Any]

MAX_BLOCKS = 50
FALLBACK_TEXT_LIMIT = 3000  # the notification text shown where blocks are not

# action ids the listeners register for
FEEDBACK = "answer_feedback"
MAKE_VIDEO = "make_video"
WATCH_LIVE = "watch_live"

WORKING_STATUS = "is looking through the knowledge base…"
LOADING_MESSAGES = [
    "Searching the knowledge base…",
    "Reading the best passages…",
    "Writing a cited answer…",
]


def _text(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def section(text: str) -> Block:
    return {"type": "section", "text": _text(text)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [_text(text)]}


def answer_text_blocks(markdown: str) -> list[Block]:
    return [section(piece) for piece in split_text(to_mrkdwn(markdown))]


def _source_line(src: Source) -> str:
    title = src.title or src.link
    if src.section and src.section != title:
        title = f"{title} — {src.section}"
    # Title and link come from the document: the one rule (bot.slack.mrkdwn) escapes the
    # title and links only a validated http(s) target; anything else is shown as the title.
    return f"[{src.number}] {link(src.link, title[:300])}"


def sources_blocks(sources: Sequence[Source]) -> list[Block]:
    if not sources:
        return []
    lines = "\n".join(_source_line(s) for s in sources)
    return [section(piece) for piece in split_text(f"*Sources*\n{lines}")]


def answer_actions(answer_id: str, *, live_url: str | None, video_enabled: bool) -> list[Block]:
    buttons: list[Block] = []
    if live_url:
        buttons.append(
            {
                "type": "button",
                "action_id": WATCH_LIVE,
                "text": _plain("▶ Watch live"),
                "url": live_url,
                "value": answer_id,
            }
        )
    if video_enabled:
        buttons.append(
            {
                "type": "button",
                "action_id": MAKE_VIDEO,
                "text": _plain("🎬 Make a video"),
                "value": answer_id,
            }
        )
    blocks: list[Block] = []
    if buttons:
        blocks.append({"type": "actions", "block_id": f"avatar:{answer_id}", "elements": buttons})
    blocks.append(
        {
            "type": "context_actions",
            "block_id": f"feedback:{answer_id}",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK,
                    "positive_button": {
                        "text": _plain("👍"),
                        "value": f"good:{answer_id}",
                        "accessibility_label": "This answer helped",
                    },
                    "negative_button": {
                        "text": _plain("👎"),
                        "value": f"bad:{answer_id}",
                        "accessibility_label": "This answer did not help",
                    },
                }
            ],
        }
    )
    return blocks


_FEEDBACK_VALUE = re.compile(r"(good|bad):([A-Za-z0-9_-]{8,64})")


def feedback_value(value: object) -> tuple[str, str] | None:
    """(vote, answer id) from a feedback button's value as `answer_actions` wrote it; None for
    anything else (a crafted `evil:ID`, a 100 KB string)."""
    if not isinstance(value, str) or len(value) > 80:
        return None
    m = _FEEDBACK_VALUE.fullmatch(value)
    return (m.group(1), m.group(2)) if m else None


def _fit(text_blocks: list[Block], tail: list[Block]) -> list[Block]:
    room = MAX_BLOCKS - len(tail)
    if len(text_blocks) > room:
        text_blocks = [*text_blocks[: room - 1], context("_The answer was cut to fit Slack._")]
    return text_blocks + tail


def answer_blocks(
    answer: Answer,
    answer_id: str,
    *,
    live_url: str | None = None,
    video_enabled: bool = False,
    include_text: bool = True,
    notes: Sequence[str] = (),
) -> list[Block]:
    """The finished answer. `include_text=False` when the text was already streamed."""
    tail = [
        *sources_blocks(answer.sources)[:5],
        *(context(escape(n)) for n in notes),
        *answer_actions(answer_id, live_url=live_url, video_enabled=video_enabled),
    ]
    text = answer_text_blocks(answer.text) if include_text else []
    return _fit(text, tail)


def fallback_text(markdown: str) -> str:
    """The message's `text`: notifications and clients that show no blocks."""
    text = to_mrkdwn(markdown)
    return text if len(text) <= FALLBACK_TEXT_LIMIT else text[: FALLBACK_TEXT_LIMIT - 1] + "…"


SNIPPET_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def snippet(text: str, width: int = SNIPPET_CHARS) -> str:
    """A passage shown to a person: token-like strings redacted, control characters gone,
    one line, cut at a word boundary, escaped."""
    flat = " ".join(_CONTROL.sub(" ", redact(text)).split())
    return escape(textwrap.shorten(flat, width=width, placeholder=" …"))


def search_results_text(hits: Sequence[Hit]) -> str:
    """`/knowledge search`: each passage by title (linked when it has a link a person can
    open, never a server path), its relevance, and a safe snippet."""
    lines = []
    for i, h in enumerate(hits, 1):
        title = h.chunk.title + (f" — {h.chunk.section}" if h.chunk.section else "")
        shown = link(h.chunk.link, title[:300])
        lines.append(f"{i}. *{shown}* ({h.relevance:.2f}) — {snippet(h.chunk.text)}")
    return "\n".join(lines)


def progress_blocks(text: str) -> list[Block]:
    """A message updated in place while something works (rendering, adding documents)."""
    return [section(escape(text))]


def notice_blocks(text: str, *, error_id: str | None = None) -> list[Block]:
    """A plain sentence for the user; failures carry the id that is also in the log."""
    blocks = [section(escape(text))]
    if error_id:
        blocks.append(context(f"Error id `{error_id}`"))
    return blocks


def video_posted_text(title: str, video_url: str | None) -> str:
    heygen = f" ({link(video_url, 'open on HeyGen')})" if video_url else ""
    return f"🎬 Your video is ready: {escape(title)}{heygen}"
