"""Time a cache lookup that misses, in-process: what every request on a caching route pays."""

import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandParser

from routing.cache.core.keys import request_keys
from routing.cache.core.policy import DEFAULT_SIMILARITY, CachePolicy, Directives
from routing.cache.engine import ResponseCache, local_embedder
from routing.cache.proxy import MISS, CacheState, _find

QUESTIONS = (
    "What is the current asset allocation of the {n} portfolio, and how did it change in {y}?",
    "Summarise the fees the {n} household paid on its brokerage accounts in {y}.",
    "How should the {n} family rebalance its bond ladder before rates move in {y}?",
)


def _payload(i: int) -> dict[str, Any]:
    text = QUESTIONS[i % 3].format(n=f"Client{i}", y=2000 + i % 25)
    return {
        "model": "advisor-chat",
        "messages": [
            {"role": "system", "content": "You are a careful wealth advisor."},
            {"role": "user", "content": text},
        ],
        "temperature": 0.2,
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples.sort()
    return {
        "p50_us": statistics.median(samples),
        "p99_us": samples[int(len(samples) * 0.99) - 1],
    }


class Command(BaseCommand):
    help = "Time cache lookups that miss (exact, and semantic with a populated index)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--iterations", type=int, default=2000)
        parser.add_argument("--entries", type=int, default=10_000, help="in the one partition")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(
        self, *args: Any, iterations: int, entries: int, as_json: bool, **options: Any
    ) -> None:
        timings = asyncio.run(self._run(iterations, entries))
        if as_json:
            self.stdout.write(json.dumps(timings))
            return
        for row in timings:
            build = f" (index built in {row['index_build_s']} s)" if "index_build_s" in row else ""
            self.stdout.write(
                f"{row['scenario']}: p50 {row['p50_us']:.0f} µs, p99 {row['p99_us']:.0f} µs{build}"
            )

    async def _run(self, iterations: int, entries: int) -> list[dict[str, Any]]:
        cache = ResponseCache()
        embedder = local_embedder()
        assert embedder is not None, "install wordllama"
        cache.use_embedder(embedder)
        timings = []
        try:
            for mode in ("exact", "semantic"):
                policy = CachePolicy(mode=mode, ttl_s=60, similarity=DEFAULT_SIMILARITY)
                run = uuid.uuid4().hex  # a tenant of its own: every lookup misses
                if mode == "semantic":
                    self._fill(cache, run, entries)
                    began = time.perf_counter()
                    await cache.build_indexes()  # what the sync loop does in the background
                    build_s = time.perf_counter() - began
                samples = []
                for i in range(iterations):
                    began = time.perf_counter()
                    keys = _keys(run, i)
                    state = CacheState(MISS, policy=policy, keys=keys)
                    found = await _find(cache, state, keys, Directives())
                    samples.append((time.perf_counter() - began) * 1e6)
                    assert found is None
                label = f"{mode} miss" + (
                    f", {entries:,} entries in the partition" if mode == "semantic" else ""
                )
                row = {"scenario": f"{label} ({cache.store.name})", **_percentiles(samples)}
                if mode == "semantic":
                    row["index_build_s"] = round(build_s, 1)
                timings.append(row)
        finally:
            await cache.aclose()
        return timings

    def _fill(self, cache: ResponseCache, run: str, entries: int) -> None:
        """Questions in the very partition the timed lookups search (the worst case)."""
        partition = _keys(run, 0).partition
        rng = np.random.default_rng(0)
        vectors = rng.normal(size=(entries, 256)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        expires = time.time() + 3600
        for i in range(entries):
            cache.index.add(partition, f"bench:{i}", vectors[i], expires, frozenset({"x"}))


def _keys(run: str, i: int) -> Any:
    # The same partition for every lookup: one client, one year, one question shape.
    payload = _payload(0)
    payload["messages"][-1]["content"] += " please" * (i % 4)  # framing: the same partition
    return request_keys(
        tenant_id=abs(hash(run)) % 10**9,
        scope="",
        route="advisor-chat",
        prompt_name="",
        prompt_version=None,
        deployments=("gpt-a", "gpt-b"),
        payload=payload | {"messages": payload["messages"]},
    )
