"""A worker builds a large partition's approximate index in a thread, and searches through it."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from routing.cache.core import semantic
from routing.cache.core.stores import MemoryAnswerStore
from routing.cache.engine import ResponseCache


async def test_a_large_partition_gets_its_index_without_blocking_the_loop(monkeypatch):
    monkeypatch.setattr(semantic, "ANN_MIN", 300)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(400, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cache = ResponseCache(MemoryAnswerStore())
    later = time.time() + 60
    for i, vector in enumerate(vectors):
        cache.index.add("p", f"q{i}", vector, later)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await cache.build_indexes()
    ticker.cancel()
    part = cache.index._partitions["p"]
    assert part.ann is not None and not part.building
    assert ticks > 1  # the loop ran while the index was built
    for i in (0, 199, 399):
        found = cache.index.nearest("p", vectors[i], threshold=0.9)
        assert found is not None and found.key == f"q{i}"
    await cache.aclose()
