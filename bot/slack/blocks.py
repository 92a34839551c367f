"""Every Block Kit message the bot sends, in one place (pure: data in, blocks out).

Answers: the text (mrkdwn, split under the 3,000-character section limit), the sources with
links, an actions row ("Watch live" when a live link exists, "Make a video" when videos are
on) and Slack's feedback buttons in a `context_actions` block
(https://docs.slack.dev/reference/block-kit/block-elements/feedback-buttons-element).
A message holds at most 50 blocks; answers are cut to fit and say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.slack.mrkdwn import escape, split_text, to_mrkdwn
from knowledge.answering.answer import Answer, Source

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
    title = escape(title.replace("|", "/"))[:300]
    if src.link.startswith(("http://", "https://")):
        return f"[{src.number}] <{src.link}|{title}>"
    return f"[{src.number}] {title} _({escape(src.link)[:300]})_"


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


def progress_blocks(text: str) -> list[Block]:
    """A message updated in place while something works (rendering, adding documents)."""
    return [section(escape(text))]


def notice_blocks(text: str, *, error_id: str | None = None) -> list[Block]:
    """A plain sentence for the user; failures carry the id that is also in the log."""
    blocks = [section(escape(text))]
    if error_id:
        blocks.append(context(f"Error id `{error_id}`"))
    return blocks


def video_posted_text(title: str, page_url: str | None) -> str:
    """The upload's comment; `page_url` is HeyGen's page for the video (it does not expire,
    unlike the presigned file URL), linked only when it is an http(s) URL."""
    safe = page_url if page_url and page_url.startswith(("https://", "http://")) else None
    link = f" (<{escape(safe)}|open on HeyGen>)" if safe else ""
    return f"🎬 Your video is ready: {escape(title)}{link}"


_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


def _mention(user: str) -> str:
    """`<@U…>` for a Slack user id (from Slack itself, never from a document), else a name."""
    return f"<@{user}>" if _SLACK_ID.match(user) else "Someone"


def video_question_text(user: str, question: str) -> str:
    return f"🎬 {_mention(user)} asked for a video answer: {escape(question[:300])}"


def video_question_blocks(user: str, question: str) -> list[Block]:
    """The `/ask-video` message in the channel: the asker mentioned (a real mention, not
    escaped), the question escaped; the answer and the video go into its thread."""
    return [section(video_question_text(user, question))]
