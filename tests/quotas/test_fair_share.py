"""A provider account shared fairly down tenant → team → end user: the same answers from the
Redis script and the in-process store (tenants/quotas/core/checks.py ShareCheck)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from routing.core.types import Target
from tenants.quotas.capacity import ProviderGate
from tenants.quotas.core.checks import Release, ShareCheck, WindowCheck
from tenants.quotas.core.memory import MemoryQuotaStore
from tenants.quotas.core.redis_store import RedisQuotaStore
from tenants.quotas.engine import Admission, Demand, QuotaEngine
from tenants.quotas.table import PolicyRule

CAPACITY = 60  # requests per minute; 10% (6) is kept for newcomers, so shares divide 54


@dataclass
class Store:
    store: Any
    client: Redis | None

    async def idle(self, active_key: str, member: str, seconds: int) -> None:
        """Make `member` look as if it last asked `seconds` ago (a minute is too long to wait)."""
        if self.client is None:
            self.store._active[active_key][member] -= seconds
        else:
            seen = await self.client.zscore(active_key, member)
            await self.client.zadd(active_key, {member: int(seen) - seconds})


@pytest.fixture(params=["memory", "redis"])
async def stores(request: Any) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield Store(MemoryQuotaStore(), None)
        return
    client = Redis.from_url(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    yield Store(RedisQuotaStore(client), client)
    await client.aclose()


class Account:
    """One provider account's checks for a request, as tenants/quotas/capacity.py builds them."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.base = f"test:acct:{uuid.uuid4().hex}"
        self.capacity = capacity

    def tenants_key(self) -> str:
        return f"{self.base}:tenants"

    def members_key(self, team: str) -> str:
        return f"{self.base}:{team}:members"

    def checks(self, tenant: str, team: str, user: str, amount: int = 1) -> list[Any]:
        levels = (
            (self.tenants_key(), tenant),
            (f"{self.base}:{tenant}:teams", team),
            (self.members_key(team), user),
        )
        return [
            WindowCheck(self.base, self.capacity, amount, "account"),
            ShareCheck(f"{self.base}:{team}:{user}", levels, self.capacity, amount, "share"),
        ]


def rid() -> str:
    return "req_" + uuid.uuid4().hex


async def ask(stores: Store, account: Account, *who: str, n: int = 1) -> list[bool]:
    return [(await stores.store.admit(account.checks(*who), rid(), 60)).allowed for _ in range(n)]


async def test_a_light_user_is_never_refused_because_a_teammate_floods(stores: Store) -> None:
    """The incident: the whole team was refused once one advisor took the team's share."""
    account = Account()
    for who in (("acme", "advisors", "heavy"), ("acme", "advisors", "light")):
        assert await ask(stores, account, *who) == [True]
    assert await ask(stores, account, "acme", "research", "analyst") == [True]
    # 54 / 1 tenant / 2 teams / 2 advisors = 13.5: the heavy advisor gets 12 more, then no more.
    flood = [await stores.store.admit(account.checks("acme", "advisors", "heavy"), rid(), 60)]
    flood += [
        await stores.store.admit(account.checks("acme", "advisors", "heavy"), rid(), 60)
        for _ in range(29)
    ]
    assert [v.allowed for v in flood] == [True] * 12 + [False] * 18
    refused = flood[-1]
    assert refused.failed == 1  # the fair share, not the account: 15 of 60 served so far
    assert refused.retry_after_s is not None and 1 <= refused.retry_after_s <= 61
    # Their teammate and the other team still get all of their own shares.
    assert await ask(stores, account, "acme", "advisors", "light", n=12) == [True] * 12
    assert await ask(stores, account, "acme", "research", "analyst", n=26) == [True] * 26
    assert await ask(stores, account, "acme", "advisors", "light") == [False]  # 14 > 13.5


async def test_each_level_divides_its_share_equally_between_its_active_members(
    stores: Store,
) -> None:
    account = Account()
    first = [
        ("acme", "advisors", "a1"),
        ("acme", "advisors", "a2"),
        ("acme", "advisors", "a3"),
        ("acme", "research", "r1"),
        ("globex", "ops", "o1"),
    ]
    for who in first:
        assert await ask(stores, account, *who) == [True]

    async def share_left(*who: str) -> int:
        verdict = await stores.store.admit(account.checks(*who), rid(), 60, dry=True)
        return verdict.outcomes[1].remaining + 1  # as if this request were not counted

    # 54 / 2 tenants = 27; acme's 27 / 2 teams = 13.5; advisors' 13.5 / 3 = 4.5, each used 1.
    assert await share_left("acme", "advisors", "a1") == 4 - 1
    assert await share_left("acme", "research", "r1") == 13 - 1
    assert await share_left("globex", "ops", "o1") == 27 - 1
    # A dry run counts a newcomer among the members but does not make it active.
    assert await share_left("acme", "advisors", "a4") == 3  # 13.5 / 4 = 3.375
    assert await share_left("acme", "advisors", "a1") == 4 - 1


async def test_the_share_of_a_member_idle_for_a_minute_is_lent_to_the_others(
    stores: Store,
) -> None:
    account = Account()
    assert await ask(stores, account, "acme", "advisors", "idle") == [True]
    served = await ask(stores, account, "acme", "advisors", "busy", n=30)
    assert served == [True] * 27 + [False] * 3  # 54 / 2 = 27 while the other may come back
    await stores.idle(account.members_key("advisors"), "idle", 61)
    # Nobody idle for a minute holds a share: "busy" may now use the 54 (less the idle one's 1
    # still in the account's window, which is not counted against "busy").
    assert await ask(stores, account, "acme", "advisors", "busy", n=28) == [True] * 27 + [False]


async def test_a_lone_consumer_leaves_the_reserve_for_a_newcomer(stores: Store) -> None:
    account = Account()
    assert (
        await ask(stores, account, "acme", "advisors", "first", n=56) == [True] * 54 + [False] * 2
    )
    # Another tenant's user arrives with the account 54/60 used: it is served from the reserve.
    assert await ask(stores, account, "globex", "ops", "newcomer", n=7) == [True] * 6 + [False]
    # The account itself is full now: that refusal is the account's, not the share's.
    verdict = await stores.store.admit(account.checks("globex", "ops", "newcomer"), rid(), 60)
    assert not verdict.allowed and verdict.failed == 0


async def test_token_shares_are_corrected_to_the_reported_usage_at_settlement(
    stores: Store,
) -> None:
    account = Account(capacity=10_000)  # tokens per minute; shares divide 9,000
    checks = account.checks("acme", "advisors", "writer", amount=5_000)
    request_id = rid()
    verdict = await stores.store.admit(checks, request_id, 60)
    assert verdict.allowed
    assert not (await stores.store.admit(checks, rid(), 60)).allowed  # 10,000 > 9,000
    # The first used 1,000 tokens, not its worst case of 5,000.
    share = checks[1]
    correction = ((share.usage_key, verdict.at_s, -4_000), (account.base, verdict.at_s, -4_000))
    await stores.store.settle(Release(window_adjustments=correction), request_id)
    assert (await stores.store.admit(checks, rid(), 60)).allowed  # 6,000 ≤ 9,000


def gate_world(**capacity: Any) -> tuple[ProviderGate, Target]:
    engine = QuotaEngine(MemoryQuotaStore(), table=None, store_name="memory")  # type: ignore[arg-type]
    target = Target(
        deployment_id=1,
        deployment_name="gpt",
        provider_name=f"acct-{uuid.uuid4().hex[:8]}",
        kind="openai",
        base_url="http://provider.invalid/v1",
        api_key="sk",
        upstream_model="gpt-1",
        **capacity,
    )
    return ProviderGate(engine), target


def demand(*, team: int, key: int, end_user: str = "") -> Demand:
    return Demand(1, team, key, end_user, 10, True, 90, Decimal(1), Decimal(1))


async def test_a_key_naming_no_end_user_is_one_member_of_its_team() -> None:
    gate, target = gate_world(capacity_rpm=40)  # 36 shared
    policy = PolicyRule()

    async def served(who: Demand, n: int) -> int:
        verdicts = [
            await gate.admit(Admission(rid(), token_charge=100), who, target, tenant_policy=policy)
            for _ in range(n)
        ]
        return verdicts.count(None)

    # Team 7: end user "ana" through key 1, and key 2 with no end user; team 8: key 3 alone.
    assert await served(demand(team=7, key=1, end_user="ana"), 1) == 1
    assert await served(demand(team=7, key=2), 1) == 1
    assert await served(demand(team=8, key=3), 1) == 1
    # 36 / 2 teams / 2 members: 9 each; the same end user through another key of team 7 is "ana".
    assert await served(demand(team=7, key=9, end_user="ana"), 20) == 8
    assert await served(demand(team=7, key=2), 20) == 8
    assert await served(demand(team=8, key=3), 30) == 17


async def test_the_gate_corrects_token_shares_to_the_reported_usage() -> None:
    gate, target = gate_world(capacity_tpm=1_000)  # 900 shared
    who = demand(team=7, key=1, end_user="ana")
    first = Admission(rid(), token_charge=500)
    assert await gate.admit(first, who, target, tenant_policy=PolicyRule()) is None
    refused = await gate.admit(
        Admission(rid(), token_charge=500), who, target, tenant_policy=PolicyRule()
    )
    assert refused is not None and refused.failed == 1  # 1,000 > 900: the share
    # The first used 100 tokens: both the account's window and ana's share give back 400.
    await gate.engine.store.settle(
        first.release(total_tokens=100, cost_usd=Decimal(0)), first.request_id
    )
    again = Admission(rid(), token_charge=500)
    assert await gate.admit(again, who, target, tenant_policy=PolicyRule()) is None
