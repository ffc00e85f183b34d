"""Failover: a route's deployments tried in the strategy's order until one answers.

Pure (no Django): the pipeline gives the operation to try, the worker's health book and a check
of the provider account's room; it gets back a `Tried`, which says who answered or why nobody did.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from routing.core.errors import UpstreamError
from routing.core.strategy import HealthBook, RoutePlan, order_reason, order_targets
from routing.core.types import Attempt, Target

T = TypeVar("T")

Operation = Callable[[Target], Awaitable[T]]
# Before each attempt: None if the provider account has room for this caller, else why not.
Room = Callable[[Target], Awaitable[UpstreamError | None]]


@dataclass(frozen=True, slots=True)
class Tried(Generic[T]):
    """What trying a route's deployments came to: an answer and its deployment, or the error."""

    attempts: tuple[Attempt, ...]
    reason: str  # why the deployments were tried in this order
    answer: T | None = None
    target: Target | None = None
    error: UpstreamError | None = None

    @property
    def upstream_ms(self) -> float:
        return sum(a.latency_ms for a in self.attempts if a.status == 200)


async def _no_limit(target: Target) -> UpstreamError | None:
    return None


async def try_in_order(
    plan: RoutePlan,
    operation: Operation[T],
    *,
    health: HealthBook,
    end_user: str = "",
    room: Room = _no_limit,
    per_attempt_s: float | None = None,
    closing: Callable[[], bool] = lambda: False,
    abandoned: Callable[[], bool] = lambda: False,
) -> Tried[T]:
    """Falls over on retryable failures (429, 5xx, 529, timeouts, connection errors). A
    deployment cooling down (Retry-After, open breaker) is tried only after all others failed;
    the attempts note that it was passed over. When the worker is `closing` there is no
    failover: the first failure ends the call (a timeout is raised as it came). Nor is there
    once the call is `abandoned` (its client left): nobody would get the next answer."""
    targets = order_targets(plan, end_user=end_user, health=health)
    reason = order_reason(plan, targets, end_user=end_user, health=health)
    attempts = [
        Attempt(t.deployment_name, t.provider_name, error="cooling_down")
        for t in targets
        if health.cooling(t)
    ]
    last_error: UpstreamError | None = None
    for target in targets:
        if last_error is not None and abandoned():  # nobody waits for the next answer
            return Tried(tuple(attempts), reason, error=last_error)
        attempt = Attempt(target.deployment_name, target.provider_name)
        attempts.append(attempt)
        begun, began = time.perf_counter(), health.clock()
        if refusal := await room(target):
            # The provider account has no room for this caller now: the next deployment may.
            attempt.status, attempt.error = 429, "provider_capacity"
            last_error = refusal
            continue
        try:
            async with asyncio.timeout(per_attempt_s):
                answer = await operation(target)
        except TimeoutError:
            if closing():
                raise
            error = UpstreamError(
                f"no answer within the route's {per_attempt_s} s", status=None, cause="timeout"
            )
        except UpstreamError as raised:
            error = raised
        else:
            attempt.status = 200
            attempt.latency_ms = (time.perf_counter() - begun) * 1000
            health.record_success(target, attempt.latency_ms)
            return Tried(tuple(attempts), reason, answer=answer, target=target)
        attempt.status, attempt.error = error.status, error.cause
        attempt.latency_ms = (time.perf_counter() - begun) * 1000
        if closing():  # the worker is stopping: no failover, the call ends here
            return Tried(tuple(attempts), reason, error=error)
        health.record_failure(target, error, began=began)
        if not error.retryable:
            return Tried(tuple(attempts), reason, error=error)
        last_error = error
    assert last_error is not None, "a plan has at least one deployment"
    return Tried(tuple(attempts), reason, error=last_error)
