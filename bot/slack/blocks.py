"""Every Block Kit message the bot sends, in one place (pure: data in, blocks out).

Answers: the text (mrkdwn, split under the 3,000-character section limit), the sources with
links, an actions row ("Watch live" when a live link exists, "Make a video" when videos are
on) and Slack's feedback buttons in a `context_actions` block
(https://docs.slack.dev/reference/block-kit/block-elements/feedback-buttons-element).
A message holds at most 50 blocks; answers are cut to fit and say so.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.redaction import redact
from bot.slack.mrkdwn import escape, link, mention, split_text, to_mrkdwn
from knowledge.answering.answer import Answer, Source
from knowledge.models import Hit

if TYPE_CHECKING:
    from bot.slack.home import AdminFacts, HomeFacts

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
    """`[n] title — section`, linked when the source has a link a person can open; no
    server path, ever (`Source.link` is a URL or empty)."""
    title = src.title or "Untitled document"
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


def video_posted_text(title: str, page_url: str | None) -> str:
    """The upload's comment; `page_url` is HeyGen's page for the video (it does not expire,
    unlike the presigned file URL), linked only when it is a checked http(s) URL."""
    heygen = f" ({link(page_url, 'open on HeyGen')})" if page_url else ""
    return f"🎬 Your video is ready: {escape(title)}{heygen}"


def video_question_text(user: str, question: str) -> str:
    return f"🎬 {mention(user)} asked for a video answer: {escape(question[:300])}"


def video_question_blocks(user: str, question: str) -> list[Block]:
    """The `/ask-video` message in the channel: the asker mentioned (a real mention, not
    escaped), the question escaped; the answer and the video go into its thread."""
    return [section(video_question_text(user, question))]


# --- private answers ("/ask": only the asker sees it, until they share it) -----------------

SHARE_ANSWER = "share_answer"


def private_answer_blocks(answer: Answer, answer_id: str) -> list[Block]:
    """An ephemeral answer: the text, sources, "Only you can see this" and a Share button."""
    share = {
        "type": "actions",
        "block_id": f"share:{answer_id}",
        "elements": [
            {
                "type": "button",
                "action_id": SHARE_ANSWER,
                "text": _plain("📣 Share in channel"),
                "value": answer_id,
            }
        ],
    }
    tail = [
        *sources_blocks(answer.sources)[:5],
        context("Only you can see this answer."),
        share,
    ]
    return _fit(answer_text_blocks(answer.text), tail)


def shared_answer_blocks(text: str, sources: Sequence[Source], user: str) -> list[Block]:
    """A private answer its asker shared in the channel."""
    tail = [*sources_blocks(sources)[:5], context(f"Shared by {mention(user)}")]
    return _fit(answer_text_blocks(text), tail)


# --- files sent to the bot: which datasource? -------------------------------------------

CHOOSE_DATASOURCE = "choose_datasource"
NEW_DATASOURCE = "new_datasource"
NEW_DATASOURCE_VIEW = "new_datasource_view"
MAX_DATASOURCE_BUTTONS = 10


def datasource_question_text(
    names: Sequence[str], *, private: bool, not_taken: Sequence[str] = (), limit: int = 20
) -> str:
    taken = names[: len(names) - len(not_taken)]
    listed = ", ".join(escape(n) for n in taken)
    where = (
        " They will be answerable here, and in channels bound to that datasource."
        if private
        else ""
    )
    text = f"📎 Got {len(names)} file(s): {listed}. Which datasource should they go into?{where}"
    if not_taken:
        skipped = ", ".join(escape(n) for n in not_taken)
        text += f"\n⚠️ Not taken (I index {limit} files per message; send them again): {skipped}"
    return text


def datasource_question_blocks(text: str, datasources: Sequence[str], template: str) -> list[Block]:
    """One button per datasource and "New datasource…"; each value carries the files."""
    base = json.loads(template)
    buttons: list[Block] = [
        {
            "type": "button",
            "action_id": f"{CHOOSE_DATASOURCE}:{i}",
            "text": _plain(name),
            "value": json.dumps({**base, "datasource": name}, separators=(",", ":")),
        }
        for i, name in enumerate(datasources[:MAX_DATASOURCE_BUTTONS])
    ]
    buttons.append(
        {
            "type": "button",
            "action_id": NEW_DATASOURCE,
            "text": _plain("➕ New datasource…"),
            "value": template,
        }
    )
    return [section(text), {"type": "actions", "block_id": "datasource", "elements": buttons}]


def _modal(
    callback_id: str, title: str, submit: str, blocks: list[Block], metadata: str = ""
) -> Block:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, 24),
        "submit": _plain(submit, 24),
        "close": _plain("Cancel", 24),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def _text_input(block_id: str, label: str, *, hint: str = "", **element: Any) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "element": {"type": "plain_text_input", "action_id": "value", **element},
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _select(block_id: str, label: str, options: Sequence[tuple[str, str]]) -> Block:
    """A static_select of (label, value) pairs (Slack allows 100 options)."""
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "element": {
            "type": "static_select",
            "action_id": "value",
            "options": [
                {"text": _plain(text), "value": value[:150]} for text, value in options[:100]
            ],
        },
    }


def new_datasource_modal(metadata: str) -> Block:
    return _modal(
        NEW_DATASOURCE_VIEW,
        "New datasource",
        "Index files",
        [
            _text_input(
                "name",
                "Datasource name",
                hint="Letters, digits, - _ . (e.g. hr, handbook). Bind a channel to it later "
                "with /knowledge bind.",
                max_length=40,
            )
        ],
        metadata,
    )


# --- App Home -----------------------------------------------------------------------------

HOME_ADD = "home_add_urls"
HOME_BIND = "home_bind_channel"
HOME_REMOVE = "home_remove_document"
HOME_ADD_VIEW = "home_add_urls_view"
HOME_BIND_VIEW = "home_bind_view"
HOME_REMOVE_VIEW = "home_remove_view"


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(text, 150)}


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"• {line}" for line in lines)


def home_view(facts: HomeFacts) -> Block:
    """The App Home tab: what the bot knows and how to ask; for admins, the dashboard."""
    out: list[Block] = [
        _header("avatarbot"),
        section(
            "I answer questions from your team's documents, with numbered sources you can "
            "open" + (", and an avatar can say the answer." if facts.avatar else ".")
        ),
        _header("What I know"),
    ]
    if not facts.datasources:
        out.append(section("Nothing yet: an admin adds documents with `/knowledge add`."))
    for ds in facts.datasources[:15]:
        titles = ", ".join(escape(t) for t in ds.titles[:6])
        more = f" and {ds.documents - 6} more" if ds.documents > 6 else ""
        out.append(section(f"*{escape(ds.name)}* — {titles}{more}"))
    out += [
        _header("How to ask"),
        section(
            _bullets(
                [
                    "Mention me in a channel: `@avatarbot how do I add documents?`",
                    "Send me a direct message, or open me in the assistant pane",
                    "`/ask your question` in a channel: only you see the answer, until "
                    "you share it",
                    "`/ask-video your question`: a short avatar video"
                    + ("" if facts.video else " (turned off on this bot)"),
                ]
            )
        ),
    ]
    if facts.suggestions:
        out += [_header("Try asking"), section(_bullets([escape(q) for q in facts.suggestions]))]
    if facts.admin is not None:
        out += admin_home_blocks(facts.admin)
    return {"type": "home", "blocks": out[:100]}


def admin_home_blocks(a: AdminFacts) -> list[Block]:
    def when(t: float) -> str:
        # Slack shows the reader's local time; the fallback is UTC.
        fallback = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"<!date^{int(t)}^{{date_short_pretty}} {{time}}|{fallback}>"

    docs = [
        f"*{escape(d.name)}*: {d.documents} documents, {d.chunks} passages"
        + (f", bound to {', '.join(f'<#{c}>' for c in d.channels)}" if d.channels else "")
        for d in a.datasources
    ]
    recent = [f"{escape(r.title)} → `{escape(r.datasource)}` ({when(r.at)})" for r in a.recent]
    failures = [escape(f) for f in a.failures] or ["None recently."]
    spend = [
        f"Live avatar: {a.live_minutes:.1f} of {a.live_limit:g} minutes today",
        f"Videos: {a.videos:g} of {a.video_limit} today",
        f"Live sessions open: {a.live_sessions}",
    ]
    votes = [
        f"*{escape(ds)}*: 👍 {good}  👎 {bad}" for ds, (good, bad) in sorted(a.feedback.items())
    ] or ["No feedback yet."]
    worst = [f"“{escape(w.question[:150])}” — 👎 {w.bad} 👍 {w.good}" for w in a.worst]
    out: list[Block] = [
        {"type": "divider"},
        _header("Admin"),
        section("*Datasources*\n" + _bullets(docs or ["None yet."])),
        section("*Recent additions*\n" + _bullets(recent or ["None yet."])),
        section("*Recent failures*\n" + _bullets(failures)),
        section("*Spend against the HeyGen budgets*\n" + _bullets(spend)),
        section("*Feedback by datasource*\n" + _bullets(votes)),
    ]
    if worst:
        out.append(section("*Worst-rated answers*\n" + _bullets(worst)))
    out.append(
        {
            "type": "actions",
            "block_id": "home_admin",
            "elements": [
                {"type": "button", "action_id": HOME_ADD, "text": _plain("➕ Add web pages")},
                {"type": "button", "action_id": HOME_BIND, "text": _plain("🔗 Bind a channel")},
                {
                    "type": "button",
                    "action_id": HOME_REMOVE,
                    "style": "danger",
                    "text": _plain("🗑 Remove a document"),
                },
            ],
        }
    )
    return out


def add_urls_modal() -> Block:
    return _modal(
        HOME_ADD_VIEW,
        "Add web pages",
        "Add",
        [
            _text_input("urls", "URLs, one per line", multiline=True),
            _text_input("datasource", "Datasource", initial_value="default", max_length=40),
        ],
    )


def bind_modal(datasources: Sequence[str]) -> Block:
    return _modal(
        HOME_BIND_VIEW,
        "Bind a channel",
        "Bind",
        [
            {
                "type": "input",
                "block_id": "channel",
                "label": _plain("Channel"),
                "element": {"type": "conversations_select", "action_id": "value"},
            },
            _select("datasource", "Answers only from", [(d, d) for d in datasources]),
            context("The channel then answers only from that datasource."),
        ],
    )


def remove_modal(documents: Sequence[tuple[str, str]]) -> Block:
    """`documents`: (label, key) pairs. With none, a notice and no Remove button (a select
    needs at least one option)."""
    if not documents:
        view = _modal(HOME_REMOVE_VIEW, "Remove a document", "Remove", [])
        del view["submit"]
        view["blocks"] = [section("The knowledge base is empty: there is nothing to remove.")]
        return view
    return _modal(
        HOME_REMOVE_VIEW,
        "Remove a document",
        "Remove",
        [
            _select("document", "Document", documents),
            context("⚠️ I forget it at once; add it again to bring it back."),
        ],
    )


# --- assistant pane -----------------------------------------------------------------------

ASSISTANT_GREETING = (
    "Hi! Ask me anything about the documents I know; every answer cites its sources."
)
