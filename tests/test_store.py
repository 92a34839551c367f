"""The state store, the same tests on SQLite and on a real PostgreSQL server (`any_store`)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bot.store import (
    AnswerRecord,
    Feedback,
    LeaseLost,
    SqlStore,
    StoreError,
    VideoJobRecord,
    VideoJobState,
)
from bot.store.base import DROPPED
from bot.store.sealing import Sealer
from tests.fakes.clock import FakeClock


def answer(answer_id: str = "a1", **over: object) -> AnswerRecord:
    fields: dict = {
        "id": answer_id,
        "question": "How do I add documents?",
        "text": "Run `avatarbot knowledge add`.",
        "spoken": "Run avatarbot knowledge add.",
        "sources": [{"title": "Guide", "url": "https://example.org/guide"}],
        "channel": "C1",
        "thread_ts": "100.1",
        "asker": "U1",
        "team": "T1",
        "datasources": ["handbook"],
    }
    fields.update(over)
    return AnswerRecord(**fields)


def job(job_id: str = "j1", dedupe: str = "C1:100.1:q", **over: object) -> VideoJobRecord:
    fields: dict = {
        "id": job_id,
        "dedupe_key": dedupe,
        "question": "q",
        "script": "Say this.",
        "target": {"channel": "C1", "thread_ts": "100.1"},
    }
    fields.update(over)
    return VideoJobRecord(**fields)


async def test_event_id_is_claimed_once_until_it_expires(
    any_store: SqlStore, store_clock: FakeClock
) -> None:
    assert await any_store.claim_once("slack-event", "Ev1", ttl_seconds=60)
    assert not await any_store.claim_once("slack-event", "Ev1", ttl_seconds=60)
    assert await any_store.claim_once("webhook", "Ev1", ttl_seconds=60)  # other namespace
    store_clock.advance(61)
    assert await any_store.claim_once("slack-event", "Ev1", ttl_seconds=60)
    assert not await any_store.claim_once("slack-event", "Ev1", ttl_seconds=60)


async def test_writes_made_at_once_each_keep_their_own_outcome(any_store: SqlStore) -> None:
    # A burst: claims (some of the same event), answers and a message id for an unknown
    # answer, asked for together, share transactions yet each gets its own result.
    keys = [f"Ev{n % 10}" for n in range(40)]
    claimed, *_ = await asyncio.gather(
        asyncio.gather(*(any_store.claim_once("slack-event", k, 60) for k in keys)),
        *(any_store.save_answer(answer(f"b{n}")) for n in range(10)),
    )
    assert sum(claimed) == 10  # one winner per event id
    assert {k for k, won in zip(keys, claimed, strict=True) if won} == set(keys)
    results = await asyncio.gather(
        any_store.set_answer_message("b1", "1.1"),
        any_store.set_answer_message("nobody", "1.2"),
        any_store.set_answer_message("b2", "1.3"),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StoreError)
    assert (await any_store.get_answer("b2")).message_ts == "1.3"  # type: ignore[union-attr]


async def test_a_channel_read_shared_by_a_burst_still_sees_this_process_writes(
    any_store: SqlStore,
) -> None:
    # Reads of one channel's settings asked for together are one read; a read asked for
    # after this process wrote is a new one, whatever is still in flight.
    first = asyncio.ensure_future(any_store.bindings("C1"))
    await any_store.bind("C1", "handbook", by="U1")
    await any_store.set_private_answers("C1", True, by="U1")
    burst = await asyncio.gather(*(any_store.bindings("C1") for _ in range(20)))
    assert burst == [["handbook"]] * 20
    assert await any_store.private_answers("C1")
    assert await first in ([], ["handbook"])


async def test_answers_round_trip_and_thread_history(
    any_store: SqlStore, store_clock: FakeClock
) -> None:
    await any_store.save_answer(answer("a1"))
    store_clock.advance(1)
    await any_store.save_answer(answer("a2", question="And PDFs?", grounded=False))
    await any_store.save_answer(answer("a3", thread_ts="200.2"))
    await any_store.set_answer_message("a1", "100.5")

    got = await any_store.get_answer("a1")
    assert got is not None
    assert got.message_ts == "100.5"
    assert got.sources == [{"title": "Guide", "url": "https://example.org/guide"}]
    assert got.datasources == ["handbook"]
    assert got.created_at == store_clock.now - 1
    assert [a.id for a in await any_store.thread_answers("C1", "100.1")] == ["a1", "a2"]
    assert (await any_store.get_answer("a2")).grounded is False  # type: ignore[union-attr]
    assert await any_store.get_answer("missing") is None
    with pytest.raises(StoreError, match="missing"):
        await any_store.set_answer_message("missing", "1.0")


async def test_an_answers_intent_and_stream_are_kept_until_it_is_delivered(
    any_store: SqlStore,
) -> None:
    """Saved before answering (pending), its stream's ts once known, then the final text:
    a restart finds each stage in `unposted_answers`; a failed answer's intent is dropped."""
    await any_store.save_answer(answer("a1", text="", question_ts="100.1", pending=True))
    await any_store.set_answer_stream("a1", "100.7")
    [intent] = await any_store.unposted_answers(0)
    assert (intent.pending, intent.stream_ts, intent.question_ts) == (True, "100.7", "100.1")
    await any_store.save_answer(intent.model_copy(update={"text": "Done.", "pending": False}))
    [final] = await any_store.unposted_answers(0)
    assert (final.pending, final.stream_ts, final.text) == (False, "100.7", "Done.")
    await any_store.set_answer_message("a1", "100.7")
    assert await any_store.unposted_answers(0) == []
    await any_store.save_answer(answer("a2", pending=True))
    await any_store.drop_answer("a2")
    assert await any_store.get_answer("a2") is None


async def test_second_vote_replaces_the_first(any_store: SqlStore) -> None:
    await any_store.save_answer(answer("a1"))
    await any_store.record_feedback("a1", "U1", Feedback.GOOD)
    await any_store.record_feedback("a1", "U2", Feedback.GOOD)
    await any_store.record_feedback("a1", "U1", Feedback.BAD, comment="outdated")
    assert await any_store.feedback_counts("a1") == {Feedback.GOOD: 1, Feedback.BAD: 1}
    assert await any_store.feedback_counts("nobody") == {Feedback.GOOD: 0, Feedback.BAD: 0}


async def test_bindings(any_store: SqlStore) -> None:
    await any_store.bind("C1", "handbook", by="U1")
    await any_store.bind("C1", "handbook", by="U2")  # already bound: no duplicate
    await any_store.bind("C1", "wiki", by="U1")
    await any_store.bind("C2", "wiki", by="U1")
    assert await any_store.bindings("C1") == ["handbook", "wiki"]
    assert await any_store.unbind("C1", "wiki") == 1
    assert await any_store.unbind("C1", "wiki") == 0
    assert await any_store.bindings("C1") == ["handbook"]
    assert await any_store.unbind("C2") == 1
    assert await any_store.bindings("C2") == []


async def test_same_question_while_unfinished_is_one_job(any_store: SqlStore) -> None:
    first, created = await any_store.create_video_job(job("j1"))
    assert created and first.state is VideoJobState.PENDING
    again, created = await any_store.create_video_job(job("j2"))
    assert not created and again.id == "j1"
    claimed = await any_store.claim_video_job("r1", 60, job_id="j1")
    assert claimed is not None
    await any_store.update_video_job("j1", "r1", state=VideoJobState.DELIVERED)
    # once delivered, asking again makes a new video
    third, created = await any_store.create_video_job(job("j3"))
    assert created and third.id == "j3"
    assert [j.id for j in await any_store.unfinished_video_jobs()] == ["j3"]


async def test_job_lease_claim_update_expire(any_store: SqlStore, store_clock: FakeClock) -> None:
    await any_store.create_video_job(job("j1", "k1"))
    store_clock.advance(1)
    await any_store.create_video_job(job("j2", "k2"))

    first = await any_store.claim_video_job("r1", lease_seconds=30)
    assert first is not None and first.id == "j1"  # oldest first
    assert first.lease_owner == "r1" and first.attempts == 1
    second = await any_store.claim_video_job("r2", lease_seconds=30)
    assert second is not None and second.id == "j2"
    assert await any_store.claim_video_job("r3", lease_seconds=30) is None

    updated = await any_store.update_video_job(
        "j1", "r1", state=VideoJobState.SUBMITTED, heygen_video_id="hv1"
    )
    assert updated.state is VideoJobState.SUBMITTED
    assert (await any_store.find_video_job("hv1")).id == "j1"  # type: ignore[union-attr]
    with pytest.raises(LeaseLost):
        await any_store.update_video_job("j1", "r2", state=VideoJobState.FAILED)

    # r1 stops renewing: after the lease, another replica takes the job over
    store_clock.advance(31)
    assert await any_store.renew_video_job("j2", "r2", 30)
    taken = await any_store.claim_video_job("r3", lease_seconds=30)
    assert taken is not None and taken.id == "j1" and taken.attempts == 2
    with pytest.raises(LeaseLost):
        await any_store.update_video_job("j1", "r1", error="late")
    assert not await any_store.renew_video_job("j1", "r1", 30)

    await any_store.release_video_job("j2", "r2")
    again = await any_store.claim_video_job("r3", 30, job_id="j2")
    assert again is not None and again.lease_owner == "r3"
    with pytest.raises(StoreError, match="nope"):
        await any_store.update_video_job("nope", "r3", error="x")
    with pytest.raises(TypeError):
        await any_store.update_video_job("j2", "r3", lease_owner="r1")


async def test_finished_jobs_are_never_claimed(any_store: SqlStore) -> None:
    await any_store.create_video_job(job("j1"))
    await any_store.claim_video_job("r1", 60)
    await any_store.update_video_job("j1", "r1", state="failed", error="HeyGen said no")
    await any_store.release_video_job("j1", "r1")
    assert await any_store.claim_video_job("r2", 60) is None
    assert (await any_store.get_video_job("j1")).error == "HeyGen said no"  # type: ignore[union-attr]


async def test_live_scope_lease(any_store: SqlStore, store_clock: FakeClock) -> None:
    record, won = await any_store.claim_live_scope("channel:T1:C1", "liveavatar", "r1", 30)
    assert won and record.state == "starting" and record.owner == "r1"
    record, won = await any_store.claim_live_scope("channel:T1:C1", "liveavatar", "r2", 30)
    assert not won and record.owner == "r1"

    tokens = {"session_token": "sk-live-secret", "url": "wss://x"}
    live = await any_store.update_live_session(
        "channel:T1:C1", "r1", state="live", session_id="s1", session=tokens
    )
    assert live.session == tokens and live.session_id == "s1"
    assert "sk-live-secret" not in repr(live) and "sk-live-secret" not in str(live)
    with pytest.raises(LeaseLost):
        await any_store.update_live_session("channel:T1:C1", "r2", state="closed")

    await any_store.mark_viewer_seen("channel:T1:C1")  # any replica, no lease
    assert (await any_store.get_live_session("channel:T1:C1")).viewer_seen_at == store_clock.now  # type: ignore[union-attr]

    store_clock.advance(31)  # r1 died: r2 takes the scope and finds r1's session
    record, won = await any_store.claim_live_scope("channel:T1:C1", "liveavatar", "r2", 30)
    assert won and record.owner == "r2" and record.session == tokens
    assert [r.scope for r in await any_store.live_sessions()] == ["channel:T1:C1"]

    await any_store.update_live_session("channel:T1:C1", "r2", state="closed", lease_until=0)
    assert await any_store.live_sessions() == []
    record, won = await any_store.claim_live_scope("channel:T1:C1", "streaming", "r3", 30)
    assert won and record.state == "starting" and record.session is None
    assert record.backend == "streaming"


async def test_session_tokens_are_encrypted_at_rest(
    store_url: str, store_key: str, store_clock: FakeClock
) -> None:
    async with SqlStore(store_url, sealer=Sealer([store_key.encode()]), clock=store_clock) as s:
        await s.claim_live_scope("user:U1", "liveavatar", "r1", 30)
        await s.update_live_session("user:U1", "r1", session={"token": "sk-plain-token"})
        async with s._tx() as c:  # what an attacker with the database file would read
            raw = (await c.exec_driver_sql("SELECT session_sealed FROM live_sessions")).scalar()
        assert raw and "sk-plain-token" not in raw

    other = Sealer([b"ZmFrZS1rZXktZm9yLXRlc3RzLW9ubHktMzItYnl0ZXM="])
    async with SqlStore(store_url, sealer=other, clock=store_clock) as s:
        with pytest.raises(StoreError, match="STORE_SECRET_KEY") as err:
            await s.get_live_session("user:U1")
        assert "sk-plain-token" not in str(err.value)


async def test_viewer_link_is_stable_until_it_expires(
    any_store: SqlStore, store_clock: FakeClock
) -> None:
    link = await any_store.live_link("channel:T1:C1", ttl_seconds=3600)
    assert len(link.token) >= 22
    assert (await any_store.live_link("channel:T1:C1", 3600)).token == link.token
    other = await any_store.live_link("channel:T1:C2", 3600)
    assert other.token != link.token

    store_clock.advance(3601)
    resolved = await any_store.resolve_live_link(link.token)
    assert resolved is not None and resolved.expired(store_clock.now)
    fresh = await any_store.live_link("channel:T1:C1", 3600)
    assert fresh.token != link.token and not fresh.expired(store_clock.now)
    assert await any_store.resolve_live_link("unknown") is None


async def test_speech_queue(any_store: SqlStore) -> None:
    items = await any_store.enqueue_speech("s1", "a1", ["One.", "Two."])
    more = await any_store.enqueue_speech("s1", "a1", ["Three."])
    assert [i.seq for i in items + more] == [0, 1, 2]
    assert [i.text for i in await any_store.pending_speech("s1")] == ["One.", "Two.", "Three."]

    assert await any_store.claim_speech(items[0].id, "viewer-1")
    assert not await any_store.claim_speech(items[0].id, "viewer-2")
    assert [i.text for i in await any_store.pending_speech("s1")] == ["Two.", "Three."]

    # a new question interrupts: the old answer's unspoken sentences go
    await any_store.enqueue_speech("s1", "a2", ["New."])
    assert await any_store.drop_pending_speech("s1", except_answer="a2") == 2
    assert [i.text for i in await any_store.pending_speech("s1")] == ["New."]
    replay = await any_store.answer_speech("a1")  # the unspoken ones are kept for a replay
    assert [(i.text, i.publisher) for i in replay] == [
        ("One.", "viewer-1"),
        ("Two.", DROPPED),
        ("Three.", DROPPED),
    ]
    assert not await any_store.claim_speech(replay[1].id, "viewer-1")  # out of the queue


async def test_scope_transcript_is_read_from_the_store(any_store: SqlStore) -> None:
    await any_store.save_answer(answer("a1"))
    await any_store.enqueue_speech("s1", "a1", ["One.", "Two."])
    await any_store.enqueue_speech("s1", "a2", ["Three."])  # being spoken, not saved yet
    await any_store.enqueue_speech("s2", "a3", ["Elsewhere."])
    got = await any_store.scope_answers("s1")
    assert [(a.answer_id, a.sentences) for a in got] == [
        ("a1", ["One.", "Two."]),
        ("a2", ["Three."]),
    ]
    assert got[0].answer is not None and got[0].answer.question == "How do I add documents?"
    assert got[0].answer.sources == [{"title": "Guide", "url": "https://example.org/guide"}]
    assert got[1].answer is None

    # a replay queues a1 again: it is now the newest, its sentences still said once each
    await any_store.enqueue_speech("s1", "a1", ["One.", "Two."])
    assert [a.answer_id for a in await any_store.scope_answers("s1")] == ["a2", "a1"]
    assert [a.answer_id for a in await any_store.scope_answers("s1", limit=1)] == ["a1"]
    assert (await any_store.scope_answers("s1"))[-1].sentences == ["One.", "Two."]
    assert await any_store.scope_answers("unknown") == []

    # only the newest `limit` answers, oldest of them first
    for n in range(25):
        await any_store.enqueue_speech("s3", f"b{n:02}", [f"Answer {n}."])
    assert [a.answer_id for a in await any_store.scope_answers("s3")] == [
        f"b{n:02}" for n in range(5, 25)
    ]


async def test_usage_counters_add_up(any_store: SqlStore) -> None:
    assert await any_store.usage("videos", "team:T1", "2026-11-23") == 0.0
    assert await any_store.add_usage("videos", "team:T1", "2026-11-23", 1) == 1.0
    assert await any_store.add_usage("videos", "team:T1", "2026-11-23", 2.5) == 3.5
    await asyncio.gather(
        *(any_store.add_usage("live_minutes", "user:U1", "2026-11-23", 1) for _ in range(10))
    )
    assert await any_store.usage("live_minutes", "user:U1", "2026-11-23") == 10.0
    assert await any_store.usage("videos", "team:T1", "2026-11-24") == 0.0


async def test_audit_log_newest_first(any_store: SqlStore) -> None:
    await any_store.audit("U1", "knowledge.add", {"path": "guide.pdf", "chunks": 12})
    await any_store.audit("U2", "knowledge.remove", {"path": "old.pdf"})
    log = await any_store.audit_log(limit=10)
    assert [(e["actor"], e["action"]) for e in log] == [
        ("U2", "knowledge.remove"),
        ("U1", "knowledge.add"),
    ]
    assert log[1]["detail"] == {"path": "guide.pdf", "chunks": 12}
    assert len(await any_store.audit_log(limit=1)) == 1


async def test_purge_removes_only_old_rows(any_store: SqlStore, store_clock: FakeClock) -> None:
    await any_store.save_answer(answer("old"))
    await any_store.record_feedback("old", "U1", Feedback.GOOD)
    await any_store.enqueue_speech("s1", "old", ["Old."])
    await any_store.claim_once("slack-event", "Ev-old", 60)
    await any_store.create_video_job(job("j-old"))
    await any_store.claim_video_job("r1", 60)
    await any_store.update_video_job("j-old", "r1", state="delivered")
    await any_store.live_link("s1", 60)
    await any_store.audit("U1", "knowledge.add", {})
    store_clock.advance(40 * 86_400)
    cutoff = store_clock.now - 30 * 86_400
    await any_store.save_answer(answer("new"))
    await any_store.claim_once("slack-event", "Ev-new", 60)

    assert await any_store.purge(cutoff) == 6
    assert await any_store.get_answer("old") is None
    assert await any_store.get_answer("new") is not None
    assert await any_store.feedback_counts("old") == {Feedback.GOOD: 0, Feedback.BAD: 0}
    assert await any_store.answer_speech("old") == []
    assert await any_store.get_video_job("j-old") is None
    assert not await any_store.claim_once("slack-event", "Ev-new", 60)
    assert len(await any_store.audit_log()) == 1  # the audit log is kept


async def test_notify_reaches_another_replica(store_url: str, store_key: str) -> None:
    sealer = Sealer([store_key.encode()])
    async with (
        SqlStore(store_url, sealer=sealer, poll_interval=0.02) as replica_a,
        SqlStore(store_url, sealer=sealer, poll_interval=0.02) as replica_b,
    ):
        async with replica_a.listen("speech") as sub:
            await replica_b.notify("speech", {"scope": "s1", "item": 1})
            await replica_b.notify("other", {"ignored": True})
            await replica_b.notify("speech", {"scope": "s1", "item": 2})
            got = [await asyncio.wait_for(anext(sub), 10) for _ in range(2)]
        assert got == [{"scope": "s1", "item": 1}, {"scope": "s1", "item": 2}]
        with pytest.raises(StoreError, match="at most"):
            await replica_b.notify("speech", {"blob": "x" * 9000})


async def test_unreachable_database_is_a_store_error(store_key: str) -> None:
    store = SqlStore(
        "postgresql://bot:hunter2@127.0.0.1:9/avatarbot", sealer=Sealer([store_key.encode()])
    )
    with pytest.raises(StoreError) as err:
        await store.start()
    assert "hunter2" not in str(err.value)
    assert "127.0.0.1" in str(err.value)
    with pytest.raises(StoreError, match="not started"):
        await store.ping()


def test_urls_are_normalised() -> None:
    from bot.store.sql import normalise_url

    assert normalise_url("postgresql://u:p@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgres://u:p@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    hosted = normalise_url("postgres://u:p@h/db?sslmode=require")
    assert hosted.query == {"ssl": "require"}
    with pytest.raises(StoreError, match="DATABASE_URL"):
        normalise_url("mysql://u:p@h/db")


async def test_listener_keeps_receiving_after_a_purge(
    any_store: SqlStore, store_clock: FakeClock
) -> None:
    for n in range(3):
        await any_store.notify("speech", {"n": n})
    async with any_store.listen("speech") as sub:
        store_clock.advance(10)
        await any_store.purge(store_clock.now)  # every stored message goes
        await any_store.notify("speech", {"n": "after"})
        assert await asyncio.wait_for(anext(sub), 10) == {"n": "after"}


async def test_a_listener_whose_connection_dies_says_so(postgres, store_key: str) -> None:
    from tests.store_fixtures import fresh_postgres_database

    url = await fresh_postgres_database(postgres)
    async with SqlStore(url, sealer=Sealer([store_key.encode()])) as store:
        async with store.listen("speech") as sub:
            async with store._tx() as c:
                killed = await c.scalar(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE 'LISTEN%'"
                    )
                )
            assert killed == 1
            with pytest.raises(StoreError, match="closed"):
                await asyncio.wait_for(anext(sub), 10)
        await store.ping()  # the store itself carries on


async def test_an_abandoned_listener_gives_its_connection_back(postgres, store_key: str) -> None:
    import gc
    import warnings

    from tests.store_fixtures import fresh_postgres_database

    url = await fresh_postgres_database(postgres)
    listening = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = "
        "current_database()"
    )
    async with SqlStore(url, sealer=Sealer([store_key.encode()])) as store:
        got: list[dict] = []

        async def listeners() -> int:
            async with store._read() as c:  # a new transaction: a fresh activity snapshot
                return await c.scalar(listening)

        async def consume() -> None:
            async for payload in store.listen("speech"):  # no `async with`, as a task would
                got.append(payload)

        task = asyncio.create_task(consume())
        for _ in range(500):  # until the consumer is listening
            if await listeners() == 1:
                break
            await asyncio.sleep(0.01)
        await store.notify("speech", {"n": 1})
        for _ in range(500):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [{"n": 1}]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            del task
            gc.collect()
            for _ in range(500):  # the close runs on the loop
                if await listeners() == 0:
                    break
                await asyncio.sleep(0.01)
        assert await listeners() == 0
        # returned to the pool, not left for the garbage collector to kill
        assert not [w for w in caught if "garbage collector" in str(w.message)]


async def test_long_ids_fit_on_both_databases(any_store: SqlStore) -> None:
    scope = "thread:T1:C1:" + "1" * 300
    record, won = await any_store.claim_live_scope(scope, "liveavatar", "replica-" + "x" * 200, 30)
    assert won and record.scope == scope
    assert await any_store.claim_once("slack-event", "E" * 500, 60)
