"""The Redis script and the in-process store answer alike: one contract, both stores."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from tenants.quotas.core.checks import BudgetCheck, ConcurrencyCheck, Release, WindowCheck
from tenants.quotas.core.memory import MemoryQuotaStore
from tenants.quotas.core.redis_store import RedisQuotaStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def store(request: Any) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryQuotaStore()
        return
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    yield RedisQuotaStore(client)
    await client.aclose()


def fresh(name: str) -> str:
    return f"test:{name}:{uuid.uuid4().hex}"


def rid() -> str:
    return "req_" + uuid.uuid4().hex


async def test_a_window_admits_up_to_its_limit_and_then_refuses_with_a_wait(store: Any) -> None:
    check = WindowCheck(fresh("rpm"), limit=3, amount=1, label="team rpm")
    verdicts = [await store.admit([check], rid(), 60) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.outcomes[0].remaining for v in verdicts[:3]] == [2, 1, 0]
    refused = verdicts[3]
    assert refused.failed == 0
    assert refused.retry_after_s is not None and 1 <= refused.retry_after_s <= 61


async def test_a_request_larger_than_the_limit_is_told_waiting_will_not_help(store: Any) -> None:
    verdict = await store.admit(
        [WindowCheck(fresh("tpm"), limit=100, amount=101, label="tpm")], rid(), 60
    )
    assert not verdict.allowed
    assert verdict.retry_after_s is None


async def test_all_or_nothing_a_refusal_counts_nothing_anywhere(store: Any) -> None:
    roomy = WindowCheck(fresh("roomy"), limit=100, amount=1, label="tenant rpm")
    full = WindowCheck(fresh("full"), limit=1, amount=1, label="user rpm")
    assert (await store.admit([full], rid(), 60)).allowed
    refused = await store.admit([roomy, full], rid(), 60)
    assert not refused.allowed and refused.failed == 1
    again = await store.admit([roomy], rid(), 60)
    assert again.outcomes[0].remaining == 99  # the refused request was counted nowhere


async def test_a_shadow_check_reports_but_does_not_refuse(store: Any) -> None:
    shadow = WindowCheck(fresh("shadow"), limit=1, amount=1, label="shadow", shadow=True)
    first = await store.admit([shadow], rid(), 60)
    second = await store.admit([shadow], rid(), 60)
    assert first.allowed and not first.outcomes[0].exceeded
    assert second.allowed and second.outcomes[0].exceeded


async def test_concurrency_leases_are_released_on_settle(store: Any) -> None:
    key = fresh("conc")
    check = ConcurrencyCheck(key, limit=2, label="key concurrency")
    a, b, c = rid(), rid(), rid()
    assert (await store.admit([check], a, 60)).allowed
    assert (await store.admit([check], b, 60)).allowed
    assert not (await store.admit([check], c, 60)).allowed
    await store.settle(Release(concurrency_keys=(key,)), a)
    assert (await store.admit([check], c, 60)).allowed


async def test_a_budget_must_be_seeded_then_reserves_and_settles(store: Any) -> None:
    key = fresh("budget")
    check = BudgetCheck(key, limit=1000, amount=400, label="team budget", ttl_s=3600)
    unseeded = await store.admit([check], rid(), 60)
    assert not unseeded.allowed and unseeded.needs_seed == (0,)
    await store.seed(key, 100, 3600)
    first, second = rid(), rid()
    assert (await store.admit([check], first, 60)).allowed  # 100 spent + 400 reserved
    assert (await store.admit([check], second, 60)).allowed  # + 400 reserved = 900
    assert not (await store.admit([check], rid(), 60)).allowed  # 1300 > 1000
    await store.settle(Release(budget_spend=((key, 150),)), first)  # 250 spent, 400 reserved
    assert await store.budget_state(key) == (250, 400)
    assert not (await store.admit([check], rid(), 60)).allowed  # 250 + 400 + 400 > 1000
    await store.settle(Release(budget_spend=((key, 0),)), second)  # the second failed: free
    assert (await store.admit([check], rid(), 60)).allowed  # 250 + 400 ≤ 1000


async def test_a_settlement_that_may_be_a_repeat_charges_its_spend_once(store: Any) -> None:
    # Recovery settles a dead worker's recorded call without knowing whether the worker did.
    key = fresh("budget")
    check = BudgetCheck(key, limit=1000, amount=400, label="team budget", ttl_s=3600)
    await store.seed(key, 0, 3600)
    settled, unsettled = rid(), rid()
    assert (await store.admit([check], settled, 60)).allowed
    assert (await store.admit([check], unsettled, 60)).allowed
    await store.settle(Release(budget_spend=((key, 150),)), settled)  # its worker settled it
    assert await store.budget_state(key) == (150, 400)
    repeat = Release(budget_spend=((key, 150),), if_still_reserved=True)
    await store.settle(repeat, settled)
    assert await store.budget_state(key) == (150, 400)  # not charged twice
    await store.settle(Release(budget_spend=((key, 90),), if_still_reserved=True), unsettled)
    assert await store.budget_state(key) == (240, 0)  # charged, and its reservation freed
    await store.settle(Release(budget_spend=((key, 90),), if_still_reserved=True), unsettled)
    assert await store.budget_state(key) == (240, 0)


async def test_a_repeatable_settlement_after_its_reservation_lapsed_still_charges(
    store: Any,
) -> None:
    # A worker recorded a call and died; its machine came back after the lease, and an admission
    # meanwhile dropped the lapsed reservation: recovery's settlement charges the call all the
    # same (the ledger holds it), once.
    key = fresh("budget")
    check = BudgetCheck(key, limit=1000, amount=400, label="team budget", ttl_s=3600)
    await store.seed(key, 0, 3600)
    orphan = rid()
    assert (await store.admit([check], orphan, 1)).allowed
    await asyncio.sleep(2.1)
    assert (await store.admit([check], rid(), 60)).allowed  # the lapsed reservation is dropped
    repeat = Release(budget_spend=((key, 150),), if_still_reserved=True)
    await store.settle(repeat, orphan, at_once=True)
    assert await store.budget_state(key) == (150, 400)
    await store.settle(repeat, orphan, at_once=True)
    assert await store.budget_state(key) == (150, 400)


async def test_each_alert_threshold_alerts_once_per_window(store: Any) -> None:
    key = fresh("soft")
    await store.seed(key, 0, 3600)
    check = BudgetCheck(
        key, limit=1000, amount=300, label="b", ttl_s=3600, alert_permille=(500, 800, 950)
    )
    alerts = [(await store.admit([check], rid(), 60)).outcomes[0].alert for _ in range(3)]
    assert alerts == [0, 1, 2]  # 300; 600 ≥ 500 (the first); 900 ≥ 800 (the second)
    await store.seed(key, 0, 3600, force=True)
    assert (await store.admit([check], rid(), 60)).outcomes[0].alert == 0  # 300 of a fresh 0


async def test_a_jump_past_several_thresholds_alerts_the_highest_once(store: Any) -> None:
    key = fresh("jump")
    await store.seed(key, 0, 3600)
    big = BudgetCheck(key, limit=1000, amount=850, label="b", ttl_s=3600, alert_permille=(500, 800))
    small = dataclasses.replace(big, amount=10)
    assert (await store.admit([big], rid(), 60)).outcomes[0].alert == 2
    assert (await store.admit([small], rid(), 60)).outcomes[0].alert == 0


async def test_concurrent_reservations_never_exceed_the_budget(store: Any) -> None:
    key = fresh("race")
    await store.seed(key, 0, 3600)
    check = BudgetCheck(key, limit=10_000, amount=300, label="b", ttl_s=3600)
    verdicts = await asyncio.gather(*(store.admit([check], rid(), 60) for _ in range(100)))
    assert sum(v.allowed for v in verdicts) == 33  # 33 * 300 = 9,900 <= 10,000


async def test_the_redis_window_total_forgets_exactly_the_buckets_that_left_the_minute() -> None:
    """The running total drops buckets older than 60 s when read (no 61-field scan per check)."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    store = RedisQuotaStore(client)
    key = fresh("running-total")
    now = int((await client.time())[0])
    # 5 requests 65 s ago (gone), 2 at 58 s ago and 3 at 10 s ago (still in the minute).
    await client.hset(
        key,
        mapping={str(now - 65): 5, str(now - 58): 2, str(now - 10): 3, "total": 10, "at": now - 30},
    )
    verdict = await store.admit([WindowCheck(key, limit=6, amount=1, label="rpm")], rid(), 60)
    assert verdict.allowed
    assert verdict.outcomes[0].remaining == 6 - 5 - 1  # 2 + 3 counted, plus this one
    assert await client.hget(key, str(now - 65)) is None
    await client.aclose()


def _count_round_trips(client: Redis) -> list[int]:
    count = [0]
    send = client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        count[0] += 1
        return await send(*args, **options)  # type: ignore[no-untyped-call]

    client.execute_command = counted  # type: ignore[method-assign]
    return count


async def test_a_settlement_rides_with_the_next_admission_one_round_trip_per_request() -> None:
    """At 100 requests a second the next admission carries the last one's settlement: the
    lease it gives back is free for that admission, and no round trip of its own is spent."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    store = RedisQuotaStore(client, settle_batch_s=5.0)  # only an admission may carry it
    lease = ConcurrencyCheck(fresh("one-at-a-time"), limit=1, label="key")
    budget_key = fresh("budget")
    await store.seed(budget_key, 0, 3600)
    budget = BudgetCheck(budget_key, limit=10_000, amount=300, label="b", ttl_s=3600)
    trips = _count_round_trips(client)
    first = rid()
    assert (await store.admit([lease, budget], first, 60)).allowed
    release = Release(concurrency_keys=(lease.key,), budget_spend=((budget_key, 120),))
    settling = asyncio.ensure_future(store.settle(release, first))
    await asyncio.sleep(0)
    assert not settling.done()  # waiting for a ride
    second = await store.admit([lease, budget], rid(), 60)
    assert second.allowed  # the first request's lease was given back before this check
    assert second.outcomes[1].remaining == 10_000 - 120 - 300
    await asyncio.wait_for(settling, 1)
    assert trips[0] == 2  # two admissions, and the settlement cost nothing more
    assert await store.budget_state(budget_key) == (120, 300)
    await client.aclose()


async def test_a_settlement_no_admission_carries_goes_alone_after_the_batch_delay() -> None:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    store = RedisQuotaStore(client, settle_batch_s=0.05)
    lease = ConcurrencyCheck(fresh("alone"), limit=1, label="key")
    request = rid()
    assert (await store.admit([lease], request, 60)).allowed
    began = asyncio.get_running_loop().time()
    await asyncio.wait_for(store.settle(Release(concurrency_keys=(lease.key,)), request), 2)
    assert asyncio.get_running_loop().time() - began >= 0.04  # it waited for a ride first
    assert await client.zcard(lease.key) == 0
    assert (await store.admit([lease], rid(), 60)).allowed
    await client.aclose()


async def test_a_settlement_survives_the_admission_carrying_it_being_cancelled() -> None:
    """A client that hangs up mid-admission cancels it; the settlement it carried still lands."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    store = RedisQuotaStore(client, settle_batch_s=5.0)
    lease = ConcurrencyCheck(fresh("cancelled"), limit=1, label="key")
    first = rid()
    assert (await store.admit([lease], first, 60)).allowed
    settling = asyncio.ensure_future(store.settle(Release(concurrency_keys=(lease.key,)), first))
    await asyncio.sleep(0)
    carrier = asyncio.ensure_future(store.admit([lease], rid(), 60))
    await asyncio.sleep(0)
    carrier.cancel()
    await asyncio.wait_for(settling, 2)
    assert await client.zscore(lease.key, first) is None
    await client.aclose()


async def test_a_release_at_once_does_not_wait_for_a_ride() -> None:
    """Recovery gives back a dead worker's reservations one by one: each goes at once."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    store = RedisQuotaStore(client, settle_batch_s=5.0)
    lease = ConcurrencyCheck(fresh("recovered"), limit=1, label="key")
    request = rid()
    assert (await store.admit([lease], request, 60)).allowed
    release = Release(concurrency_keys=(lease.key,))
    await asyncio.wait_for(store.settle(release, request, at_once=True), 1)
    assert await client.zcard(lease.key) == 0
    await client.aclose()


async def test_every_key_the_script_writes_expires_and_a_used_window_stays() -> None:
    """Redis holds no counter for ever: a window renews its expiry when its second moves on
    (not on every request); a budget's state, its reservations in it, keeps its seed's (the
    budget window's end). A window read across seconds keeps its count and its expiry."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = Redis.from_url(url)
    store = RedisQuotaStore(client, settle_batch_s=0.0)
    window = WindowCheck(fresh("rpm"), limit=100, amount=1, label="rpm")
    lease = ConcurrencyCheck(fresh("conc"), limit=5, label="conc")
    budget_key = fresh("budget")
    await store.seed(budget_key, 0, 3600)
    budget = BudgetCheck(budget_key, limit=10_000, amount=300, label="b", ttl_s=7200)
    first = rid()
    assert (await store.admit([window, lease, budget], first, 60)).allowed
    for key in (window.key, lease.key):
        assert await client.ttl(key) > 0, key
    assert await store.budget_state(budget_key) == (0, 300)
    assert 3500 < await client.ttl(budget_key) <= 3600  # the seed's, not the admission's
    # A window whose expiry ran low is renewed once its second moves on.
    await client.expire(window.key, 5)
    await asyncio.sleep(1.1)
    second = await store.admit([window], rid(), 60)
    assert second.outcomes[0].remaining == 100 - 2  # the first request still counts
    assert await client.ttl(window.key) > 100
    await store.settle(
        Release(concurrency_keys=(lease.key,), budget_spend=((budget_key, 50),)), first
    )
    assert await store.budget_state(budget_key) == (50, 0)
    assert await client.ttl(budget_key) > 3500
    await client.aclose()
