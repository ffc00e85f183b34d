"""After a burst of large bodies the worker gives memory back: once the burst is over, and again
every few seconds while it is still well above its size before the burst (the burst's records may
still be being written), never for ever."""

from __future__ import annotations

import asyncio

import pytest

from gateway_site import memory
from gateway_site.memory import MemoryTrimmer


@pytest.fixture
def trimmer(monkeypatch: pytest.MonkeyPatch) -> tuple[MemoryTrimmer, list[int], dict[str, int]]:
    size = {"now": 100 << 20}
    monkeypatch.setattr(memory, "resident_bytes", lambda: size["now"])
    trims: list[int] = []
    trimmer = MemoryTrimmer(quiet_seconds=0.01)
    trimmer.LATER_SECONDS = 0.01
    trimmer.LATER_TRIES = 5
    monkeypatch.setattr(trimmer, "_trim", lambda: trims.append(size["now"]))
    return trimmer, trims, size


async def _burst(trimmer: MemoryTrimmer, size: dict[str, int], grown_mb: int) -> None:
    trimmer.started()
    size["now"] += grown_mb << 20
    trimmer.finished()


async def test_it_trims_once_when_the_burst_left_nothing_behind(trimmer) -> None:
    trimmer, trims, size = trimmer
    await _burst(trimmer, size, 10)  # under the slack
    await asyncio.sleep(0.2)
    assert len(trims) == 1


async def test_it_tries_again_while_memory_stays_up_and_stops_once_it_is_back(trimmer) -> None:
    trimmer, trims, size = trimmer
    await _burst(trimmer, size, 200)
    await asyncio.sleep(0.05)
    assert 1 <= len(trims) < 6
    size["now"] -= 200 << 20  # the burst's records are written and let go
    await asyncio.sleep(0.1)
    count = len(trims)
    await asyncio.sleep(0.1)
    assert len(trims) == count  # no more trims once it is back


async def test_it_gives_up_after_its_tries(trimmer) -> None:
    trimmer, trims, size = trimmer
    await _burst(trimmer, size, 200)  # and it never comes down
    await asyncio.sleep(0.3)
    assert len(trims) == 1 + trimmer.LATER_TRIES
