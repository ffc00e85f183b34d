"""What a tenant keeps of prompts and responses: full, masked, or metadata only (hashes).

Applied by the audit writer on its own thread, before the record is written, so what a tenant
chose not to keep never reaches the database. The tenant's mode is cached per writer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Iterable
from typing import Any

import orjson

from audit.entries import AuditEntry
from audit.models import AuditPolicy, ContentMode

_PATTERNS = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), "[iban]"),
    (re.compile(r"(?<![\w.])\+?\d[\d ().-]{7,}\d(?![\w.])"), "[number]"),
)
_FIELDS = ("request_body", "response_body", "tool_calls", "tool_results")


def mask_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def _digest(value: Any) -> Any:
    if value is None or value == []:
        return value
    summary = {
        "content_mode": ContentMode.METADATA.value,
        "sha256": hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest(),
    }
    return [summary] if isinstance(value, list) else summary


def apply_content_mode(entry: AuditEntry, mode: str) -> AuditEntry:
    """The entry as the tenant's mode keeps it (a copy: a retried batch must not apply it twice)."""
    if mode == ContentMode.FULL:
        return entry
    change = _masked if mode == ContentMode.MASKED else _digest
    return dataclasses.replace(entry, **{name: change(getattr(entry, name)) for name in _FIELDS})


class ContentModes:
    """Per-writer cache of each tenant's content mode; a policy change applies within `ttl` s."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._modes: dict[int, tuple[str, float]] = {}

    def cached(self, tenant_ids: Iterable[int]) -> dict[int, str] | None:
        """The modes if every one is cached and fresh, else None (`modes` reads the database)."""
        now = time.monotonic()
        found: dict[int, str] = {}
        for tenant_id in tenant_ids:
            cached = self._modes.get(tenant_id)
            if cached is None or cached[1] < now:
                return None
            found[tenant_id] = cached[0]
        return found

    def modes(self, tenant_ids: Iterable[int]) -> dict[int, str]:
        now = time.monotonic()
        wanted = set(tenant_ids)
        stale = {t for t in wanted if (cached := self._modes.get(t)) is None or cached[1] < now}
        if stale:
            found = dict(
                AuditPolicy.objects.filter(tenant_id__in=stale).values_list(
                    "tenant_id", "content_mode"
                )
            )
            for tenant_id in stale:
                self._modes[tenant_id] = (found.get(tenant_id, ContentMode.FULL), now + self.ttl)
        return {t: self._modes[t][0] for t in wanted}
