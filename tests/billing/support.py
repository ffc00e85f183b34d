"""Generated audit records for billing tests: three teams of one tenant, plus an outsider."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from audit.models import AuditRecord, AuditStatus
from tenants.models import ApiKey, Team, Tenant
from tests.support.world import Key, build_tenant

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4")


@dataclass
class Ledger:
    tenant: Tenant
    teams: list[Team]
    keys: list[ApiKey]
    outsider: Team
    outsider_key: ApiKey


def make_ledger(prefix: str = "ledger") -> Ledger:
    # Slugs unique across tenants: some committed (drill) data outlives its test.
    names = ("research", "support", "sales")
    ours = build_tenant(
        f"{prefix}-co",
        name=f"{prefix.title()} Co",
        teams={f"{prefix}-{name}": name.title() for name in names},
        keys=[Key(f"{name}-key", team=f"{prefix}-{name}") for name in names],
    )
    other = build_tenant(
        f"{prefix}-other", name="Other Co", teams={f"{prefix}-ops": "Ops"}, keys=["ops-key"]
    )
    tenant, teams = ours.tenant, list(ours.teams.values())
    keys = [issued.api_key for issued in ours.keys.values()]
    outsider, outsider_key = other.team, other.keys["ops-key"].api_key
    return Ledger(tenant, teams, keys, outsider, outsider_key)


def record(
    key: ApiKey,
    at: datetime,
    *,
    cost: Decimal,
    user: str = "",
    feature: str = "",
    model: str = "gpt-4o",
    status: str = AuditStatus.SUCCESS,
    latency_ms: float = 100.0,
    prompt_tokens: int = 100,
    completion_tokens: int = 50,
    cached_tokens: int = 0,
    guardrail_findings: list[dict[str, str]] | None = None,
    error_type: str = "",
    route: str = "",
) -> AuditRecord:
    return AuditRecord(
        request_id=f"req_{random.getrandbits(96):024x}",
        tenant_id=key.tenant_id,
        team_id=key.team_id,
        api_key_id=key.id,
        end_user=user,
        feature=feature,
        endpoint="chat.completions",
        model_requested=route or model,
        route_alias=route,
        deployment_name=model if status != AuditStatus.REJECTED else "",
        status=status,
        http_status=200 if status == AuditStatus.SUCCESS else 502,
        error_type=error_type,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        cost_usd=cost,
        latency_ms=latency_ms,
        guardrail_findings=guardrail_findings or [],
        started_at=at,
        completed_at=at + timedelta(milliseconds=latency_ms),
    )


def month_of_traffic(
    ledger: Ledger, start: datetime, *, days: int = 30, per_day: int = 40, seed: int = 7
) -> list[AuditRecord]:
    """A month of varied traffic for the three teams (and some for the outsider)."""
    rng = random.Random(seed)
    records = []
    for day in range(days):
        for _ in range(per_day):
            index = rng.randrange(len(ledger.keys))
            at = start + timedelta(days=day, seconds=rng.randrange(86400))
            records.append(
                record(
                    ledger.keys[index],
                    at,
                    cost=Decimal(rng.randrange(1, 5_000_000)) / Decimal(10**8),
                    user=f"user-{index}-{rng.randrange(4)}",
                    feature=rng.choice(("chat", "summarise", "search")),
                    model=rng.choice(MODELS),
                    status=AuditStatus.UPSTREAM_ERROR if rng.random() < 0.05 else "success",
                    latency_ms=rng.uniform(50, 2000),
                    cached_tokens=rng.choice((0, 0, 64)),
                )
            )
        at = start + timedelta(days=day, hours=12)
        records.append(record(ledger.outsider_key, at, cost=Decimal("9.99")))
    AuditRecord.objects.bulk_create(records, batch_size=2000)
    return records
