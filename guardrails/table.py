"""The guardrail policies every request may need, cached per worker like the routing table.

Loaded whole (policies compiled once), refreshed in the background when older than
GATEWAY_ROUTES_CACHE_SECONDS; requests never wait on the ORM once warm. The combined policy of a
(tenant, team, key, route) is memoised, so a warm request does a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from pydantic import ValidationError

from gateway_site.db_threads import run_db
from guardrails.core.policy import NO_POLICY, Policy, PolicySpec, combine, compile_policy
from guardrails.engines import Engines, engines_built, engines_ready
from guardrails.models import PolicyAttachment

logger = logging.getLogger(__name__)
_MAX_MEMO = 50_000


@dataclass
class PolicyTable:
    # ("tenant" | "team" | "api_key", id) or ("route", alias) -> compiled policies.
    scopes: dict[tuple[str, int | str], tuple[Policy, ...]]
    _memo: dict[tuple[int, int, int, str], Policy] = field(default_factory=dict)

    def for_request(self, *, tenant_id: int, team_id: int, key_id: int, route: str) -> Policy:
        memo_key = (tenant_id, team_id, key_id, route)
        found = self._memo.get(memo_key)
        if found is None:
            # Most specific first: a route's structured-output schema wins over a tenant's.
            found = combine(
                (
                    *self.scopes.get(("route", route), ()),
                    *self.scopes.get(("api_key", key_id), ()),
                    *self.scopes.get(("team", team_id), ()),
                    *self.scopes.get(("tenant", tenant_id), ()),
                )
            )
            if len(self._memo) >= _MAX_MEMO:
                self._memo.clear()
            self._memo[memo_key] = found
        return found


EMPTY_TABLE = PolicyTable(scopes={})


def load_policy_table() -> PolicyTable:
    compiled: dict[int, Policy | None] = {}
    scopes: dict[tuple[str, int | str], list[Policy]] = defaultdict(list)
    attachments = PolicyAttachment.objects.select_related("policy", "route").filter(
        policy__is_active=True
    )
    for attachment in attachments.order_by("id"):
        policy = attachment.policy
        if policy.id not in compiled:
            try:
                compiled[policy.id] = compile_policy(
                    policy.name, PolicySpec.model_validate(policy.spec)
                )
            except ValidationError:
                # Services validate on write; a bad row must not take the proxy down.
                logger.exception("guardrail policy %s is invalid; skipped", policy.name)
                compiled[policy.id] = None
        found = compiled[policy.id]
        if found is None:
            continue
        kind, value = attachment.scope
        if kind == "route":
            scopes[("route", attachment.route.alias)].append(found)  # type: ignore[union-attr]
        else:
            scopes[(kind, value)].append(found)
    return PolicyTable(scopes={key: tuple(value) for key, value in scopes.items()})


class PolicyTableCache:
    def __init__(self, ttl_seconds: float | None = None) -> None:
        self.ttl = settings.GATEWAY.routes_cache_seconds if ttl_seconds is None else ttl_seconds
        self._table: PolicyTable | None = None
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[Engines] | None = None

    async def get(self) -> PolicyTable:
        if self._table is None:
            if self._refreshing is None:
                self._refreshing = asyncio.create_task(self._refresh())
            await asyncio.shield(self._refreshing)
        elif time.monotonic() - self._loaded_at > self.ttl and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh())
        assert self._table is not None
        return self._table

    async def _refresh(self) -> None:
        try:
            self._table = await run_db(load_policy_table)
            self._loaded_at = time.monotonic()
            if self._table.scopes and not engines_built():
                # Build Presidio now, so the first guarded request does not wait for it.
                self._warming = asyncio.create_task(engines_ready())
        except Exception:
            if self._table is None:
                raise
            logger.exception("could not refresh the guardrail policies; serving the previous ones")
        finally:
            self._refreshing = None


# One cache per event loop, like the proxy runtime (its refresh task belongs to its loop).
_caches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PolicyTableCache] = (
    weakref.WeakKeyDictionary()
)


def policy_cache() -> PolicyTableCache:
    loop = asyncio.get_running_loop()
    cache = _caches.get(loop)
    if cache is None:
        cache = _caches[loop] = PolicyTableCache()
    return cache


async def policy_for(*, tenant_id: int, team_id: int, key_id: int, route: str) -> Policy:
    table = await policy_cache().get()
    if not table.scopes:
        return NO_POLICY
    return table.for_request(tenant_id=tenant_id, team_id=team_id, key_id=key_id, route=route)
