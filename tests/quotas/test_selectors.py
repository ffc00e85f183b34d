from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tenants.quotas import selectors, services
from tenants.quotas.models import SpendEntry
from tests.support.world import build_tenant

pytestmark = pytest.mark.django_db


def test_a_keys_budget_status_counts_only_its_window_and_its_scope() -> None:
    sel = build_tenant("sel-co", teams=["a", "b"], keys=["k"])
    tenant, team, other, key = sel.tenant, sel.teams["a"], sel.teams["b"], sel.keys["k"].api_key
    services.budget_set(tenant=tenant, scope="team", team=team, amount_usd=Decimal("10"))
    services.budget_set(tenant=tenant, scope="team", team=other, amount_usd=Decimal("99"))
    now = datetime(2026, 11, 20, tzinfo=UTC)
    for amount, team_, when in (
        ("1.25", team, datetime(2026, 11, 3, tzinfo=UTC)),
        ("2.00", team, datetime(2026, 10, 31, 23, tzinfo=UTC)),  # last month
        ("4.00", other, datetime(2026, 11, 4, tzinfo=UTC)),  # another team
    ):
        SpendEntry.objects.create(
            tenant=tenant, team=team_, amount_usd=Decimal(amount), occurred_at=when
        )

    [status] = [
        selectors.budget_status(budget=b, now=now)
        for b in selectors.budgets_for_tenant(tenant_id=tenant.pk).filter(team=team)
    ]
    assert status.spent_usd == Decimal("1.25")
    assert status.remaining_usd == Decimal("8.75")
    assert status.renews_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert len(selectors.budgets_for_key(key=key)) == 1
