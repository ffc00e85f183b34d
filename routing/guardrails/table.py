"""The guardrail policies every request may need, cached per worker (gateway_site/snapshot.py).

Loaded whole (policies compiled once), refreshed in the background when older than
GATEWAY_ROUTES_CACHE_SECONDS; requests never wait on the ORM once warm. The combined policy of a
(tenant, team, key, route) is memoised, so a warm request does a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import ValidationError

from gateway_site.snapshot import Snapshot
from routing.guardrails.core.policy import NO_POLICY, Policy, PolicySpec, combine, compile_policy
from routing.guardrails.engines import Engines, engines_built, engines_ready
from routing.guardrails.models import PolicyAttachment, QuarantineReview, ReviewStatus

logger = logging.getLogger(__name__)
_MAX_MEMO = 50_000


Scopes = dict[tuple[str, int | str], tuple[Policy, ...]]


@dataclass
class PolicyTable:
    # ("tenant" | "team" | "api_key", id), ("route", alias) or ("tenant_route", "<id>/<alias>")
    # -> compiled policies; `shadow` the same for policies in shadow mode (recorded, not applied).
    scopes: Scopes
    shadow: Scopes = field(default_factory=dict)
    # (tenant id, text digest) a reviewer released from quarantine: accepted when sent again.
    released: frozenset[tuple[int, str]] = frozenset()
    _memo: dict[tuple[bool, int, int, int, str], Policy] = field(default_factory=dict)

    def for_request(
        self, *, tenant_id: int, team_id: int, key_id: int, route: str, shadow: bool = False
    ) -> Policy:
        memo_key = (shadow, tenant_id, team_id, key_id, route)
        found = self._memo.get(memo_key)
        if found is None:
            scopes = self.shadow if shadow else self.scopes
            # Most specific first: a route's structured-output schema wins over a tenant's.
            found = combine(
                (
                    *scopes.get(("tenant_route", f"{tenant_id}/{route}"), ()),
                    *scopes.get(("route", route), ()),
                    *scopes.get(("api_key", key_id), ()),
                    *scopes.get(("team", team_id), ()),
                    *scopes.get(("tenant", tenant_id), ()),
                )
            )
            if len(self._memo) >= _MAX_MEMO:
                self._memo.clear()
            self._memo[memo_key] = found
        return found


def load_policy_table() -> PolicyTable:
    compiled: dict[int, Policy | None] = {}
    scopes: dict[tuple[str, int | str], list[Policy]] = defaultdict(list)
    shadow: dict[tuple[str, int | str], list[Policy]] = defaultdict(list)
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
        into = shadow if policy.shadow else scopes
        kind, value = attachment.scope
        alias = attachment.route.alias if attachment.route else ""
        if kind == "route" and attachment.tenant_id is not None:
            into[("tenant_route", f"{attachment.tenant_id}/{alias}")].append(found)
        elif kind == "route":
            into[("route", alias)].append(found)
        else:
            into[(kind, value)].append(found)
    released = QuarantineReview.objects.filter(status=ReviewStatus.RELEASED).exclude(digest="")
    return PolicyTable(
        scopes={key: tuple(value) for key, value in scopes.items()},
        shadow={key: tuple(value) for key, value in shadow.items()},
        released=frozenset(released.values_list("tenant_id", "digest")),
    )


class PolicySnapshot(Snapshot[PolicyTable]):
    """The policy table, per worker; once any policy exists, Presidio is built in the background
    so the first guarded request does not wait for it."""

    def __init__(self, ttl_seconds: float | None = None) -> None:
        super().__init__(load_policy_table, ttl_seconds=ttl_seconds, name="guardrail policies")
        self._warming: asyncio.Task[Engines] | None = None

    async def _refresh(self) -> None:
        await super()._refresh()
        table = self._value
        if (
            table is not None
            and (table.scopes or table.shadow)
            and self._warming is None
            and not engines_built()
        ):
            self._warming = asyncio.create_task(engines_ready())


async def policy_for(
    policies: PolicySnapshot, *, tenant_id: int, team_id: int, key_id: int, route: str
) -> Policy:
    """The combined policy of one request's scopes, from a worker's snapshot (its runtime's)."""
    table = await policies.get()
    if not table.scopes:
        return NO_POLICY
    return table.for_request(tenant_id=tenant_id, team_id=team_id, key_id=key_id, route=route)
