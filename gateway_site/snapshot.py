"""A value loaded from the database and held in memory per worker, refreshed in the background.

The first caller waits for the load; after that callers get the current value at once. When the
value is older than its TTL, a background check reads the configuration's generation (one number
that every write to a configuration table raises, in the same transaction: see
gateway_site/declarative/migrations/0001_config_generation.py) and loads again only if it moved,
or if the value said it expires (a price that takes effect at a set time). So the hot path never
waits on the ORM, a change is seen within the TTL, and an idle configuration costs one tiny query
per TTL instead of a full reload (docs/perf/).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from gateway_site.db_threads import run_db

logger = logging.getLogger(__name__)

T = TypeVar("T")

GENERATION_SQL = "SELECT value FROM gateway_config_generation WHERE id = 1"


def config_generation() -> int | None:
    """The configuration's generation (call on a database thread); None when it cannot be read
    (a database migrated before it existed), which makes every check a reload, as before."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(GENERATION_SQL)
            row = cursor.fetchone()
    except DatabaseError:
        return None
    return int(row[0]) if row else None


class Snapshot(Generic[T]):
    def __init__(
        self,
        load: Callable[[], T],
        *,
        ttl_seconds: float | None = None,
        name: str = "snapshot",
        expires: Callable[[T], datetime | None] | None = None,
    ) -> None:
        self.load = load
        self.name = name
        self.ttl = settings.GATEWAY.routes_cache_seconds if ttl_seconds is None else ttl_seconds
        # When a loaded value stops being true by itself, whatever the generation says.
        self.expires = expires
        self._value: T | None = None
        self._generation: int | None = None
        self._expires_at: datetime | None = None
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    def loaded(self) -> T | None:
        """The value in memory now, without loading one (for metrics read off the event loop)."""
        return self._value

    async def get(self) -> T:
        if self._value is None:
            if self._refreshing is None:
                self._refreshing = asyncio.create_task(self._refresh())
            await asyncio.shield(self._refreshing)
        elif time.monotonic() - self._loaded_at > self.ttl and self._refreshing is None:
            # Serve the current value while the check (and any reload) runs.
            self._refreshing = asyncio.create_task(self._refresh())
        assert self._value is not None
        return self._value

    async def _refresh(self) -> None:
        try:
            fresh = await run_db(self._load_if_changed)
            if fresh is not None:
                self._value = fresh
            self._loaded_at = time.monotonic()
        except Exception:
            if self._value is None:
                raise
            logger.exception("could not refresh the %s; serving the previous one", self.name)
        finally:
            self._refreshing = None

    def _load_if_changed(self) -> T | None:
        # Read before loading: a change committed during the load moves it again, so the next
        # check loads once more rather than keeping a value that missed the change.
        generation = config_generation()
        if (
            self._value is not None
            and generation is not None
            and generation == self._generation
            and (self._expires_at is None or timezone.now() < self._expires_at)
        ):
            return None
        value = self.load()
        self._generation = generation
        self._expires_at = self.expires(value) if self.expires is not None else None
        return value
