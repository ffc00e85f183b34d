import random
from collections import Counter
from decimal import Decimal

import pytest

from routing.core.errors import UpstreamError
from routing.core.failover import try_in_order
from routing.core.strategy import LATENCY, ORDERED, WEIGHTED, HealthBook, RoutePlan, order_targets
from routing.core.types import Target


def _target(n: int) -> Target:
    return Target(
        deployment_id=n,
        deployment_name=f"d{n}",
        provider_name="p",
        kind="openai",
        base_url="http://x",
        api_key="",
        upstream_model="m",
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
    )


A, B, C = _target(1), _target(2), _target(3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rate_limited(retry_after: float | None = None) -> UpstreamError:
    return UpstreamError("429", status=429, cause="rate_limited", retry_after=retry_after)


def test_an_ordered_route_tries_deployments_in_configured_order():
    plan = RoutePlan("r", (A, B, C), (1, 1, 1), ORDERED)
    assert order_targets(plan, end_user="", health=HealthBook()) == [A, B, C]


@pytest.mark.parametrize("weights", [(70, 30, 0), (50, 50, 0), (95, 5, 0)])
def test_a_weighted_split_is_within_two_points_over_ten_thousand_decisions(weights):
    plan = RoutePlan("r", (A, B, C), weights, WEIGHTED)
    rng = random.Random(7)
    firsts = Counter(
        order_targets(plan, end_user="", health=HealthBook(), rng=rng)[0] for _ in range(10_000)
    )
    total = sum(weights)
    for target, weight in zip((A, B, C), weights, strict=True):
        assert abs(firsts[target] / 10_000 - weight / total) <= 0.02
    assert firsts[C] == 0  # weight 0 is a fallback only


def test_the_rest_follow_as_fallbacks_in_configured_order():
    plan = RoutePlan("r", (A, B, C), (0, 0, 1), WEIGHTED)
    assert order_targets(plan, end_user="", health=HealthBook()) == [C, A, B]


def test_a_sticky_canary_keeps_each_user_on_one_side_and_splits_users_as_configured():
    plan = RoutePlan("chat", (A, B), (90, 10), WEIGHTED, sticky=True)
    health = HealthBook()
    sides = {
        f"user-{i}": order_targets(plan, end_user=f"user-{i}", health=health)[0]
        for i in range(10_000)
    }
    assert abs(sum(side is B for side in sides.values()) / 10_000 - 0.10) <= 0.02
    for user in list(sides)[:200]:
        assert all(
            order_targets(plan, end_user=user, health=health)[0] is sides[user] for _ in range(5)
        )


def test_latency_aware_routing_prefers_the_fastest_recent_deployment():
    health = HealthBook()
    for _ in range(5):
        health.record_success(A, 300.0)
        health.record_success(B, 40.0)
        health.record_success(C, 120.0)
    plan = RoutePlan("r", (A, B, C), (1, 1, 1), LATENCY)
    assert order_targets(plan, end_user="", health=health) == [B, C, A]


def test_retry_after_cools_a_deployment_down_until_it_has_passed():
    clock = Clock()
    health = HealthBook(clock=clock)
    plan = RoutePlan("r", (A, B), (1, 1), ORDERED)
    health.record_failure(A, _rate_limited(retry_after=2))
    assert order_targets(plan, end_user="", health=health) == [B, A]  # last, never dropped
    clock.now += 2.5
    assert order_targets(plan, end_user="", health=health) == [A, B]


def test_repeated_failures_open_the_breaker_and_a_success_closes_it():
    clock = Clock()
    health = HealthBook(clock=clock, breaker_failures=3, breaker_cooldown_s=30)
    server_error = UpstreamError("500", status=500, cause="server_error")
    for _ in range(2):
        health.record_failure(A, server_error)
    assert not health.cooling(A)
    health.record_failure(A, server_error)
    assert health.cooling(A) and health.breaker_open() == [A.deployment_id]
    clock.now += 31
    health.record_success(A, 10.0)
    assert not health.cooling(A) and health.breaker_open() == []


def test_with_the_breaker_off_nothing_cools_a_deployment_down() -> None:
    # Breaker off (GATEWAY_BREAKER_FAILURES=0) means every request meets the route's first
    # deployment: not its own failures, not a Retry-After, not another process's cooldown pass
    # it over (docs/config.md).
    health = HealthBook(breaker_failures=0)
    for _ in range(50):
        health.record_failure(A, UpstreamError("500", status=500, cause="server_error"))
    health.record_failure(A, _rate_limited(retry_after=5))
    health.learn(A.deployment_id, 30.0)
    assert not health.cooling(A)
    assert health.snapshot()[A.deployment_id] == (False, 51)  # still counted, for the metrics
    plan = RoutePlan("r", (A, B), (1, 1), ORDERED)
    assert order_targets(plan, end_user="", health=health) == [A, B]


async def test_with_the_breaker_off_every_request_meets_a_rate_limited_primary() -> None:
    health = HealthBook(breaker_failures=0)
    health.learn(A.deployment_id, 30.0)  # a process with its breaker on saw A fail
    plan = RoutePlan("r", (A, B), (1, 1), ORDERED)
    asked: list[str] = []

    async def operation(target: Target) -> str:
        asked.append(target.deployment_name)
        if target is A:
            raise _rate_limited(retry_after=10)
        return "answer"

    for _ in range(5):
        tried = await try_in_order(plan, operation, health=health)
        assert tried.answer == "answer"
        assert [(a.deployment, a.status) for a in tried.attempts] == [("d1", 429), ("d2", 200)]
    assert asked == ["d1", "d2"] * 5


def test_a_breaker_on_passes_over_a_deployment_another_process_saw_fail() -> None:
    health = HealthBook()
    health.learn(A.deployment_id, 30.0)
    plan = RoutePlan("r", (A, B), (1, 1), ORDERED)
    assert order_targets(plan, end_user="", health=health) == [B, A]


def test_a_clients_bad_request_does_not_count_against_the_deployment():
    health = HealthBook(breaker_failures=1)
    health.record_failure(A, UpstreamError("400", status=400, cause="client_error"))
    assert not health.cooling(A)


def test_timeouts_that_began_before_a_success_do_not_open_the_breaker():
    # A busy worker: three stalls that began at t=0 time out at t=2, after answers from the same
    # deployment that began later and came in meanwhile. Three failures in a row by the time they
    # ended, but not by the time they began: the deployment has answered since.
    clock = Clock()
    health = HealthBook(clock=clock, breaker_failures=3, breaker_cooldown_s=30)
    stalled_since = clock.now
    clock.now += 1.0
    health.record_success(A, 10.0)
    clock.now += 1.0
    timeout = UpstreamError("no answer", status=None, cause="timeout")
    for _ in range(3):
        health.record_failure(A, timeout, began=stalled_since)
    assert not health.cooling(A)
    # Three failures that all began after that success are a breaker's business.
    for _ in range(3):
        health.record_failure(A, timeout, began=clock.now)
    assert health.cooling(A)


def test_a_stale_429_still_honours_its_retry_after():
    clock = Clock()
    health = HealthBook(clock=clock)
    began = clock.now
    clock.now += 1.0
    health.record_success(A, 10.0)
    health.record_failure(A, _rate_limited(retry_after=5), began=began)
    assert health.cooling(A)


async def test_no_failover_once_the_client_left() -> None:
    """The first deployment fails after the client went away: nobody waits for a second answer,
    so no second provider is asked (and paid)."""
    asked: list[str] = []
    left = [False]

    async def operation(target: Target) -> str:
        asked.append(target.deployment_name)
        left[0] = True  # the client gave up while this attempt ran
        raise UpstreamError("500", status=500, cause="server_error")

    plan = RoutePlan("r", (A, B, C), (1, 1, 1), ORDERED)
    tried = await try_in_order(plan, operation, health=HealthBook(), abandoned=lambda: left[0])

    assert asked == ["d1"]
    assert tried.error is not None and tried.error.status == 500
    assert [(a.deployment, a.status) for a in tried.attempts] == [("d1", 500)]
