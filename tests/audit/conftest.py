from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from tenants.models import ApiKey, Team

MakeRecord = Callable[..., AuditRecord]


@pytest.fixture
def make_record(world: Any) -> MakeRecord:
    """An audit record as the proxy writes it, for tenant acme (or `team`'s tenant)."""

    def make(
        *,
        team: Team | None = None,
        started_at: datetime | None = None,
        prompt: str = "What is the client's allocation?",
        answer: str = "60% equities, 40% bonds.",
        **fields: Any,
    ) -> AuditRecord:
        team = team or world.team
        key = ApiKey.objects.filter(team=team).first()
        started = started_at or timezone.now()
        values: dict[str, Any] = {
            "request_id": f"req_{uuid.uuid4().hex[:24]}",
            "tenant_id": team.tenant_id,
            "team": team,
            "api_key": key,
            "endpoint": "chat.completions",
            "model_requested": "demo",
            "deployment_name": "mock-gpt",
            "provider_name": "mock-ok",
            "upstream_model": "mock-gpt-2026-01-01",
            "end_user": "advisor-17",
            "client_context": {"client_id": "C-1042", "session_id": "s-9"},
            "request_body": {
                "model": "mock-gpt",
                "messages": [{"role": "user", "content": prompt}],
            },
            "response_body": {"choices": [{"message": {"role": "assistant", "content": answer}}]},
            "status": "success",
            "http_status": 200,
            "prompt_tokens": 12,
            "completion_tokens": 8,
            "cost_usd": Decimal("0.0001150000"),
            "latency_ms": 12.5,
            "started_at": started,
            "completed_at": started + timedelta(milliseconds=12),
        }
        values.update(fields)
        return AuditRecord.objects.create(**values)

    return make
