"""The multi-writer write protocol: owned, leased intents and one short commit lock.

Any number of writers (threads, processes, machines on one Chroma server) add at once:

- chunks are written under a fresh generation per document, after an intent naming that
  generation, its owner (host:pid:random) and a lease expiry; a thread renews the lease of
  every open intent while the writer runs;
- a document becomes visible when its manifest record names its generation (the commit
  point). Commits, removals, reindex and sweeps happen under the commit lock: one record
  created with `add` (Chroma keeps the first), holding an owner and a lease too. Inside it
  a writer records which generation it replaced, commits, bumps the version stamp, deletes
  the replaced generation by name and drops its intents;
- only intents whose lease ran out, or whose process is gone (same host), are swept: their
  uncommitted generation, or the generation a crashed commit replaced, is deleted by name.

So a slow writer is never swept while it renews, a crash at any step is finished by the next
writer, and no writer's delete can hit another writer's chunks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from knowledge.retrieval.store import ChunkStore, ChunkStoreError, Intent

logger = logging.getLogger(__name__)

_HOST = socket.gethostname()


def new_owner() -> str:
    """An owner id for one write: host, process and a random part."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str, expires: float, now: float | None = None) -> bool:
    """Whether an intent or lock may still be in use: its lease runs and, on this host,
    its process exists (a crashed local writer is swept at once, not after the lease)."""
    if expires <= (time.time() if now is None else now):
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host == _HOST and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, someone else's
    return True


class Lease:
    """One writer's identity, its open intents and (while held) the commit lock, renewed by a
    background thread every quarter lease."""

    lock_wait_seconds = 600.0

    def __init__(self, store: ChunkStore, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        self.owner = new_owner()
        self._open: dict[tuple[str, str], Intent] = {}
        self._guard = threading.Lock()
        self._lock_purpose: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- intents -----------------------------------------------------------------------

    def intent(self, doc: str, gen: str) -> Intent:
        return Intent(doc, gen, self.owner, time.time() + self.seconds)

    def intend(self, pairs: list[tuple[str, str]]) -> None:
        """Record intents before their chunks; they are renewed until `release`d."""
        intents = [self.intent(d, g) for d, g in pairs]
        self.store.intend(intents)
        with self._guard:
            self._open.update({(i.doc, i.gen): i for i in intents})

    def release(self, pairs: list[tuple[str, str]]) -> None:
        with self._guard:
            for pair in pairs:
                self._open.pop(pair, None)
        self.store.done([Intent(d, g) for d, g in pairs])

    def still_mine(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these intents are still recorded (a sweeper may have taken them after a
        missed renewal)."""
        recorded = {(i.doc, i.gen) for i in self.store.pending(self.owner)}
        return {p for p in pairs if p in recorded}

    # --- the commit lock -----------------------------------------------------------------

    @contextmanager
    def locked(self, purpose: str) -> Iterator[None]:
        deadline = time.monotonic() + self.lock_wait_seconds
        delay = 0.005
        while True:
            expires = time.time() + self.seconds
            holder = self.store.try_lock(self.owner, expires, purpose)
            if holder.get("owner") == self.owner:
                break
            if holder and not owner_alive(str(holder["owner"]), float(holder["expires"])):
                self.store.unlock(str(holder["owner"]), float(holder["expires"]))
                continue
            if time.monotonic() > deadline:
                raise ChunkStoreError(
                    self.store.where,
                    f"another writer ({holder.get('purpose', 'a write')} by "
                    f"{holder.get('owner', '?')}) has held the commit lock for over "
                    f"{self.lock_wait_seconds:.0f} s; try again when it has finished",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        with self._guard:
            self._lock_purpose = purpose
        try:
            yield
        finally:
            with self._guard:
                self._lock_purpose = None
            self.store.unlock(self.owner)

    # --- renewal -------------------------------------------------------------------------

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._renew_loop, name="kb-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            try:
                self.renew()
            except ChunkStoreError as exc:  # the next round tries again; the lease has slack
                logger.warning("cannot renew the write lease: %s", exc)

    def renew(self) -> None:
        expires = time.time() + self.seconds
        with self._guard:
            pairs = list(self._open)
            purpose = self._lock_purpose
        if pairs:
            self.store.renew([Intent(d, g, self.owner, expires) for d, g in pairs])
        if purpose is not None:
            self.store.renew_lock(self.owner, expires, purpose)


def sweep(store: ChunkStore, collection: str) -> int:
    """Finish or undo writes whose writer is gone; call under the commit lock. Returns the
    number of intents cleared (the version stamp moves when any were)."""
    expired = [i for i in store.pending() if not owner_alive(i.owner, i.expires)]
    if not expired:
        return 0
    committed = store.committed(sorted({i.doc for i in expired}))
    doomed: set[str] = set()
    for intent in expired:
        record = committed.get(intent.doc)
        if record is None or record["gen"] != intent.gen:
            doomed.add(intent.gen)  # never committed (or since replaced, or removed)
        elif record.get("replaced"):
            doomed.add(str(record["replaced"]))  # committed, but its clean-up never ran
    store.delete_generations(collection, sorted(doomed))
    store.done(expired)
    state = store.state()
    if state is not None:
        store.write_state(state.collection, state.embedding)
    return len(expired)
