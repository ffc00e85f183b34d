from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.utils import timezone

from tenants.models import ApiKey

register = template.Library()


@dataclass(frozen=True, slots=True)
class KeyState:
    label: str
    tone: str  # ok | warn | bad


@register.filter
def key_state(key: ApiKey) -> KeyState:
    """What a key's owner needs to know at a glance, as the proxy would treat it now."""
    now = timezone.now()
    if key.revoked_at is not None:
        return KeyState(f"Revoked {key.revoked_at:%Y-%m-%d %H:%M}", "bad")
    if key.expires_at is not None and key.expires_at <= now:
        return KeyState(f"Expired {key.expires_at:%Y-%m-%d %H:%M}", "bad")
    if key.replaced_by_id is not None and key.expires_at is not None:
        return KeyState(f"Rotated: works until {key.expires_at:%Y-%m-%d %H:%M} UTC", "warn")
    if key.expires_at is not None:
        return KeyState(f"Active until {key.expires_at:%Y-%m-%d}", "ok")
    return KeyState("Active", "ok")
