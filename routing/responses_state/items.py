"""Responses API items as they are kept: a turn's input with ids, and content by privacy mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audit.content import mask_text
from audit.models import ContentMode
from routing.core.types import JSON

# What stands in for text a metadata-only tenant does not keep.
NOT_KEPT = "[not kept: the tenant keeps metadata only]"
# Keys whose string values name things rather than carry conversation text.
_STRUCTURAL = frozenset(
    {"type", "id", "call_id", "name", "role", "status", "namespace", "execution", "detail"}
)


def turn_input(raw_input: Any, response_id: str) -> list[JSON] | None:
    """A request's `input` as items, each with an id (as `input_items` lists them); None when
    it is neither a string nor a list (the translation refuses it, naming the field)."""
    if isinstance(raw_input, str):
        raw_input = [{"type": "message", "role": "user", "content": raw_input}]
    if not isinstance(raw_input, list):
        return None
    hex_id = response_id.removeprefix("resp_")
    items: list[JSON] = []
    for n, item in enumerate(raw_input):
        if not isinstance(item, dict):
            items.append(item)  # refused by the translation, with its index
            continue
        item = dict(item)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            item["type"] = "message"
            if isinstance(item.get("content"), str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": part, "text": item["content"]}]
        prefix = "msg" if kind == "message" else "item"
        item.setdefault("id", f"{prefix}_{hex_id}_in{n}")
        items.append(item)
    return items


def _kept(value: Any, change: Callable[[str], str], key: str = "") -> Any:
    if isinstance(value, str):
        return value if key in _STRUCTURAL else change(value)
    if isinstance(value, list):
        return [_kept(item, change, key) for item in value]
    if isinstance(value, dict):
        return {k: _kept(item, change, k) for k, item in value.items()}
    return value


def items_as_kept(*, mode: str, items: list[JSON]) -> list[JSON]:
    """Conversation items as the tenant's audit content mode keeps them (see `as_kept`)."""
    if mode == ContentMode.FULL:
        return items
    change = mask_text if mode == ContentMode.MASKED else (lambda _: NOT_KEPT)
    return list(_kept(items, change))


def strictest(*modes: str) -> str:
    """The mode that keeps the least of `modes` (full < masked < metadata)."""
    order: list[str] = [ContentMode.FULL, ContentMode.MASKED, ContentMode.METADATA]
    return str(max(modes, key=lambda m: order.index(m) if m in order else len(order)))


def as_kept(*, mode: str, items: list[JSON], response: JSON) -> tuple[list[JSON], JSON]:
    """Input items and response as the tenant's audit content mode keeps them: whole (full),
    with emails and numbers masked (masked), or with every text replaced (metadata)."""
    if mode == ContentMode.FULL:
        return items, response
    change = mask_text if mode == ContentMode.MASKED else (lambda _: NOT_KEPT)
    kept = dict(response)
    for field in ("output", "instructions"):
        if kept.get(field) is not None:
            kept[field] = _kept(kept[field], change, field)
    return _kept(items, change), kept
