"""What the management API shows of the activity log (audit/activity/api.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field

from gateway_site.api.schemas import BodyOut

# --- activity ----------------------------------------------------------------------------------


class ActivityOut(BodyOut):
    occurred_at: datetime
    tenant: str | None = Field(default=None, alias="tenant.slug")
    actor_kind: str = Field(description="user, admin_key, config or system")
    actor_label: str
    action: str = Field(description="Dotted, e.g. key.create")
    target_type: str
    target_id: str
    target_label: str
    details: dict[str, Any]
