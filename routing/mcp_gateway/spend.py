"""Budgets on tool calls: a priced tool's call is reserved in every budget that applies to the
caller (tenant, team, key, end user) before it goes upstream, and charged like model cost: the
audit record's `cost_usd`, with its row in the spend ledger (tenants/quotas/, ADR 0005).

A call is charged when the upstream answered it (a result, a tool error, or a result the
gateway withheld); a call refused before it left, or whose upstream could not be reached, is
charged nothing and gives its reservation back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mcp.shared.exceptions import MCPError

from routing.errors import GatewayError
from tenants.quotas.engine import Admission, Demand

if TYPE_CHECKING:
    from audit.entries import AuditEntry
    from routing.caller import StepServices
    from tenants.auth import KeyIdentity

# A JSON-RPC error in the server-defined range: the call is refused by a budget or the counters.
QUOTA_REFUSED = -32029


def _demand(identity: KeyIdentity, entry: AuditEntry, price: Decimal) -> Demand:
    return Demand(
        tenant_id=identity.tenant_id,
        team_id=identity.team_id,
        key_id=identity.quota_key_id,
        end_user=entry.end_user,
        prompt_tokens=0,
        tokens_exact=True,
        max_output_tokens=0,
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
        fixed_cost_usd=price,
        budgets_only=True,
    )


async def reserve(
    runtime: StepServices, identity: KeyIdentity, entry: AuditEntry, price: Decimal
) -> Admission | None:
    """Reserve `price` in the caller's budgets; None when the tool has no price.

    Raises GatewayError (429 `budget_exceeded`, 503 `quota_unavailable`/`gateway_busy`)."""
    if price <= 0:
        return None
    admission = await runtime.quotas.admit(_demand(identity, entry, price), entry.request_id)
    entry.quota = {**entry.quota, **admission.record}
    return admission


def refusal(error: GatewayError) -> MCPError:
    """The JSON-RPC error an agent gets for a budget (or counters) refusal."""
    data: dict[str, Any] = {"code": error.code, "status": error.status}
    for header, name in (
        ("x-gateway-budget-scope", "scope"),
        ("x-gateway-budget-resets-at", "resets_at"),
        ("retry-after", "retry_after"),
    ):
        if header in error.headers:
            data[name] = error.headers[header]
    return MCPError(QUOTA_REFUSED, error.message, data)


def settle(runtime: StepServices, admission: Admission | None, charged: Decimal) -> None:
    """Replace the reservation by what the call cost (0: it gives everything back)."""
    if admission is not None:
        runtime.spawn(runtime.quotas.settle(admission, total_tokens=0, cost_usd=charged))
