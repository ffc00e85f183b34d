"""Which deployment to try first, and which next: route strategies and deployment health.

Pure and synchronous: the proxy calls `order_targets` once per request, then reports each
attempt's outcome to the `HealthBook`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from routing.core.errors import UpstreamError
from routing.core.types import Target

ORDERED, WEIGHTED, LATENCY = "ordered", "weighted", "latency"
# By task category (routing/core/categories.py); a request with no category: as ordered.
CATEGORY = "category"
STRATEGIES = (ORDERED, WEIGHTED, LATENCY, CATEGORY)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A route's deployments in configured order, with how to choose among them."""

    alias: str
    targets: tuple[Target, ...]
    weights: tuple[int, ...]  # weight 0: never chosen first, only a fallback
    strategy: str = ORDERED
    sticky: bool = False  # weighted choice by end user, so a user stays on one side of a canary
    # Latency contract, per attempt: a whole answer, and a stream's first event.
    timeout_s: float | None = None
    first_token_timeout_s: float | None = None
    # Responses API tools the provider would run (web_search, ...): "refuse" or "drop".
    hosted_tools: str = "refuse"
    # Hosted tool types a Responses-native deployment of the route may be sent (runs).
    forward_hosted_tools: tuple[str, ...] = ()

    def only(self, keep: Callable[[Target], bool]) -> RoutePlan:
        """The same plan over the targets `keep` accepts (e.g. those in a residency region)."""
        kept = [(t, w) for t, w in zip(self.targets, self.weights, strict=True) if keep(t)]
        return dataclasses.replace(
            self, targets=tuple(t for t, _ in kept), weights=tuple(w for _, w in kept)
        )


def in_region(plan: RoutePlan, region: str) -> RoutePlan:
    """Data residency: only the deployments in `region` (any, if no region is required).

    Filtering the plan before anything is ordered or tried is what makes fallbacks safe too.
    """
    if not region:
        return plan
    return plan.only(lambda target: target.region == region)


@dataclass(slots=True)
class _Health:
    latency_ms: float | None = None  # moving average of successful attempts
    failures: int = 0  # consecutive
    cooling_until: float = 0.0
    last_success: float = float("-inf")  # when the latest successful attempt was recorded


@dataclass
class HealthBook:
    """Per-worker memory of each deployment: recent latency, failures, cooldown.

    A 429 or 529 with Retry-After cools the deployment down for that long; `breaker_failures`
    consecutive failures open its breaker for `breaker_cooldown_s`. A cooling deployment is tried
    only after every other one has failed: a route never refuses for lack of a healthy target.
    With `breaker_failures` 0 (the breaker off) nothing cools a deployment down, neither its own
    answers, Retry-After included, nor what other processes learned (`learn`): every request
    meets the route's deployments in the strategy's order, which is what an operator who turned
    passing-over off expects of every process, whatever the others are configured to do.

    "Consecutive" is in the order the attempts began, not the order they ended: a failure whose
    attempt began before the deployment's latest success is older news than that success and
    does not count. Otherwise timeouts, which end seconds after they began, line up behind each
    other (and, on a busy worker, ahead of the answers that came in meanwhile), and a deployment
    failing one call in twenty has its breaker opened by coincidence.
    """

    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    max_retry_after_s: float = 60.0
    smoothing: float = 0.2
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    # Told of every cooldown this book learns from an attempt (deployment id, seconds), and of
    # every cooling deployment that answered again (seconds 0): how other processes learn them
    # (routing/shared_health.py). A cooldown learned from them (`learn`) is not told again.
    on_cooldown: Callable[[int, float], None] | None = field(default=None, repr=False)
    _states: dict[int, _Health] = field(default_factory=dict, repr=False)

    def _now(self) -> float:
        return self.clock()

    def _state(self, target: Target) -> _Health:
        return self._states.setdefault(target.deployment_id, _Health())

    def record_success(self, target: Target, latency_ms: float) -> None:
        state = self._state(target)
        if state.cooling_until > self._now() and self.on_cooldown is not None:
            self.on_cooldown(target.deployment_id, 0.0)
        state.failures, state.cooling_until = 0, 0.0
        state.last_success = self._now()
        if state.latency_ms is None:
            state.latency_ms = latency_ms
        else:
            state.latency_ms += self.smoothing * (latency_ms - state.latency_ms)

    def record_failure(
        self, target: Target, error: UpstreamError, *, began: float | None = None
    ) -> None:
        """`began`: when the failed attempt started, by this book's `clock` (None: just now)."""
        if not error.retryable:
            return  # the request's fault, not the deployment's
        state = self._state(target)
        if began is None or began >= state.last_success:
            state.failures += 1
        if not self.breaker_failures:
            return  # the breaker is off: counted (for metrics), never passed over
        cooldown = 0.0
        if error.retry_after is not None:
            cooldown = min(error.retry_after, self.max_retry_after_s)
        if state.failures >= self.breaker_failures:
            cooldown = max(cooldown, self.breaker_cooldown_s)
        if cooldown:
            state.cooling_until = max(state.cooling_until, self._now() + cooldown)
            if self.on_cooldown is not None:
                self.on_cooldown(target.deployment_id, cooldown)

    def learn(self, deployment_id: int, seconds: float) -> None:
        """Another process saw this deployment fail: it cools down here too for `seconds`
        (unless this process's breaker is off: then it passes nobody over)."""
        if not self.breaker_failures:
            return
        state = self._states.setdefault(deployment_id, _Health())
        state.cooling_until = max(state.cooling_until, self._now() + seconds)

    def cooling(self, target: Target) -> bool:
        state = self._states.get(target.deployment_id)
        return state is not None and state.cooling_until > self._now()

    def latency(self, target: Target) -> float:
        state = self._states.get(target.deployment_id)
        return (
            0.0 if state is None or state.latency_ms is None else state.latency_ms
        )  # unknown: try it

    def snapshot(self) -> dict[int, tuple[bool, int]]:
        """Each deployment seen: (cooling now, consecutive failures), for metrics and /readyz."""
        now = self._now()
        return {d: (s.cooling_until > now, s.failures) for d, s in list(self._states.items())}

    def breaker_open(self) -> list[int]:
        """Deployment ids cooling down now (for metrics and health pages)."""
        now = self._now()
        return [deployment for deployment, s in self._states.items() if s.cooling_until > now]


def _stable_fraction(key: str) -> float:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _weighted_first(plan: RoutePlan, end_user: str, rng: random.Random) -> int | None:
    total = sum(plan.weights)
    if total <= 0:
        return None
    point = (
        _stable_fraction(f"{plan.alias}\0{end_user}") if plan.sticky and end_user else rng.random()
    ) * total
    for index, weight in enumerate(plan.weights):
        if point < weight:
            return index
        point -= weight
    return len(plan.weights) - 1


_shared_rng = random.Random()  # noqa: S311 - load balancing, not security


def order_targets(
    plan: RoutePlan, *, end_user: str, health: HealthBook, rng: random.Random | None = None
) -> list[Target]:
    """The order to try a route's deployments in: strategy first, cooling deployments last."""
    order = list(range(len(plan.targets)))
    if plan.strategy == WEIGHTED:
        first = _weighted_first(plan, end_user, rng or _shared_rng)
        if first is not None:
            order.remove(first)
            order.insert(0, first)
    elif plan.strategy == LATENCY:
        order.sort(key=lambda i: health.latency(plan.targets[i]))
    targets = [plan.targets[i] for i in order]
    return [t for t in targets if not health.cooling(t)] + [t for t in targets if health.cooling(t)]


def order_reason(
    plan: RoutePlan, targets: list[Target], *, end_user: str, health: HealthBook
) -> str:
    """Why `targets` (from `order_targets`) come in this order, in words for the audit record."""
    if not targets:
        return "no deployment"
    first = targets[0]
    if plan.strategy == WEIGHTED:
        how = "sticky per end user" if plan.sticky and end_user else "random"
        reason = f"weighted ({how}): {first.deployment_name} first"
    elif plan.strategy == LATENCY:
        reason = (
            f"latency-aware: {first.deployment_name} first "
            f"({health.latency(first):.0f} ms recent average)"
        )
    elif plan.strategy == CATEGORY:
        reason = f"{first.deployment_name} first"
    else:
        reason = f"ordered: {first.deployment_name} first"
    cooling = [t.deployment_name for t in targets if health.cooling(t)]
    if cooling:
        reason += f"; cooling down, tried last: {', '.join(cooling)}"
    return reason
