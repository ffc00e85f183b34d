"""Each worker's response cache: the answer store, the embedder and the semantic index.

The index is this worker's copy of the durable semantic entries (PostgreSQL): loaded on the
first semantic lookup, then topped up every GATEWAY_CACHE_SYNC_SECONDS with the rows other
processes wrote, so an entry one process stores is found by the others within a second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway_site.db_threads import run_db
from gateway_site.redis_clients import async_client
from routing.cache.core.stores import AnswerStore, MemoryAnswerStore, RedisAnswerStore
from routing.cache.models import SemanticEntry

if TYPE_CHECKING:
    from routing.cache.core.embedder import Embedder, Vector
    from routing.cache.core.semantic import SemanticIndex

# The semantic side (numpy, the embedder, the index: about 20 MiB) is imported on a semantic
# route's first lookup, not by every worker at start-up.

logger = logging.getLogger(__name__)

_SYNC_BATCH = 5000


def build_store() -> AnswerStore:
    if settings.REDIS_URL:
        timeout = settings.GATEWAY_CACHE_TIMEOUT_SECONDS
        client = async_client(
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return RedisAnswerStore(client)
    return MemoryAnswerStore(settings.GATEWAY_CACHE_MEMORY_ENTRIES)


@functools.cache
def local_embedder() -> Embedder | None:
    """One per process: the weights are read-only and take a moment to load."""
    from routing.cache.core.embedder import EmbedderUnavailable, WordLlamaEmbedder

    try:
        return WordLlamaEmbedder()
    except EmbedderUnavailable as error:
        logger.error("semantic cache off, exact cache only: %s", error)
        return None


class ResponseCache:
    def __init__(self, store: AnswerStore | None = None) -> None:
        self.store = store or build_store()
        self._index: SemanticIndex | None = None
        self.embedder: Embedder | None = None
        self._ready: asyncio.Future[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._builder: asyncio.Task[None] | None = None
        self._last_id = 0

    @property
    def index(self) -> SemanticIndex:
        """This worker's copy of the semantic entries, created on first use."""
        if self._index is None:
            from routing.cache.core.semantic import SemanticIndex

            self._index = SemanticIndex()
        return self._index

    async def semantic(self) -> Embedder | None:
        """The embedder, once the index holds every live entry (the first call waits)."""
        if self._ready is None:
            self._ready = asyncio.create_task(self._start())
        await asyncio.shield(self._ready)
        return self.embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Search with `embedder` from now on, without loading stored entries (benchmarks)."""
        self.embedder = embedder
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ready.set_result(None)
        self._ready = ready

    async def _start(self) -> None:
        self.embedder = await asyncio.to_thread(local_embedder)
        if self.embedder is None:
            return
        await self.sync()
        self._syncer = asyncio.create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.GATEWAY_CACHE_SYNC_SECONDS)
            try:
                await self.sync()
                if self._builder is None or self._builder.done():
                    # Not awaited: a build may take minutes; syncing goes on meanwhile.
                    self._builder = asyncio.create_task(self.build_indexes())
            except Exception:
                logger.exception("response cache: reading semantic entries failed; retrying")

    async def sync(self) -> None:
        """Add the entries written since the last read (by this process or another)."""
        while await self._sync_batch() == _SYNC_BATCH:
            pass

    async def build_indexes(self) -> None:
        """(Re)build the approximate index of each large partition whose index lags, one at a
        time in a worker thread: lookups meanwhile use the old index and scan the rest."""
        from routing.cache.core.semantic import build_ann

        jobs = self.index.ann_jobs()
        try:
            while jobs:
                ann = await asyncio.to_thread(build_ann, jobs[0])
                self.index.install(jobs.pop(0), ann)
        except Exception:
            logger.exception("response cache: building an approximate index failed")
        finally:
            for job in jobs:
                self.index.abandon(job)

    async def _sync_batch(self) -> int:
        assert self.embedder is not None
        name, last = self.embedder.name, self._last_id

        def newer() -> list[tuple[int, str, str, bytes | memoryview, str, datetime]]:
            rows = SemanticEntry.objects.filter(
                id__gt=last, embedder=name, expires_at__gt=timezone.now()
            ).order_by("id")
            return list(
                rows.values_list("id", "partition", "cache_key", "vector", "terms", "expires_at")[
                    :_SYNC_BATCH
                ]
            )

        rows = await run_db(newer)
        import numpy as np

        for row_id, partition, key, vector, terms, expires_at in rows:
            self.index.add(
                partition,
                key,
                np.frombuffer(bytes(vector), dtype=np.float32),
                expires_at.timestamp(),
                frozenset(terms.split()),
            )
            self._last_id = max(self._last_id, row_id)
        return len(rows)

    async def remember(
        self,
        *,
        tenant_id: int,
        route_alias: str,
        partition: str,
        key: str,
        vector: Vector,
        terms: frozenset[str],
        deployment: str,
        prompt_name: str,
        prompt_version: int | None,
        request_id: str,
        ttl_s: int,
    ) -> None:
        """Make a question findable here at once, and by other processes once it is stored."""
        expires = timezone.now() + timedelta(seconds=ttl_s)
        self.index.add(partition, key, vector, expires.timestamp(), terms)
        assert self.embedder is not None
        embedder = self.embedder.name

        def write() -> None:
            SemanticEntry.objects.create(
                tenant_id=tenant_id,
                route_alias=route_alias,
                partition=partition,
                cache_key=key,
                vector=vector.astype("float32").tobytes(),
                embedder=embedder,
                terms=" ".join(sorted(terms)),
                deployment_name=deployment,
                prompt_name=prompt_name,
                prompt_version=prompt_version,
                request_id=request_id,
                expires_at=expires,
            )

        await run_db(write)

    async def aclose(self) -> None:
        for task in (self._syncer, self._builder, self._ready):
            if task is not None:
                task.cancel()
        client = getattr(self.store, "client", None)
        if client is not None:
            await client.aclose()
