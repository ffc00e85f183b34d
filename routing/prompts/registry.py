"""The prompt registry as the proxy sees it: every tenant's prompts, compiled, cached per worker.

Loaded whole and refreshed in the background when older than GATEWAY_ROUTES_CACHE_SECONDS (the
same freshness as the routing table), so a request never waits on the ORM once warm and a label
move reaches every worker within that interval.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from gateway_site.snapshot import Snapshot
from routing.prompts.models import PromptLabel, PromptPin, PromptVersion
from routing.prompts.render import CompiledMessage, compile_messages


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    number: int
    messages: tuple[CompiledMessage, ...]
    parameters: dict[str, Any]
    model: str


@dataclass(frozen=True, slots=True)
class LabelTarget:
    version: int
    canary_version: int | None = None
    canary_percent: int = 0


@dataclass(frozen=True, slots=True)
class PromptEntry:
    name: str
    versions: dict[int, CompiledVersion]
    labels: dict[str, LabelTarget]


@dataclass(frozen=True, slots=True)
class PromptTable:
    prompts: dict[tuple[int, str], PromptEntry]  # (tenant id, prompt name)
    key_pins: dict[tuple[int, str], int]  # (key id, prompt name) → version
    team_pins: dict[tuple[int, str], int]  # (team id, prompt name) → version


_shared_rng = random.Random()  # noqa: S311 - traffic split, not security


def _stable_fraction(key: str) -> float:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_version(label: LabelTarget, *, sticky_key: str, end_user: str) -> int:
    """The label's version, or its canary for `canary_percent` of traffic (sticky per end user)."""
    if label.canary_version is None or label.canary_percent <= 0:
        return label.version
    point = _stable_fraction(f"{sticky_key}\0{end_user}") if end_user else _shared_rng.random()
    return label.canary_version if point * 100 < label.canary_percent else label.version


def load_prompt_table() -> PromptTable:
    entries: dict[int, PromptEntry] = {}
    prompts: dict[tuple[int, str], PromptEntry] = {}
    for version in PromptVersion.objects.select_related("prompt").order_by("prompt_id", "number"):
        entry = entries.get(version.prompt_id)
        if entry is None:
            prompt = version.prompt
            entry = entries[version.prompt_id] = PromptEntry(prompt.name, {}, {})
            prompts[(prompt.tenant_id, prompt.name)] = entry
        entry.versions[version.number] = CompiledVersion(
            number=version.number,
            messages=compile_messages(version.messages),
            parameters=dict(version.parameters),
            model=version.model,
        )
    for label in PromptLabel.objects.select_related("version", "canary_version"):
        canary = label.canary_version
        entries[label.prompt_id].labels[label.name] = LabelTarget(
            version=label.version.number,
            canary_version=canary.number if canary else None,
            canary_percent=label.canary_percent if canary else 0,
        )
    key_pins: dict[tuple[int, str], int] = {}
    team_pins: dict[tuple[int, str], int] = {}
    for pin in PromptPin.objects.select_related("prompt", "version"):
        if pin.api_key_id is not None:
            key_pins[(pin.api_key_id, pin.prompt.name)] = pin.version.number
        elif pin.team_id is not None:
            team_pins[(pin.team_id, pin.prompt.name)] = pin.version.number
    return PromptTable(prompts=prompts, key_pins=key_pins, team_pins=team_pins)


def prompt_snapshot() -> Snapshot[PromptTable]:
    """A worker's view of the registry (its runtime holds one: routing/runtime.py)."""
    return Snapshot(load_prompt_table, name="prompt registry")
