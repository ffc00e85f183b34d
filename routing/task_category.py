"""Which task category a request belongs to, and the route order that follows from it.

Only routes with the "category" strategy look: a header, then the request's metadata, then the
categories' rules on the last user message (docs/routing.md#task-categories).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routing.caller import Caller
from routing.core.categories import NoQualifyingDeployment, by_category, category_by_rules
from routing.core.strategy import CATEGORY, RoutePlan
from routing.core.types import JSON
from routing.errors import GatewayError

CATEGORY_HEADER = "x-gateway-task-category"
METADATA_KEY = "task_category"


def last_user_text(payload: JSON) -> str:
    for message in reversed(payload.get("messages") or ()):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content: Any = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(part.get("text") or "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    return ""


@dataclass(frozen=True, slots=True)
class CategoryRoute:
    """The plan in the order a task category wants, the category, and why (for the record)."""

    plan: RoutePlan
    category: str = ""
    note: str = ""


async def route_by_category(caller: Caller, plan: RoutePlan, payload: JSON) -> CategoryRoute:
    if plan.strategy != CATEGORY:
        return CategoryRoute(plan)
    table = await caller.runtime.routes.get()
    named = caller.headers.get(CATEGORY_HEADER, "").strip()
    source = "header"
    if not named:
        named, source = str(caller.client_context.get(METADATA_KEY) or "").strip(), "metadata"
    if named:
        policy = table.categories.get(named)
        if policy is None:
            known = ", ".join(sorted(table.categories)) or "none are configured"
            raise GatewayError(
                400,
                f"Unknown task category '{named[:64]}' (from the {source}); known: {known}.",
                code="unknown_task_category",
                param=CATEGORY_HEADER if source == "header" else f"metadata.{METADATA_KEY}",
            )
    else:
        policy, source = (
            category_by_rules(list(table.categories.values()), last_user_text(payload)),
            "rule",
        )
    if policy is None:
        return CategoryRoute(plan, note="no task category named or matched: route order")
    try:
        ordered, reason = by_category(plan, policy, table.scores)
    except NoQualifyingDeployment as refusal:
        raise GatewayError(
            503,
            f"No deployment of '{plan.alias}' meets the quality threshold "
            f"{policy.threshold:.2f} of task category '{policy.name}' (best: {refusal.best}). "
            "The category is strict, so the request was not sent to a weaker model.",
            type="service_unavailable",
            code="quality_threshold_unmet",
        ) from None
    return CategoryRoute(ordered, policy.name, f"{reason} (category from the {source})")
