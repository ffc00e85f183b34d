"""The one way a change is written to the admin activity log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from audit.activity.models import ActivityEvent


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: a signed-in user, an admin key, the declarative config or the system."""

    kind: str
    label: str
    user_id: int | None = None

    @classmethod
    def user(cls, user: Any) -> Actor:
        return cls("user", str(user.get_username()), user.pk)

    @classmethod
    def admin_key(cls, label: str) -> Actor:
        return cls("admin_key", label)


CONFIG = Actor("config", "declarative config")
SYSTEM = Actor("system", "system")


def activity_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    tenant_id: int | None,
    details: dict[str, Any] | None = None,
) -> ActivityEvent:
    return ActivityEvent.objects.create(
        tenant_id=tenant_id,
        actor_kind=actor.kind,
        actor_user_id=actor.user_id,
        actor_label=actor.label[:200],
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk or ""),
        target_label=str(target)[:200],
        details=details or {},
    )
