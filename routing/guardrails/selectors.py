"""Reads of guardrail policies, their history and the quarantine queue, always tenant-scoped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from audit.activity.models import ActivityEvent
from audit.models import AuditRecord
from routing.guardrails.models import (
    GuardrailPolicy,
    PolicyAttachment,
    QuarantineReview,
    ReviewStatus,
)


def policies_of_tenant(*, tenant_id: int) -> QuerySet[GuardrailPolicy]:
    return (
        GuardrailPolicy.objects.filter(tenant_id=tenant_id)
        .prefetch_related("attachments__team", "attachments__api_key", "attachments__route")
        .order_by("name")
    )


def policy_of_tenant(*, tenant_id: int, name: str) -> GuardrailPolicy | None:
    return policies_of_tenant(tenant_id=tenant_id).filter(name=name).first()


def attachment_of_policy(*, policy: GuardrailPolicy, attachment_id: int) -> PolicyAttachment | None:
    return PolicyAttachment.objects.filter(policy=policy, pk=attachment_id).first()


def policy_history(*, policy: GuardrailPolicy) -> QuerySet[ActivityEvent]:
    """The policy's changes (create, update, attach, detach), newest first."""
    return ActivityEvent.objects.filter(
        tenant_id=policy.tenant_id or 0,
        target_type=GuardrailPolicy._meta.label_lower,
        target_id=str(policy.pk),
    ).order_by("-occurred_at", "-id")


@dataclass(frozen=True)
class HeldRequest:
    record: AuditRecord
    finding: dict[str, Any]  # the quarantine finding
    review: QuarantineReview | None

    @property
    def status(self) -> str:
        return self.review.status if self.review else ReviewStatus.HELD

    @property
    def label(self) -> str:
        return self.review.label if self.review else ""

    @property
    def text(self) -> str:
        """The held text as it was recorded (masked), or "" when the record keeps no content."""
        return text_at(self.record.request_body, str(self.finding.get("where", "")))


def text_at(body: Any, where: str) -> str:
    """The text at a finding's place (`messages[2].content`, `…content[0].text`) in a body."""
    node = body
    for part in where.replace("]", "").replace("[", ".").split("."):
        if not part:
            continue
        try:
            node = node[int(part)] if part.isdigit() else node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    return node if isinstance(node, str) else ""


def _quarantine_finding(record: AuditRecord) -> dict[str, Any] | None:
    for finding in record.guardrail_findings or ():
        if finding.get("action") == "quarantine" and not finding.get("shadow"):
            return dict(finding)
    return None


def quarantine_queue(*, tenant_id: int, status: str = "") -> list[HeldRequest]:
    """Requests held for review (newest first) with their reviews; `status` narrows them."""
    records = AuditRecord.objects.filter(
        tenant_id=tenant_id, guardrail_findings__contains=[{"action": "quarantine"}]
    ).order_by("-started_at")[:500]
    reviews = {
        r.request_id: r
        for r in QuarantineReview.objects.filter(
            tenant_id=tenant_id, request_id__in=[r.request_id for r in records]
        )
    }
    held = []
    for record in records:
        finding = _quarantine_finding(record)
        if finding is not None:
            item = HeldRequest(record, finding, reviews.get(record.request_id))
            if not status or item.status == status:
                held.append(item)
    return held


def held_request(*, tenant_id: int, request_id: str) -> HeldRequest | None:
    record = AuditRecord.objects.filter(tenant_id=tenant_id, request_id=request_id).first()
    finding = _quarantine_finding(record) if record is not None else None
    if record is None or finding is None:
        return None
    review = QuarantineReview.objects.filter(tenant_id=tenant_id, request_id=request_id).first()
    return HeldRequest(record, finding, review)


def labelled_reviews(*, tenant_id: int | None = None) -> list[HeldRequest]:
    """Labelled reviews with the text their record keeps (for the next training run)."""
    reviews = QuarantineReview.objects.exclude(label="").order_by("id")
    if tenant_id is not None:
        reviews = reviews.filter(tenant_id=tenant_id)
    out = []
    for review in reviews:
        held = held_request(tenant_id=review.tenant_id, request_id=review.request_id)
        if held is not None and held.text:
            out.append(held)
    return out
