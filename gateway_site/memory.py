"""Giving a worker's memory back to the system after large request bodies.

A 7 MB body passes through several buffers (the socket, Django's body file, `request.body`, the
parsed JSON, the audit record, the request to the provider). Two things kept them after the
answer: a finished request sits in a reference cycle, so it waits for the cyclic garbage
collector, which a few large requests do not wake; and glibc keeps freed memory in its arenas.
Measured (docs/operations.md, "Request bodies"): 16 concurrent 7 MB requests left a worker
+370 MB for good, growing with every burst; with a collection and `malloc_trim` once the burst is
over, and large blocks always served by mmap (so freeing them unmaps them), +90 to +150 MB; with
the audit writer and the journal no longer keeping their last batch, back to idle.

The collection takes about 0.1 s with the GIL held; it runs only after large bodies, once none
has been in flight for a moment. Elsewhere than glibc the allocator calls are skipped.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from typing import Any

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# glibc gives each thread that meets a busy arena one of its own (up to 8 per CPU), and freed
# memory stays in the arena that served it: every thread that touched a body (the ORM's,
# `to_thread`'s) can keep fragments of its own. After the whole test suite a worker settled
# +114 to +129 MB above idle in maps of arena size, none a body's. Two arenas are plenty under
# the GIL: same sitting, A/B, no change in req/s, streams/s or idle RSS (144.6 MB both).
_ARENAS = 2
# Blocks from this size on come straight from mmap and go back when freed. glibc's default
# starts at 128 KiB but raises itself to the largest block freed, up to 32 MiB: after one large
# body, later ones land in the arenas and stay.
_MMAP_THRESHOLD_BYTES = 256 * 1024


def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None  # musl, macOS
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


class MemoryTrimmer:
    """Counts large bodies in flight; once none has been for `quiet_seconds`, collects garbage
    and returns free memory to the system, on a thread."""

    LATER_SECONDS = 5.0

    def __init__(self, *, quiet_seconds: float = 0.5) -> None:
        self.quiet_seconds = quiet_seconds
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._libc = _glibc()
        if self._libc is not None:
            self._libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
            self._libc.mallopt(_M_ARENA_MAX, _ARENAS)

    def started(self) -> None:
        self._in_flight += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.quiet_seconds, self._trim_soon, True)

    def _trim_soon(self, again: bool) -> None:
        self._timer = None
        task = asyncio.ensure_future(asyncio.to_thread(self._trim))
        task.add_done_callback(lambda done: done.exception())  # nothing to report, nothing lost
        if again:
            # Once more a few seconds on: background work of the burst (audit writes, budget
            # settlements) may still have held some of its bodies the first time.
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.LATER_SECONDS, self._trim_soon, False)

    def _trim(self) -> None:
        gc.collect()
        if self._libc is not None:
            self._libc.malloc_trim(0)
