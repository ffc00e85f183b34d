"""The checks a request is planned against are kept per table and scope: a changed table, a new
budget window or another end user is never checked against a stale plan."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tenants.quotas.core.checks import BudgetCheck, WindowCheck
from tenants.quotas.core.memory import MemoryQuotaStore
from tenants.quotas.engine import Demand, QuotaEngine
from tenants.quotas.table import BudgetRule, LimitRule, QuotaTable

pytestmark = pytest.mark.django_db  # a budget window is loaded from the (empty) ledger

TENANT = 1_900_000_007  # no row has it: its ledger is empty


class _Table:
    def __init__(self, table: QuotaTable) -> None:
        self.table = table

    async def get(self) -> QuotaTable:
        return self.table


def _demand(end_user: str = "ann") -> Demand:
    return Demand(
        tenant_id=TENANT, team_id=8, key_id=9, end_user=end_user, prompt_tokens=10,
        tokens_exact=True, max_output_tokens=10, input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
    )  # fmt: skip


def _limit(rpm: int) -> LimitRule:
    return LimitRule(1, "key", "key 'k'", rpm, None, None, False)


def _daily(per_user: bool) -> BudgetRule:
    return BudgetRule(
        id=3, scope="user" if per_user else "key", label="daily", amount_usd=Decimal(5),
        period="day", timezone="UTC", alert_thresholds_pct=(), shadow=False, tenant_id=TENANT,
        team_id=None, api_key_id=None, per_user=per_user,
    )  # fmt: skip


async def test_a_reloaded_table_is_planned_afresh() -> None:
    holder = _Table(QuotaTable(limits={("key", 9): _limit(100)}))
    engine = QuotaEngine(MemoryQuotaStore(), holder, store_name="memory")  # type: ignore[arg-type]
    first = await engine.admit(_demand(), "r1")
    assert [(type(c), m.limit) for c, m in zip(first.checks, first.meters, strict=True)] == [
        (WindowCheck, 100)
    ]
    holder.table = dataclasses.replace(
        holder.table, limits={("key", 9): _limit(50)}, budgets={("key", 9): (_daily(False),)}
    )
    second = await engine.admit(_demand(), "r2")
    assert [(type(c), m.limit) for c, m in zip(second.checks, second.meters, strict=True)] == [
        (WindowCheck, 50),
        (BudgetCheck, 5_000_000_000),
    ]


async def test_each_day_and_each_end_user_has_its_own_budget_counter() -> None:
    table = QuotaTable(budgets={("user", TENANT, "*"): (_daily(True),)})
    engine = QuotaEngine(MemoryQuotaStore(), _Table(table), store_name="memory")  # type: ignore[arg-type]

    async def key(end_user: str, now: datetime) -> str:
        admission = await engine.admit(_demand(end_user), f"r-{end_user}-{now:%H%M}", now=now)
        check = admission.checks[0]
        assert isinstance(check, BudgetCheck)
        return check.key

    late = datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC)
    early = datetime(2026, 12, 7, 0, 0, 1, tzinfo=UTC)
    assert (await key("ann", late)).endswith(":ann:20261206T0000+0000")
    assert (await key("ann", early)).endswith(":ann:20261207T0000+0000")
    assert (await key("bob", early)).endswith(":bob:20261207T0000+0000")
    assert (await key("ann", late)).endswith(":ann:20261206T0000+0000")
