"""Budget burn-down for the finance page: spend so far, and where the current pace ends up.

Reads budgets through the quotas app's selectors (the ledger is the truth for spend).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from billing.money import pace_projection
from tenants.models import Tenant
from tenants.quotas import selectors as quotas
from tenants.quotas.core.windows import window_at
from tenants.quotas.models import EACH_USER


@dataclass(frozen=True, slots=True)
class BurnDown:
    label: str
    amount_usd: Decimal
    spent_usd: Decimal
    projected_usd: Decimal  # at the window's end, at the pace so far (as the month's forecast)
    renews_at: datetime
    shadow: bool

    @property
    def used_pct(self) -> int:
        return min(int(self.spent_usd * 100 / self.amount_usd), 100) if self.amount_usd else 100

    @property
    def on_track(self) -> bool:
        return self.projected_usd <= self.amount_usd


def budget_burndown(*, tenant: Tenant, now: datetime | None = None) -> list[BurnDown]:
    now = now or timezone.now()
    result = []
    for budget in quotas.budgets_for_tenant(tenant_id=tenant.id):
        if budget.end_user == EACH_USER:
            continue  # one window per end user: shown on the quotas pages, not as one line
        status = quotas.budget_status(budget=budget, end_user=budget.end_user, now=now)
        window = window_at(budget.period, budget.timezone, now)
        projected = pace_projection(
            spent=status.spent_usd, start=window.start, end=window.end, now=now
        )
        result.append(
            BurnDown(
                status.label,
                status.amount_usd,
                status.spent_usd,
                projected,
                status.renews_at,
                status.shadow,
            )
        )
    return result
