"""The C allocator's policy for this process (glibc only; elsewhere nothing changes)."""

from __future__ import annotations

import contextlib
import ctypes

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def few_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives every thread that allocates its own heap (up to 8 per core), and each
    keeps what it freed: embedding and composing on several worker threads then hold
    several copies of their peak. Two arenas serve our few busy threads as fast
    (measured: -40 MB at a burst's peak in `serve`, -25 MB in `knowledge add`)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc's malloc_trim), e.g. after a
    load whose temporaries are gone: glibc keeps them otherwise, and they count in the
    process's resident set until reused."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
