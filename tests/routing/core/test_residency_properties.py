"""Residency under any route shape, strategy, health history and failure pattern: a deployment
outside the tenant's region is never attempted, first choice or fallback."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.core.errors import UpstreamError
from routing.core.strategy import STRATEGIES, HealthBook, RoutePlan, in_region, order_targets
from routing.core.types import Target

REGIONS = ["eu", "us", "apac", ""]
FAILURES = [
    None,  # answers
    UpstreamError("429", status=429, cause="rate_limited", retry_after=2.0),
    UpstreamError("429", status=429, cause="rate_limited"),
    UpstreamError("529", status=529, cause="overloaded", retry_after=30.0),
    UpstreamError("500", status=500, cause="server_error"),
    UpstreamError("timeout", status=None, cause="timeout"),
    UpstreamError("refused", status=None, cause="connection"),
    UpstreamError("bad", status=400, cause="client_error"),
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Case:
    plan: RoutePlan
    region: str
    # Per request: (end user, seconds since the last request, outcome index per deployment id).
    requests: list[tuple[str, float, dict[int, int]]]
    seed: int


def _target(n: int, region: str) -> Target:
    return Target(
        deployment_id=n,
        deployment_name=f"d{n}",
        provider_name=f"p{n % 3}",
        kind=random.Random(n).choice(["openai", "anthropic"]),
        base_url="http://x",
        api_key="",
        upstream_model="m",
        region=region,
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    regions = draw(st.lists(st.sampled_from(REGIONS), min_size=1, max_size=8))
    targets = tuple(_target(n, region) for n, region in enumerate(regions))
    weights = tuple(
        draw(st.lists(st.integers(0, 100), min_size=len(targets), max_size=len(targets)))
    )
    plan = RoutePlan(
        "r",
        targets,
        weights,
        strategy=draw(st.sampled_from(STRATEGIES)),
        sticky=draw(st.booleans()),
    )
    outcome = st.integers(0, len(FAILURES) - 1)
    requests = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["", "alice", "bob", "carol"]),
                st.floats(0, 40),
                st.fixed_dictionaries({n: outcome for n in range(len(targets))}),
            ),
            min_size=1,
            max_size=12,
        )
    )
    return Case(plan, draw(st.sampled_from(["eu", "us", "apac"])), requests, draw(st.integers()))


@settings(max_examples=150, deadline=None)
@given(cases())
def test_no_out_of_region_deployment_is_ever_attempted(case):
    clock = Clock()
    health = HealthBook(clock=clock)
    rng = random.Random(case.seed)
    allowed = in_region(case.plan, case.region)
    in_region_ids = {t.deployment_id for t in case.plan.targets if t.region == case.region}
    assert {t.deployment_id for t in allowed.targets} == in_region_ids
    if not allowed.targets:
        return  # the pipeline refuses with 403 residency_unavailable before any attempt
    for end_user, pause, outcomes in case.requests:
        clock.now += pause
        attempted = []
        for target in order_targets(allowed, end_user=end_user, health=health, rng=rng):
            attempted.append(target)
            failure = FAILURES[outcomes[target.deployment_id]]
            if failure is None:
                health.record_success(target, latency_ms=rng.uniform(1, 500))
                break
            health.record_failure(target, failure)
            if not failure.retryable:
                break
        assert attempted, "an in-region deployment is always tried"
        assert all(t.region == case.region for t in attempted)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_every_in_region_deployment_stays_reachable_whatever_their_health(case):
    """Cooling deployments go last, never away: residency never shrinks to 'nothing' by health."""
    clock = Clock()
    health = HealthBook(clock=clock)
    allowed = in_region(case.plan, case.region)
    for target in case.plan.targets:
        health.record_failure(target, FAILURES[3])  # 529 with a long Retry-After: all cooling
    order = order_targets(allowed, end_user="", health=health)
    assert sorted(t.deployment_id for t in order) == sorted(
        t.deployment_id for t in allowed.targets
    )


def test_no_region_required_keeps_the_whole_route():
    plan = RoutePlan("r", (_target(1, "eu"), _target(2, "")), (1, 1))
    assert in_region(plan, "") is plan
