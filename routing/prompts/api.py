"""The prompt registry in the management API (`/api/v1/tenants/{slug}/prompts…`).

The same services as the console and the YAML, with the admin key as the actor. There is no
endpoint that changes a published version: publishing creates one, labels move.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import ConfigDict

from gateway_site.api.auth import api_roles
from gateway_site.api.common import scope_of, tenant_or_404
from gateway_site.api.errors import ApiError, conflict, not_found
from gateway_site.bounds import INT_MAX, StorableInput
from routing.prompts import selectors, services
from routing.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion

router = Router(tags=["prompts"])


class BodyIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")


class PromptIn(BodyIn):
    name: str = Field(max_length=128)
    description: str = Field(default="", max_length=500)


class PromptOut(Schema):
    name: str
    description: str
    created_at: Any
    labels: dict[str, dict[str, int | None]]


class MessageIn(BodyIn):
    role: str
    content: str


class VersionIn(BodyIn):
    messages: list[MessageIn] = Field(min_length=1)
    parameters: dict[str, Any] = {}
    model: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=500)


class VersionOut(Schema):
    number: int
    messages: list[dict[str, str]]
    variables: list[str]
    parameters: dict[str, Any]
    model: str
    note: str
    author: str = Field(alias="author_label")
    published_at: Any


class LabelIn(BodyIn):
    version: int = Field(ge=1, le=INT_MAX)
    canary_version: int | None = Field(default=None, ge=1, le=INT_MAX)
    canary_percent: int = Field(default=0, ge=0, le=100)
    note: str = Field(default="", max_length=500)


class LabelOut(Schema):
    label: str
    version: int
    canary_version: int | None
    canary_percent: int


class MoveOut(Schema):
    label: str
    moved_at: Any
    actor: str
    from_version: int | None
    to_version: int
    from_canary_version: int | None
    to_canary_version: int | None
    to_canary_percent: int
    is_rollback: bool
    note: str


def _prompt_out(prompt: Prompt) -> PromptOut:
    return PromptOut(
        name=prompt.name,
        description=prompt.description,
        created_at=prompt.created_at,
        labels={
            # Keyed by the label's name already: the declared value has no "label" field.
            label.name: _label_out(label).dict(exclude={"label"})
            for label in selectors.prompt_labels(prompt=prompt)
        },
    )


def _label_out(label: PromptLabel) -> LabelOut:
    canary = label.canary_version
    return LabelOut(
        label=label.name,
        version=label.version.number,
        canary_version=canary.number if canary else None,
        canary_percent=label.canary_percent,
    )


def _move_out(move: LabelMove) -> MoveOut:
    return MoveOut(
        label=move.label.name,
        moved_at=move.moved_at,
        actor=move.actor_label,
        from_version=move.from_version,
        to_version=move.to_version,
        from_canary_version=move.from_canary_version,
        to_canary_version=move.to_canary_version,
        to_canary_percent=move.to_canary_percent,
        is_rollback=move.is_rollback,
        note=move.note,
    )


def _prompt_or_404(request: HttpRequest, slug: str, name: str) -> Prompt:
    tenant = tenant_or_404(request, slug)
    prompt = selectors.prompt_get(tenant_id=tenant.pk, name=name)
    if prompt is None:
        raise not_found(f"Prompt '{name}' of tenant '{slug}'")
    return prompt


def _refused(exc: services.PromptError) -> ApiError:
    return ApiError(422, "validation_error", str(exc))


@router.get("/tenants/{slug}/prompts", response=list[PromptOut], summary="List prompts")
@paginate
def prompt_list(request: HttpRequest, slug: str) -> list[PromptOut]:
    tenant = tenant_or_404(request, slug)
    return [_prompt_out(p) for p in selectors.prompt_list(tenant_id=tenant.pk)]


@router.post("/tenants/{slug}/prompts", response={201: PromptOut}, summary="Create a prompt")
def prompt_create(request: HttpRequest, slug: str, payload: PromptIn) -> Status[PromptOut]:
    tenant = tenant_or_404(request, slug)
    try:
        prompt = services.prompt_create(
            actor=scope_of(request).actor,
            tenant=tenant,
            name=payload.name,
            description=payload.description,
        )
    except services.PromptExists as exc:
        raise conflict(str(exc)) from None
    except services.PromptError as exc:
        raise _refused(exc) from None
    return Status(201, _prompt_out(prompt))


@router.get("/tenants/{slug}/prompts/{name}", response=PromptOut, summary="A prompt and its labels")
def prompt_get(request: HttpRequest, slug: str, name: str) -> PromptOut:
    return _prompt_out(_prompt_or_404(request, slug, name))


@router.get(
    "/tenants/{slug}/prompts/{name}/versions",
    response=list[VersionOut],
    summary="A prompt's published versions, newest first",
)
@paginate
def version_list(request: HttpRequest, slug: str, name: str) -> QuerySet[PromptVersion]:
    return _prompt_or_404(request, slug, name).versions.order_by("-number")


@router.post(
    "/tenants/{slug}/prompts/{name}/versions",
    response={200: VersionOut, 201: VersionOut},
    summary="Publish a version (201), or get the existing one with identical content (200)",
)
def version_publish(
    request: HttpRequest, slug: str, name: str, payload: VersionIn
) -> Status[PromptVersion]:
    prompt = _prompt_or_404(request, slug, name)
    try:
        version, created = services.prompt_publish(
            actor=scope_of(request).actor,
            prompt=prompt,
            messages=[m.dict() for m in payload.messages],
            parameters=payload.parameters,
            model=payload.model,
            note=payload.note,
        )
    except services.PromptError as exc:
        raise _refused(exc) from None
    return Status(201 if created else 200, version)


@router.get(
    "/tenants/{slug}/prompts/{name}/versions/{number}",
    response=VersionOut,
    summary="One published version (read-only: versions never change)",
)
def version_get(request: HttpRequest, slug: str, name: str, number: int) -> PromptVersion:
    prompt = _prompt_or_404(request, slug, name)
    version = selectors.prompt_version(prompt=prompt, number=number)
    if version is None:
        raise not_found(f"Version {number} of prompt '{name}'")
    return version


@router.put(
    "/tenants/{slug}/prompts/{name}/labels/{label}",
    response=LabelOut,
    summary="Point a label at a version (optionally with a canary); recorded in its history",
)
def label_move(
    request: HttpRequest, slug: str, name: str, label: str, payload: LabelIn
) -> LabelOut:
    prompt = _prompt_or_404(request, slug, name)
    try:
        moved = services.prompt_label_move(
            actor=scope_of(request).actor,
            prompt=prompt,
            label=label,
            version=payload.version,
            canary_version=payload.canary_version,
            canary_percent=payload.canary_percent,
            note=payload.note,
        )
    except services.PromptError as exc:
        raise _refused(exc) from None
    return _label_out(moved)


@router.post(
    "/tenants/{slug}/prompts/{name}/labels/{label}/rollback",
    response=LabelOut,
    summary="Move a label back to where it pointed before its last move",
)
def label_rollback(request: HttpRequest, slug: str, name: str, label: str) -> LabelOut:
    prompt = _prompt_or_404(request, slug, name)
    current = prompt.labels.filter(name=label).first()
    if current is None:
        raise not_found(f"Label '{label}' of prompt '{name}'")
    try:
        moved = services.prompt_label_rollback(actor=scope_of(request).actor, label=current)
    except services.PromptError as exc:
        raise _refused(exc) from None
    return _label_out(moved)


@router.get(
    "/tenants/{slug}/prompts/{name}/history",
    response=list[MoveOut],
    summary="Every label move of a prompt, newest first",
)
@paginate
def label_history(request: HttpRequest, slug: str, name: str) -> list[MoveOut]:
    prompt = _prompt_or_404(request, slug, name)
    return [_move_out(m) for m in selectors.label_history(prompt=prompt)]


class VersionUsageOut(Schema):
    version: int
    requests: int
    errors: int
    error_rate: float
    with_findings: int = Field(description="Requests with a guardrail finding")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: str
    latency_ms_p50: float | None
    first_seen: Any
    last_seen: Any


@router.get(
    "/tenants/{slug}/prompts/{name}/usage",
    response=list[VersionUsageOut],
    summary="Per version of a prompt: requests, tokens, cost and errors (from the audit trail)",
)
@api_roles("tenant_admin", "developer", "compliance")
def version_usage(request: HttpRequest, slug: str, name: str) -> list[VersionUsageOut]:
    prompt = _prompt_or_404(request, slug, name)
    usage = selectors.version_usage(tenant_id=prompt.tenant_id, prompt_name=prompt.name)
    numbers = [v.number for v in selectors.prompt_versions(prompt=prompt)]
    return [
        VersionUsageOut(
            version=number,
            requests=used.requests if used else 0,
            errors=used.errors if used else 0,
            error_rate=used.error_rate if used else 0.0,
            with_findings=used.with_findings if used else 0,
            prompt_tokens=used.prompt_tokens if used else 0,
            completion_tokens=used.completion_tokens if used else 0,
            cost_usd=f"{used.cost_usd if used else 0:f}",
            latency_ms_p50=used.latency_ms if used else None,
            first_seen=used.first_seen if used else None,
            last_seen=used.last_seen if used else None,
        )
        for number in numbers
        for used in [usage.get(number)]
    ]
