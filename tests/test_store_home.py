"""The store queries behind App Home and private answers, on SQLite and PostgreSQL."""

from __future__ import annotations

from bot.store import SqlStore
from bot.store.base import Feedback
from tests.fakes.clock import FakeClock
from tests.test_store import answer


async def test_rated_answers_count_votes_newest_rating_first(
    any_store: SqlStore, store_clock: FakeClock
) -> None:
    await any_store.save_answer(answer("a1", question="first?"))
    await any_store.save_answer(answer("a2", question="second?"))
    await any_store.save_answer(answer("a3", question="never rated"))
    await any_store.record_feedback("a1", "U1", Feedback.BAD)
    await any_store.record_feedback("a1", "U2", Feedback.BAD)
    await any_store.record_feedback("a1", "U3", Feedback.GOOD)
    store_clock.advance(5)
    await any_store.record_feedback("a2", "U1", Feedback.GOOD)
    await any_store.record_feedback("a2", "U1", Feedback.BAD)  # a second vote replaces
    rated = await any_store.rated_answers()
    assert [(r.id, good, bad) for r, good, bad in rated] == [("a2", 0, 1), ("a1", 1, 2)]
    assert rated[1][0].question == "first?"


async def test_all_bindings_and_private_answers(any_store: SqlStore) -> None:
    await any_store.bind("C1", "hr", by="UADMIN")
    await any_store.bind("C2", "hr", by="UADMIN")
    await any_store.bind("C2", "handbook", by="UADMIN")
    assert await any_store.all_bindings() == {"handbook": ["C2"], "hr": ["C1", "C2"]}
    assert not await any_store.private_answers("C1")
    await any_store.set_private_answers("C1", True, by="UADMIN")
    assert await any_store.private_answers("C1") and not await any_store.private_answers("C2")
    await any_store.set_private_answers("C1", False, by="UADMIN")
    assert not await any_store.private_answers("C1")
