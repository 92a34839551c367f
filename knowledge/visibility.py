"""Where a document may be answered from: the one rule every answering surface applies.

A document belongs to the datasource it was added to. Most documents are workspace
knowledge. A file shared in a private conversation (a private channel, a group DM or a DM
with the bot) carries that conversation as its `place`, and is answerable only

- in that conversation, or
- in a channel bound to its datasource (an admin chose to publish that datasource there).

An unbound channel searches every datasource, but never another conversation's private
files. A bound channel searches only its datasources (private files of those included: the
binding is the admin's decision to publish them there).

Pure: no Slack, no store. `Asking` says where a question is asked; `visible` decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.models import Hit


@dataclass(frozen=True)
class Asking:
    """Where a question is asked: the conversation and the datasources bound to it."""

    place: str = ""  # the conversation id ('' = no conversation: the CLI, an operator)
    bound: tuple[str, ...] = field(default_factory=tuple)

    @property
    def datasources(self) -> list[str] | None:
        """The search filter: the bound datasources, or None for all of them."""
        return list(self.bound) or None


def visible(datasource: str, place: str, asking: Asking) -> bool:
    """May a document of `datasource`, shared in `place` ('' = anywhere), answer here?"""
    if asking.bound:
        return datasource in asking.bound
    return not place or place == asking.place


def visible_hits(hits: Sequence[Hit], asking: Asking) -> list[Hit]:
    return [h for h in hits if visible(h.chunk.datasource, h.chunk.place, asking)]


def visible_datasources(places: dict[str, set[str]], asking: Asking) -> list[str]:
    """The datasources with at least one document answerable here; `places` maps each
    datasource to the places of its documents ('' for workspace-wide ones)."""
    return sorted(ds for ds, where in places.items() if any(visible(ds, p, asking) for p in where))
