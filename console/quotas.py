"""The slot for a key's remaining limits and budget.

The rate-limit and budget engine lives in its own app; until it is installed no limit applies,
and the console says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenants.models import ApiKey


@dataclass(frozen=True, slots=True)
class KeyLimits:
    configured: bool
    lines: tuple[str, ...] = ()


def limits_for_key(key: ApiKey) -> KeyLimits:
    return KeyLimits(configured=False)
