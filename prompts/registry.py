"""The prompt registry as the proxy sees it: every tenant's prompts, compiled, cached per worker.

Loaded whole and refreshed in the background when older than GATEWAY_ROUTES_CACHE_SECONDS (the
same freshness as the routing table), so a request never waits on the ORM once warm and a label
move reaches every worker within that interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import weakref
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from gateway_site.db_threads import run_db
from prompts.models import PromptLabel, PromptPin, PromptVersion
from prompts.render import CompiledMessage, compile_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    number: int
    messages: tuple[CompiledMessage, ...]
    parameters: dict[str, Any]
    model: str


@dataclass(frozen=True, slots=True)
class LabelTarget:
    version: int
    canary_version: int | None = None
    canary_percent: int = 0


@dataclass(frozen=True, slots=True)
class PromptEntry:
    name: str
    versions: dict[int, CompiledVersion]
    labels: dict[str, LabelTarget]


@dataclass(frozen=True, slots=True)
class PromptTable:
    prompts: dict[tuple[int, str], PromptEntry]  # (tenant id, prompt name)
    key_pins: dict[tuple[int, str], int]  # (key id, prompt name) → version
    team_pins: dict[tuple[int, str], int]  # (team id, prompt name) → version


_shared_rng = random.Random()  # noqa: S311 - traffic split, not security


def _stable_fraction(key: str) -> float:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_version(label: LabelTarget, *, sticky_key: str, end_user: str) -> int:
    """The label's version, or its canary for `canary_percent` of traffic (sticky per end user)."""
    if label.canary_version is None or label.canary_percent <= 0:
        return label.version
    point = _stable_fraction(f"{sticky_key}\0{end_user}") if end_user else _shared_rng.random()
    return label.canary_version if point * 100 < label.canary_percent else label.version


def load_prompt_table() -> PromptTable:
    entries: dict[int, PromptEntry] = {}
    prompts: dict[tuple[int, str], PromptEntry] = {}
    for version in PromptVersion.objects.select_related("prompt").order_by("prompt_id", "number"):
        entry = entries.get(version.prompt_id)
        if entry is None:
            prompt = version.prompt
            entry = entries[version.prompt_id] = PromptEntry(prompt.name, {}, {})
            prompts[(prompt.tenant_id, prompt.name)] = entry
        entry.versions[version.number] = CompiledVersion(
            number=version.number,
            messages=compile_messages(version.messages),
            parameters=dict(version.parameters),
            model=version.model,
        )
    for label in PromptLabel.objects.select_related("version", "canary_version"):
        canary = label.canary_version
        entries[label.prompt_id].labels[label.name] = LabelTarget(
            version=label.version.number,
            canary_version=canary.number if canary else None,
            canary_percent=label.canary_percent if canary else 0,
        )
    key_pins: dict[tuple[int, str], int] = {}
    team_pins: dict[tuple[int, str], int] = {}
    for pin in PromptPin.objects.select_related("prompt", "version"):
        if pin.api_key_id is not None:
            key_pins[(pin.api_key_id, pin.prompt.name)] = pin.version.number
        elif pin.team_id is not None:
            team_pins[(pin.team_id, pin.prompt.name)] = pin.version.number
    return PromptTable(prompts=prompts, key_pins=key_pins, team_pins=team_pins)


class PromptTableCache:
    def __init__(self, ttl_seconds: float | None = None) -> None:
        self.ttl = settings.GATEWAY.routes_cache_seconds if ttl_seconds is None else ttl_seconds
        self._table: PromptTable | None = None
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self) -> PromptTable:
        if self._table is None:
            if self._refreshing is None:
                self._refreshing = asyncio.create_task(self._refresh())
            await asyncio.shield(self._refreshing)
        elif time.monotonic() - self._loaded_at > self.ttl and self._refreshing is None:
            # Serve the current table while a fresh one loads.
            self._refreshing = asyncio.create_task(self._refresh())
        assert self._table is not None
        return self._table

    async def _refresh(self) -> None:
        try:
            self._table = await run_db(load_prompt_table)
            self._loaded_at = time.monotonic()
        except Exception:
            if self._table is None:
                raise
            logger.exception("could not refresh the prompt registry; serving the previous one")
        finally:
            self._refreshing = None


# One cache per event loop, like the rest of the worker's runtime (routing/runtime.py).
_caches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PromptTableCache] = (
    weakref.WeakKeyDictionary()
)


def prompt_cache() -> PromptTableCache:
    loop = asyncio.get_running_loop()
    cache = _caches.get(loop)
    if cache is None:
        cache = _caches[loop] = PromptTableCache()
    return cache
