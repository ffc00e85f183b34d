"""A key's limits and what is left of its budgets, for the key page (from tenants/quotas/selectors.py).

Only the scopes a key's request always belongs to (tenant, team, key); end-user quotas depend on
each request's `user` field, so the page only says that they exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenants.models import ApiKey
from tenants.quotas import selectors as quotas
from tenants.quotas.models import RateLimit, Scope
from tenants.quotas.selectors import BudgetStatus


@dataclass(frozen=True, slots=True)
class KeyLimits:
    limits: tuple[str, ...] = ()
    budgets: tuple[BudgetStatus, ...] = ()
    end_user_rules: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.limits or self.budgets or self.end_user_rules)


def _limit_line(limit: RateLimit) -> str:
    parts = [
        f"{limit.requests_per_minute} requests/min" if limit.requests_per_minute else "",
        f"{limit.tokens_per_minute:,} tokens/min" if limit.tokens_per_minute else "",
        f"{limit.max_concurrent} at once" if limit.max_concurrent else "",
    ]
    shadow = " (shadow: measured, not enforced)" if limit.shadow else ""
    return f"Rate limit of {limit.scope_label()}: {', '.join(p for p in parts if p)}{shadow}"


def limits_for_key(key: ApiKey) -> KeyLimits:
    tenant_id = key.tenant_id
    end_user = (
        quotas.rate_limits_for_tenant(tenant_id=tenant_id).filter(scope=Scope.USER).exists()
        or quotas.budgets_for_tenant(tenant_id=tenant_id).filter(scope=Scope.USER).exists()
    )
    return KeyLimits(
        limits=tuple(_limit_line(limit) for limit in quotas.rate_limits_for_key(key=key)),
        budgets=tuple(quotas.budgets_for_key(key=key)),
        end_user_rules=end_user,
    )
