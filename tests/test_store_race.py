"""Real OS processes race for the same event ids, jobs, live scopes and sentences: one winner
each, on SQLite and on PostgreSQL. They also migrate the same empty database at once."""

from __future__ import annotations

import multiprocessing
from collections import Counter

from tests import store_race

RACERS = 4


def test_processes_racing_get_one_winner_each(store_url: str, store_key: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(RACERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=store_race.racer, args=(store_url, store_key, f"racer{n}", barrier, results)
        )
        for n in range(RACERS)
    ]
    for p in procs:
        p.start()
    try:
        outcome = dict(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = {name: r["error"] for name, r in outcome.items() if "error" in r}
    assert not errors, errors

    def winners(field: str) -> Counter:
        return Counter(x for r in outcome.values() for x in r[field])

    everything = {
        "created": {f"q{i}" for i in range(store_race.JOBS)},
        "events": {f"Ev{i}" for i in range(store_race.EVENTS)},
        "jobs": {f"q{i}" for i in range(store_race.JOBS)},
        "scopes": {f"scope{i}" for i in range(store_race.SCOPES)},
    }
    for field, expected in everything.items():
        counts = winners(field)
        assert set(counts) == expected, field
        assert set(counts.values()) == {1}, f"{field}: {counts.most_common(3)}"
    speech = winners("speech")
    assert all(r["speech_seen"] == store_race.SENTENCES for r in outcome.values())
    assert len(speech) == store_race.SENTENCES and set(speech.values()) == {1}
    assert len({r["link"] for r in outcome.values()}) == 1
