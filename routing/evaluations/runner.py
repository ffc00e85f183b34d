"""Run an evaluation set against candidate deployments, straight to their providers.

Evaluations do not go through the proxy: they are an operator's measurement, not a tenant's
traffic, so they spend no tenant's budget and leave no tenant's audit record. What they cost is
reported with the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

from billing.cost import request_cost_usd
from routing.core.egress_transport import egress_transport
from routing.core.errors import UpstreamError
from routing.core.types import Target
from routing.egress import egress_policy
from routing.evaluations.evalset import EvalItem, EvalSet
from routing.evaluations.scoring import SCORERS, CategoryResult
from routing.runtime import ADAPTERS


@dataclass
class RunOutcome:
    results: list[CategoryResult]
    cost_usd: Decimal


def _answer_text(parsed: dict[str, Any]) -> str:
    message = ((parsed.get("choices") or [{}])[0] or {}).get("message") or {}
    return str(message.get("content") or "")


async def run_eval_set(
    eval_set: EvalSet,
    targets: Sequence[Target],
    *,
    concurrency: int = 4,
    max_tokens: int = 256,
    timeout_s: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Ask every target every item; an item a target fails to answer counts as not passed."""
    results = {
        (t.deployment_id, c): CategoryResult(t.deployment_id, t.deployment_name, c)
        for t in targets
        for c in eval_set.categories
    }
    costs: list[Decimal] = []
    limit = asyncio.Semaphore(concurrency)
    # The providers' credentials go only where the proxy may send them (docs/config.md).
    transport = egress_transport(
        egress_policy(),
        kind=settings.GATEWAY.upstream_transport,
        limits=httpx.Limits(max_connections=max(concurrency, 1) * 2),
    )
    timeout = httpx.Timeout(timeout_s, connect=10.0)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
        adapters = {kind: adapter(http) for kind, adapter in ADAPTERS.items()}

        async def one(target: Target, item: EvalItem) -> None:
            result = results[(target.deployment_id, item.category)]
            payload = {
                "model": target.upstream_model,
                "messages": list(item.messages),
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            async with limit:
                try:
                    reply = await adapters[target.kind].chat(target, payload)
                except UpstreamError as error:
                    result.samples += 1
                    result.errors += 1
                    _note(result, f"line {item.line}: {error.cause}: {error.message}")
                    return
            costs.append(request_cost_usd(reply.usage, target))
            answer = _answer_text(reply.parsed)
            result.samples += 1
            if SCORERS[item.scorer](answer, item.expected):
                result.passed += 1
            else:
                _note(result, f"line {item.line}: expected {item.expected!r}, got {answer[:80]!r}")

        await asyncio.gather(*(one(t, item) for t in targets for item in eval_set.items))
    if progress:
        progress(f"{len(eval_set.items)} items x {len(targets)} deployments done")
    return RunOutcome(list(results.values()), sum(costs, Decimal(0)))


def _note(result: CategoryResult, text: str) -> None:
    if len(result.failures) < 3:
        result.failures.append(text)
