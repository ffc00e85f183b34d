"""Reads of the prompt registry and of how each version fared, always scoped to one tenant."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Max, Min, Q, QuerySet, Sum

from audit.models import AuditRecord, AuditStatus
from routing.prompts.models import LabelMove, Prompt, PromptLabel, PromptPin, PromptVersion


def prompt_list(*, tenant_id: int) -> QuerySet[Prompt]:
    return (
        Prompt.objects.filter(tenant_id=tenant_id)
        .annotate(version_count=Count("versions", distinct=True))
        .order_by("name")
    )


def prompt_get(*, tenant_id: int, name: str) -> Prompt | None:
    return Prompt.objects.filter(tenant_id=tenant_id, name=name).first()


def prompt_versions(*, prompt: Prompt) -> list[PromptVersion]:
    return list(prompt.versions.order_by("-number"))


def prompt_version(*, prompt: Prompt, number: int) -> PromptVersion | None:
    return prompt.versions.filter(number=number).first()


def prompt_labels(*, prompt: Prompt) -> list[PromptLabel]:
    return list(prompt.labels.select_related("version", "canary_version").order_by("name"))


def prompt_pins(*, prompt: Prompt) -> list[PromptPin]:
    return list(
        prompt.pins.select_related("version", "team", "api_key__team").order_by(
            "team__slug", "api_key__name"
        )
    )


def prompt_pin(*, prompt: Prompt, pin_id: int) -> PromptPin | None:
    return prompt.pins.filter(pk=pin_id).first()


def label_history(*, prompt: Prompt) -> QuerySet[LabelMove]:
    return LabelMove.objects.filter(label__prompt=prompt).select_related("label")


class _Median(Aggregate):
    function = "percentile_cont"
    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass(frozen=True, slots=True)
class VersionUsage:
    version: int
    requests: int
    errors: int
    with_findings: int
    latency_ms: float | None  # median on PostgreSQL, mean elsewhere
    cost_usd: Decimal
    first_seen: datetime | None
    last_seen: datetime | None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def version_usage(*, tenant_id: int, prompt_name: str) -> dict[int, VersionUsage]:
    """Per version: requests that used it, their errors, guardrail findings, tokens, latency and
    cost."""
    finished_badly = ~Q(status__in=[AuditStatus.SUCCESS, AuditStatus.IN_PROGRESS])
    latency = _Median("latency_ms") if connection.vendor == "postgresql" else Avg("latency_ms")
    rows = (
        AuditRecord.objects.filter(
            tenant_id=tenant_id, prompt_name=prompt_name, prompt_version__isnull=False
        )
        .values("prompt_version")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=finished_badly),
            with_findings=Count("id", filter=~Q(guardrail_findings=[])),
            latency=latency,
            cost=Sum("cost_usd"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            first_seen=Min("started_at"),
            last_seen=Max("started_at"),
        )
    )
    return {
        row["prompt_version"]: VersionUsage(
            version=row["prompt_version"],
            requests=row["requests"],
            errors=row["errors"],
            with_findings=row["with_findings"],
            latency_ms=row["latency"],
            cost_usd=row["cost"] or Decimal(0),
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            prompt_tokens=row["prompt_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
        )
        for row in rows
    }


def version_requests(
    *, tenant_id: int, prompt_name: str, version: int, failed_only: bool = False
) -> QuerySet[AuditRecord]:
    records = AuditRecord.objects.filter(
        tenant_id=tenant_id, prompt_name=prompt_name, prompt_version=version
    )
    if failed_only:
        records = records.exclude(status__in=[AuditStatus.SUCCESS, AuditStatus.IN_PROGRESS])
    return records.order_by("-started_at", "-id")


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "add" | "del" | "same" | "hunk" | "head"
    text: str


def version_lines(version: PromptVersion) -> list[str]:
    """A version as the text a reviewer compares: model, parameters, then each message."""
    lines = [
        f"model: {version.model or '(as requested)'}",
        f"parameters: {json.dumps(version.parameters, sort_keys=True)}",
    ]
    for message in version.messages:
        lines.append(f"[{message['role']}]")
        lines.extend(str(message["content"]).splitlines() or [""])
    return lines


def version_diff(*, old: PromptVersion, new: PromptVersion) -> list[DiffLine]:
    kinds: dict[str, Any] = {"+": "add", "-": "del", " ": "same", "@": "hunk"}
    diff = difflib.unified_diff(
        version_lines(old),
        version_lines(new),
        fromfile=f"v{old.number}",
        tofile=f"v{new.number}",
        lineterm="",
        n=3,
    )
    out = []
    for line in diff:
        if line.startswith(("---", "+++")):
            out.append(DiffLine("head", line))
        else:
            out.append(DiffLine(kinds.get(line[:1], "same"), line))
    return out
