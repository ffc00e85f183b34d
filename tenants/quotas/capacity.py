"""A provider account's own rate limits, shared fairly between the gateway's callers."""

from __future__ import annotations

import asyncio
import time

from routing.core.types import Target
from tenants.quotas.core.checks import Check, ShareCheck, Verdict, WindowCheck
from tenants.quotas.core.redis_store import StoreBusy
from tenants.quotas.engine import LEASE_SECONDS, STORE_ERRORS, Admission, Demand, QuotaEngine
from tenants.quotas.responses import store_busy, store_unavailable
from tenants.quotas.table import PolicyRule


def provider_base(provider_name: str) -> str:
    """A provider account's counters, its fair shares across tenants included, carry the
    account's hash tag: on a Redis Cluster they live in one slot, so one script admits against
    the account's capacity and every level of its shares atomically. A tenant's own limits are
    another script in the tenant's slot (tenants/quotas/engine.py tenant_tag)."""
    name = provider_name.replace("{", "(").replace("}", ")") or "-"
    return f"gw:p:{{{name}}}"


class ProviderGate:
    """A provider account's capacity, shared fairly: asked before each attempt at a deployment
    whose provider has RPM/TPM configured."""

    def __init__(self, engine: QuotaEngine) -> None:
        self.engine = engine

    def checks(self, target: Target, demand: Demand, tokens: int) -> list[Check]:
        # The hierarchy the account is shared down: tenants, a tenant's teams, a team's end users
        # (or its keys, for requests that name no end user). Team ids are unique across tenants,
        # and an end user is one per team it asks through.
        leaf = f"u:{demand.end_user}" if demand.end_user else f"k{demand.key_id}"
        team = f"tm{demand.team_id}"
        checks: list[Check] = []
        for metric, capacity, amount in (
            ("rpm", target.capacity_rpm, 1),
            ("tpm", target.capacity_tpm, tokens),
        ):
            if capacity is None:
                continue
            base = f"{provider_base(target.provider_name)}:{metric}"
            label = f"provider account '{target.provider_name}'"
            checks.append(WindowCheck(base, capacity, amount, label))
            levels = (
                (f"{base}:share:tenants", f"t{demand.tenant_id}"),
                (f"{base}:share:t{demand.tenant_id}:teams", team),
                (f"{base}:share:{team}:members", leaf),
            )
            usage = f"{base}:share:{team}:{leaf}"
            checks.append(
                ShareCheck(usage, levels, capacity, amount, f"your fair share of {label}")
            )
        return checks

    async def admit(
        self, admission: Admission, demand: Demand, target: Target, *, tenant_policy: PolicyRule
    ) -> Verdict | None:
        """None: go ahead. A refusing verdict: this provider has no room for this request now."""
        checks = self.checks(target, demand, admission.token_charge)
        if not checks:
            return None
        deadline = time.monotonic() + target.capacity_queue_s
        while True:
            if self.engine.store_resting():
                if tenant_policy.limits_fail_open:
                    return None
                raise store_unavailable("provider capacity")
            try:
                verdict = await self.engine.store.admit(checks, admission.request_id, LEASE_SECONDS)
            except StoreBusy:
                raise store_busy() from None
            except STORE_ERRORS as error:
                self.engine.store_failed(error)
                if tenant_policy.limits_fail_open:
                    return None
                raise store_unavailable("provider capacity") from error
            if verdict.allowed:
                # Token counts are corrected to the provider's usage at settlement.
                tpm = f"{provider_base(target.provider_name)}:tpm"
                admission.provider_tpm += [
                    (key, verdict.at_s)
                    for key in map(_window_key, checks)
                    if key == tpm or key.startswith(tpm + ":")
                ]
                return None
            left = deadline - time.monotonic()
            if left <= 0 or verdict.retry_after_s is None:
                return verdict
            # Short queueing: wait for capacity instead of refusing at once.
            await asyncio.sleep(min(left, max(0.05, min(verdict.retry_after_s, 1.0) / 4)))


def _window_key(check: Check) -> str:
    if isinstance(check, WindowCheck):
        return check.key
    return check.usage_key if isinstance(check, ShareCheck) else ""
