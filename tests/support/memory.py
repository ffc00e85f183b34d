"""Whether a finished piece of work still holds on to what it was given."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any


def _contains(value: Any, marker: str, depth: int = 0) -> bool:
    if isinstance(value, str):
        return marker in value
    if isinstance(value, bytes | bytearray):
        return marker.encode() in value
    # Containers of plain values are not tracked by the collector: look inside them.
    if depth < 4 and isinstance(value, dict) and not gc.is_tracked(value):
        return any(_contains(v, marker, depth + 1) for v in value.values())
    if depth < 4 and isinstance(value, tuple | list) and not gc.is_tracked(value):
        return any(_contains(v, marker, depth + 1) for v in value)
    return False


def still_held(marker: str) -> bool:
    """True if any living object refers to a text or bytes with `marker` in it (the caller
    keeps `marker` itself, not the larger text it was part of)."""
    gc.collect()
    return any(
        ref is not marker and _contains(ref, marker)
        for holder in gc.get_objects()
        for ref in gc.get_referents(holder)
    )


def holders_of(marker: str) -> list[str]:
    """What `still_held` found, for an assertion's message."""
    gc.collect()
    return [
        f"{type(holder).__name__}: {str(holder)[:300]}"
        for holder in gc.get_objects()
        for ref in gc.get_referents(holder)
        if ref is not marker and _contains(ref, marker)
    ]


async def released(marker: str, within_s: float = 1.0) -> bool:
    """True once nothing holds `marker` any more, letting the loop run the work's last steps."""
    deadline = time.monotonic() + within_s
    while still_held(marker):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
