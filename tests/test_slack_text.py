"""Pure text handling for Slack: the markup cleaner (property-based), mrkdwn, blocks, routing."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack import blocks
from bot.slack.markup import clean_markup, has_markup, mentioned_users
from bot.slack.mrkdwn import SECTION_LIMIT, split_text, to_mrkdwn
from bot.slack.routing import Route, route_mention, route_message
from knowledge.answering.answer import Answer, AnswerStatus, Source

# --- the markup cleaner ------------------------------------------------------------------

_ids = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=11)
_labels = st.text(max_size=20)
_constructs = st.one_of(
    _ids.map(lambda i: f"<@U{i}>"),
    st.tuples(_ids, _labels).map(lambda t: f"<@U{t[0]}|{t[1]}>"),
    st.tuples(_ids, _labels).map(lambda t: f"<#C{t[0]}|{t[1]}>"),
    _ids.map(lambda i: f"<#C{i}>"),
    st.sampled_from(
        [
            "<!here>",
            "<!channel>",
            "<!everyone>",
            "<!subteam^S1|@ops>",
            "<!date^1392734382^{date_short}|Feb 18, 2014>",
        ]
    ),
    st.tuples(st.sampled_from(["https://", "http://", "mailto:"]), _labels, _labels).map(
        lambda t: f"<{t[0]}x.example/{t[1].replace('>', '')}|{t[2]}>"
    ),
    st.sampled_from(["&amp;", "&lt;", "&gt;", "&lt;@U1&gt;", "<", ">", "|", "<<@U1>>"]),
)
_messages = st.lists(st.one_of(_constructs, st.text(max_size=15)), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(_messages, st.dictionaries(_ids.map(lambda i: "U" + i), st.text(max_size=12)))
def test_cleaner_never_raises_and_never_leaves_markup(text: str, users: dict[str, str]) -> None:
    out = clean_markup(text, users=users, bot_user_id="UBOT")
    assert isinstance(out, str)
    assert not has_markup(out), out


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_cleaner_handles_any_text(text: str) -> None:
    assert not has_markup(clean_markup(text))


def test_cleaner_resolves_each_construct_to_its_readable_part() -> None:
    text = (
        "<@UBOT> hi <@U2>, see <#C1|general> and <https://a.example/x|the docs> or "
        "<https://b.example> <!here> <!subteam^S1|@ops> Q&amp;A &lt;3"
    )
    assert clean_markup(text, users={"U2": "Grace"}, bot_user_id="UBOT") == (
        "hi @Grace, see #general and the docs or https://b.example @ops Q&A <3"
    )
    assert mentioned_users(text) == ["UBOT", "U2"]


def test_plain_comparisons_are_not_markup() -> None:
    assert clean_markup("is x<3 and y>2?") == "is x<3 and y>2?"


# --- mrkdwn and blocks ---------------------------------------------------------------------


def test_markdown_becomes_mrkdwn_with_links_lists_and_tables() -> None:
    md = (
        "## Setup\n**Install** it with `pip` and see [the guide](https://x.example/g).\n"
        "- first *step*\n\n| Name | Value |\n|---|---|\n| A | 1 |\n| Beta | 22 |\n"
        "Use a < b & c."
    )
    out = to_mrkdwn(md)
    assert out.splitlines()[0] == "*Setup*"
    assert "*Install* it with `pip` and see <https://x.example/g|the guide>." in out
    assert "• first _step_" in out
    assert "```\nName  Value\nA     1\nBeta  22\n```" in out
    assert "Use a &lt; b &amp; c." in out


def test_long_text_is_split_under_the_section_limit_keeping_code_fences_closed() -> None:
    text = "para\n\n" * 10 + "```\n" + "code line\n" * 800 + "```"
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p) <= SECTION_LIMIT for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)


def _answer(text: str, n_sources: int = 2) -> Answer:
    sources = [
        Source(
            number=i,
            title=f"Doc {i}",
            section="Intro",
            score=1.0,
            relevance=0.5,
            link=f"https://docs.example/{i}" if i % 2 else f"/srv/doc{i}.md",
        )
        for i in range(1, n_sources + 1)
    ]
    return Answer(
        question="q",
        standalone_question="q",
        text=text,
        sources=sources,
        grounded=True,
        spoken="s",
        status=AnswerStatus.ANSWERED,
    )


def test_answer_blocks_fit_slack_limits_with_sources_buttons_and_feedback() -> None:
    huge = "A sentence that goes on [1]. " * 6000  # ~170k characters
    out = blocks.answer_blocks(
        _answer(huge), "ans1", live_url="https://bot.example/live/t", video_enabled=True
    )
    assert len(out) <= blocks.MAX_BLOCKS
    for b in out:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= SECTION_LIMIT
    types = [b["type"] for b in out]
    assert types[-2:] == ["actions", "context_actions"]
    sources = next(b for b in out if b.get("text", {}).get("text", "").startswith("*Sources*"))
    assert "[1] <https://docs.example/1|Doc 1 — Intro>" in sources["text"]["text"]
    # A source without a web link is its title alone: no server path, no broken italics.
    assert sources["text"]["text"].endswith("\n[2] Doc 2 — Intro")
    assert "/srv/" not in sources["text"]["text"] and "_" not in sources["text"]["text"]
    buttons = {e["action_id"]: e for e in out[-2]["elements"]}
    assert buttons[blocks.WATCH_LIVE]["url"] == "https://bot.example/live/t"
    assert buttons[blocks.MAKE_VIDEO]["value"] == "ans1"
    feedback = out[-1]["elements"][0]
    assert feedback["type"] == "feedback_buttons"
    assert feedback["positive_button"]["value"] == "good:ans1"
    json.dumps(out)  # serialisable as sent


def test_without_avatar_only_feedback_follows_the_sources() -> None:
    out = blocks.answer_blocks(_answer("Short [1]."), "a2", include_text=False)
    assert [b["type"] for b in out] == ["section", "context_actions"]


# --- which events are answered -------------------------------------------------------------


def test_routing_of_message_events() -> None:
    base = {"type": "message", "user": "U1", "text": "hi", "ts": "1.0", "channel": "C1"}
    assert route_message({**base, "channel_type": "im"}, "UBOT") is Route.ANSWER
    assert route_message({**base, "channel_type": "channel"}, "UBOT") is Route.IGNORE
    assert (
        route_message({**base, "channel_type": "channel", "thread_ts": "0.5"}, "UBOT")
        is Route.FOLLOW_UP
    )
    assert (
        route_message(
            {**base, "channel_type": "channel", "thread_ts": "0.5", "text": "<@UBOT> again"}, "UBOT"
        )
        is Route.IGNORE
    )
    assert (
        route_message({**base, "channel_type": "im", "subtype": "file_share"}, "UBOT")
        is Route.FILES
    )
    for extra in (
        {"bot_id": "B1"},
        {"user": "UBOT"},
        {"subtype": "message_changed"},
        {"subtype": "channel_join"},
        {"edited": {"ts": "2"}},
    ):
        assert route_message({**base, "channel_type": "im", **extra}, "UBOT") is Route.IGNORE
    assert route_mention({**base, "type": "app_mention"}, "UBOT") is Route.ANSWER
    assert route_mention({**base, "bot_id": "B1"}, "UBOT") is Route.IGNORE
