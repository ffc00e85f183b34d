"""Prompts as versioned data: immutable published versions, labels that point at them, pins.

A published version is never changed or deleted: the model refuses it, its queryset refuses it, and
on PostgreSQL a trigger refuses it too (migration 0002), so not even raw SQL can rewrite history.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
# Not all digits: `name@3` asks for version 3, `name@production` for a label.
LABEL_PATTERN = r"^(?![0-9]+$)[a-z0-9][a-z0-9_-]*$"
DEFAULT_LABEL = "production"


class ImmutableVersionError(Exception):
    """Raised on any attempt to change or delete a published prompt version."""


class Prompt(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="prompts")
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="prompt_name_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name


class PromptVersionQuerySet(models.QuerySet["PromptVersion"]):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableVersionError("published prompt versions cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableVersionError("published prompt versions cannot be deleted")


class PromptVersion(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    # [{"role": "system" | "developer" | "user" | "assistant", "content": "text with {{ vars }}"}]
    messages = models.JSONField()
    variables = models.JSONField(default=list)  # derived from `messages` at publication
    # Defaults for the request (temperature, max_tokens, ...): the caller's own values win.
    parameters = models.JSONField(default=dict, blank=True)
    # Route alias or model used when the request names none.
    model = models.CharField(max_length=200, blank=True, default="")
    # SHA-256 of the canonical content: publishing identical content again is a no-op.
    content_hash = models.CharField(max_length=64)
    note = models.CharField(max_length=500, blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(max_length=200)
    published_at = models.DateTimeField(auto_now_add=True)

    objects = PromptVersionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "number"], name="prompt_version_number"),
            models.UniqueConstraint(
                fields=["prompt", "content_hash"], name="prompt_version_content"
            ),
        ]
        ordering = ["prompt", "number"]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableVersionError(f"{self} is published and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableVersionError(f"{self} is published and cannot be deleted")


class PromptLabel(models.Model):
    """A name (`production`, `staging`, ...) pointing at a version, optionally splitting traffic
    with a canary version; every move is kept in LabelMove."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="labels")
    name = models.CharField(max_length=64)
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    canary_version = models.ForeignKey(
        PromptVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    canary_percent = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "name"], name="prompt_label_unique"),
            models.CheckConstraint(
                condition=Q(canary_percent__lte=100), name="prompt_label_canary_percent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name}@{self.name}"


class LabelMove(models.Model):
    """One move of a label: who, when, from which version(s) to which. Only ever inserted."""

    label = models.ForeignKey(PromptLabel, on_delete=models.PROTECT, related_name="moves")
    from_version = models.PositiveIntegerField(null=True, blank=True)  # null: the label was created
    from_canary_version = models.PositiveIntegerField(null=True, blank=True)
    from_canary_percent = models.PositiveSmallIntegerField(default=0)
    to_version = models.PositiveIntegerField()
    to_canary_version = models.PositiveIntegerField(null=True, blank=True)
    to_canary_percent = models.PositiveSmallIntegerField(default=0)
    actor_kind = models.CharField(max_length=16)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    is_rollback = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True, default="")
    moved_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-moved_at", "-id"]

    def __str__(self) -> str:
        return f"{self.label}: v{self.from_version} → v{self.to_version}"


class PromptPin(models.Model):
    """A key or a team held to one version of a prompt, whatever label a request names."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="pins")
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(
        "tenants.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(team__isnull=True, api_key__isnull=False)
                | Q(team__isnull=False, api_key__isnull=True),
                name="prompt_pin_key_or_team",
            ),
            models.UniqueConstraint(
                fields=["prompt", "team"], condition=Q(team__isnull=False), name="prompt_pin_team"
            ),
            models.UniqueConstraint(
                fields=["prompt", "api_key"],
                condition=Q(api_key__isnull=False),
                name="prompt_pin_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prompt.name} pinned to v{self.version.number}"
