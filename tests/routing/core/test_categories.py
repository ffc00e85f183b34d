"""Routing by task category: the cheapest deployment whose evaluation score meets the threshold."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.core.categories import (
    CategoryPolicy,
    NoQualifyingDeployment,
    by_category,
    category_by_rules,
    price_key,
)
from routing.core.errors import UpstreamError
from routing.core.strategy import CATEGORY, HealthBook, RoutePlan, order_targets
from routing.core.types import Target


def _target(n: int, price: str) -> Target:
    return Target(
        deployment_id=n,
        deployment_name=f"d{n}",
        provider_name="p",
        kind="openai",
        base_url="http://x",
        api_key="",
        upstream_model="m",
        input_price_per_mtok=Decimal(price),
        output_price_per_mtok=Decimal(price),
    )


BIG, MID, MINI = _target(1, "10"), _target(2, "3"), _target(3, "0.5")
PLAN = RoutePlan("auto", (BIG, MID, MINI), (1, 1, 1), strategy=CATEGORY)
CODING = CategoryPolicy("coding", threshold=0.8)


def _names(plan: RoutePlan) -> list[str]:
    return [t.deployment_name for t in plan.targets]


def test_the_cheapest_deployment_that_meets_the_threshold_comes_first() -> None:
    scores = {(1, "coding"): 0.95, (2, "coding"): 0.85, (3, "coding"): 0.40}

    plan, reason = by_category(PLAN, CODING, scores)

    # d2 and d1 qualify, cheapest first; d3 is only a fallback after them.
    assert _names(plan) == ["d2", "d1", "d3"]
    assert "2 of 3 deployments meet it" in reason and "cheapest first: d2" in reason


def test_a_strict_category_never_falls_back_below_its_threshold() -> None:
    strict = CategoryPolicy("coding", threshold=0.8, strict=True)
    scores = {(1, "coding"): 0.95, (3, "coding"): 0.40}

    plan, _ = by_category(PLAN, strict, scores)

    assert _names(plan) == ["d1"]


def test_a_strict_category_that_nothing_meets_refuses_and_names_the_best() -> None:
    strict = CategoryPolicy("coding", threshold=0.99, strict=True)

    with pytest.raises(NoQualifyingDeployment) as refused:
        by_category(PLAN, strict, {(1, "coding"): 0.95, (3, "coding"): 0.4})

    assert refused.value.best.startswith("d1 (score 0.95")


def test_when_nothing_meets_the_threshold_the_best_scores_go_first_and_unscored_last() -> None:
    plan, reason = by_category(PLAN, CODING, {(3, "coding"): 0.7, (2, "coding"): 0.5})

    assert _names(plan) == ["d3", "d2", "d1"]
    assert "no deployment meets it" in reason


def test_scores_of_another_category_do_not_count() -> None:
    plan, _ = by_category(PLAN, CODING, {(3, "summaries"): 1.0, (1, "coding"): 0.9})

    assert _names(plan)[0] == "d1"


def test_a_cooling_deployment_is_still_tried_last_after_category_ordering() -> None:
    health = HealthBook()
    plan, _ = by_category(PLAN, CODING, {(1, "coding"): 0.9, (2, "coding"): 0.9})
    for _ in range(health.breaker_failures):
        health.record_failure(MID, UpstreamError("503", status=503, cause="upstream_error"))

    ordered = order_targets(plan, end_user="", health=health)

    assert [t.deployment_name for t in ordered] == ["d1", "d3", "d2"]


def test_rules_pick_the_first_matching_category_in_priority_order() -> None:
    policies = [
        CategoryPolicy("extraction", 0.9, pattern=re.compile(r"\bextract\b", re.IGNORECASE)),
        CategoryPolicy("coding", 0.9, pattern=re.compile(r"\b(python|sql)\b", re.IGNORECASE)),
        CategoryPolicy("general", 0.5),  # no rule: only when named
    ]

    assert category_by_rules(policies, "Extract the SQL from this") == policies[0]
    assert category_by_rules(policies, "write Python code") == policies[1]
    assert category_by_rules(policies, "hello there") is None


@given(
    prices=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6),
    scores=st.lists(st.none() | st.floats(min_value=0, max_value=1), min_size=6, max_size=6),
    threshold=st.floats(min_value=0, max_value=1),
    strict=st.booleans(),
)
def test_no_cheaper_deployment_that_meets_the_threshold_is_ever_passed_over(
    prices: list[int], scores: list[float | None], threshold: float, strict: bool
) -> None:
    targets = tuple(_target(i, str(p)) for i, p in enumerate(prices))
    plan = RoutePlan("auto", targets, (1,) * len(targets), strategy=CATEGORY)
    table = {(i, "c"): s for i, s in enumerate(scores[: len(targets)]) if s is not None}
    policy = CategoryPolicy("c", threshold, strict=strict)
    meets = [t for t in targets if table.get((t.deployment_id, "c"), -1) >= threshold]

    try:
        ordered, _ = by_category(plan, policy, table)
    except NoQualifyingDeployment:
        assert strict and not meets
        return

    assert sorted(ordered.targets, key=lambda t: t.deployment_id) == sorted(
        targets if not strict else meets, key=lambda t: t.deployment_id
    )  # nothing lost, nothing added (strict: only those that meet the threshold)
    if meets:
        assert price_key(ordered.targets[0]) == min(price_key(t) for t in meets)
        assert set(ordered.targets[: len(meets)]) == set(meets)
