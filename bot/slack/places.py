"""Where a Slack question is asked, as `knowledge.visibility` needs it.

Every surface that answers (mentions, DMs, `/ask`, `/ask-video`, the assistant pane, App
Home, `/knowledge search`) builds its `Asking` here, so one rule decides what it may use.
"""

from __future__ import annotations

from bot.store.base import Store
from knowledge.visibility import Asking


async def asking_in(store: Store, channel: str, *, context_channel: str | None = None) -> Asking:
    """The conversation `channel` with its bound datasources. In an assistant thread the
    channel the person is looking at (`context_channel`) lends its bindings."""
    bound = await store.bindings(channel)
    if not bound and context_channel:
        bound = await store.bindings(context_channel)
    return Asking(place=channel, bound=tuple(bound))
