"""A value loaded from the database and held in memory per worker, refreshed in the background.

The first caller waits for the load; after that callers get the current value at once while a
fresh one loads when it is older than its TTL, so the hot path never waits on the ORM.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings

from gateway_site.db_threads import run_db

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(
        self, load: Callable[[], T], *, ttl_seconds: float | None = None, name: str = "snapshot"
    ) -> None:
        self.load = load
        self.name = name
        self.ttl = settings.GATEWAY.routes_cache_seconds if ttl_seconds is None else ttl_seconds
        self._value: T | None = None
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self) -> T:
        if self._value is None:
            if self._refreshing is None:
                self._refreshing = asyncio.create_task(self._refresh())
            await asyncio.shield(self._refreshing)
        elif time.monotonic() - self._loaded_at > self.ttl and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh())
        assert self._value is not None
        return self._value

    async def _refresh(self) -> None:
        try:
            self._value = await run_db(self.load)
            self._loaded_at = time.monotonic()
        except Exception:
            if self._value is None:
                raise
            logger.exception("could not refresh the %s; serving the previous one", self.name)
        finally:
            self._refreshing = None
