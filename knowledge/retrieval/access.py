"""How a process reaches Chroma: a server (shared by design) or the embedded store (guarded).

Embedded Chroma keeps each collection's vector index in the memory of the process that
opened it and does not notice writes by other processes: a long-running searcher beside two
writing processes failed most of its searches with `InternalError: Error finding id`. So on
one machine every process that opens the same embedded store takes turns:

- each Chroma call (or short run of calls) holds an exclusive `flock` on
  `<data_dir>/chroma.lock`, so no two processes touch the files at once;
- a process that wrote leaves a fresh token in that file when it lets go; a process that
  finds a token it did not see last time reopens its client before its next call, so it
  reads what the other process wrote instead of its own stale in-memory index.

Waiting is short: calls are milliseconds, a writer's batch upsert about a second; long work
(embedding, parsing) happens outside the lock. A process that cannot get the lock within
`wait_seconds` gets a `ChunkStoreError` saying what to do. A Chroma server (`CHROMA_HOST`)
needs none of this: the server is the one process that owns the files.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_registry_lock = threading.Lock()
_registry: dict[Path, EmbeddedAccess] = {}


class AccessTimeout(Exception):
    """The embedded store stayed locked by another process for too long."""


class ServerAccess:
    """A Chroma server: one client, no cross-process guard needed."""

    # Nothing tells this process that another changed the store: every read goes to it.
    mark: bytes | None = None

    def __init__(self, client: Any) -> None:
        self.client = client
        self.epoch = 0

    @contextmanager
    def use(self, write: bool = False) -> Iterator[Any]:
        yield self.client


class EmbeddedAccess:
    """One per process per embedded store: the client, the in-process lock, the file lock."""

    wait_seconds = 120.0

    def __init__(self, lock_path: Path, open_client: Callable[[], Any]) -> None:
        self._lock_path = lock_path
        self._open = open_client
        self._thread_lock = threading.RLock()
        self._fd: int | None = None
        self._depth = 0
        self._wrote = False
        self._seen: bytes | None = None
        self.client: Any = None  # opened under the lock, on first use
        self.epoch = 0  # bumped on every reopen; callers drop cached collection handles

    @classmethod
    def for_dir(cls, chroma_dir: Path, lock_path: Path, open_client: Callable[[], Any]) -> Any:
        key = chroma_dir.resolve()
        with _registry_lock:
            if key not in _registry:
                _registry[key] = cls(lock_path, open_client)
            return _registry[key]

    @property
    def mark(self) -> bytes | None:
        """The last write's token, read under the lock: while it stays the same, no process
        (this one included) has written since, so what was read then still holds. None
        inside a hold that writes (the token moves only when it ends)."""
        return None if self._wrote else self._seen

    @contextmanager
    def use(self, write: bool = False) -> Iterator[Any]:
        """The client, with this process holding the store; reentrant within a thread."""
        with self._thread_lock:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                if write:
                    self._wrote = True
                yield self.client
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self) -> None:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise AccessTimeout(str(self._lock_path)) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        self._fd = fd
        token = os.pread(fd, 64, 0)
        try:
            if self.client is None:
                self.client = self._open()
            elif token != self._seen:
                self._reopen()
        except BaseException:
            self._fd = None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._seen = token

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._wrote:
                token = uuid.uuid4().hex.encode()
                os.pwrite(fd, token, 0)
                os.ftruncate(fd, len(token))
                self._seen = token
                self._wrote = False
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _reopen(self) -> None:
        """Another process wrote: drop this process's cached view and read the files again."""
        from chromadb.api.shared_system_client import SharedSystemClient

        old = self.client
        identifier = old._identifier
        old.close()
        # close() only stops the shared system when no other client of this path is open
        # in the process; any other would keep the stale index alive, so stop it regardless.
        system = SharedSystemClient._identifier_to_system.pop(identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(identifier, None)
        if system is not None:
            system.stop()
        self.client = self._open()
        self.epoch += 1
