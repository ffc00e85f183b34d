"""Routing by task category: the cheapest deployment good enough for the kind of task.

Pure: the routing table carries each category's policy and the latest evaluation scores
(deployment x category); `by_category` reorders a route's plan for one request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from routing.core.strategy import RoutePlan
from routing.core.types import Target

Scores = Mapping[tuple[int, str], float]  # (deployment id, category) -> latest score, 0..1


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    name: str
    threshold: float
    strict: bool = False  # never fall back below the threshold
    pattern: re.Pattern[str] | None = None  # matched against the last user message


class NoQualifyingDeployment(Exception):
    """A strict category and no deployment of the route meets its threshold."""

    def __init__(self, policy: CategoryPolicy, best: str) -> None:
        super().__init__(policy.name)
        self.policy = policy
        self.best = best


def price_key(target: Target) -> Decimal:
    """What "cheapest" compares: the price of a million input plus a million output tokens."""
    return target.input_price_per_mtok + target.output_price_per_mtok


def category_by_rules(policies: Sequence[CategoryPolicy], text: str) -> CategoryPolicy | None:
    """The first category (in priority order) whose pattern matches the text."""
    for policy in policies:
        if policy.pattern is not None and policy.pattern.search(text):
            return policy
    return None


def by_category(plan: RoutePlan, policy: CategoryPolicy, scores: Scores) -> tuple[RoutePlan, str]:
    """The plan reordered for `policy`, and why, in words for the audit record.

    Deployments that meet the threshold come first, cheapest first (ties: the better score, then
    route order). Unless the category is strict, the others follow as fallbacks, best score
    first, unscored last. The plan keeps its "category" strategy, which `order_targets` tries in
    plan order (cooling deployments still last).
    """
    indexed = list(enumerate(plan.targets))

    def score(target: Target) -> float | None:
        return scores.get((target.deployment_id, policy.name))

    meets = [(i, t) for i, t in indexed if (s := score(t)) is not None and s >= policy.threshold]
    meets.sort(key=lambda it: (price_key(it[1]), -(score(it[1]) or 0.0), it[0]))
    below = [(i, t) for i, t in indexed if (i, t) not in meets]
    below.sort(key=lambda it: (score(it[1]) is None, -(score(it[1]) or 0.0), it[0]))
    head = f"task category '{policy.name}' (threshold {policy.threshold:.2f})"
    if not meets:
        best = _describe(below[0][1], score(below[0][1])) if below else "none"
        if policy.strict:
            raise NoQualifyingDeployment(policy, best)
        reason = f"{head}: no deployment meets it; best score first: {best}"
        order = below
    else:
        first = meets[0][1]
        reason = (
            f"{head}: {len(meets)} of {len(indexed)} deployments meet it; "
            f"cheapest first: {_describe(first, score(first))}"
        )
        order = meets if policy.strict else meets + below
    weights = dict(zip(plan.targets, plan.weights, strict=True))
    return (
        dataclasses.replace(
            plan,
            targets=tuple(t for _, t in order),
            weights=tuple(weights[t] for _, t in order),
        ),
        reason,
    )


def _describe(target: Target, score: float | None) -> str:
    shown = "unscored" if score is None else f"score {score:.2f}"
    return f"{target.deployment_name} ({shown}, ${price_key(target):.2f}/M in+out)"
