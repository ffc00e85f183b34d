"""Prompt templates: strict `{{ name }}` substitution, and fingerprints of unmanaged prompts.

Pure Python, no Django: the proxy renders from templates compiled once when the registry loads.
Nothing in a template is ever evaluated; a value is inserted as text and never scanned again, so a
variable holding `{{ other }}` stays literally that.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TEMPLATE_ROLES = ("system", "developer", "user", "assistant")


class MissingVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class CompiledMessage:
    role: str
    # Literal text at even positions, variable names at odd ones (what `re.split` gives).
    parts: tuple[str, ...]

    def render(self, values: Mapping[str, str]) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                out.append(part)
            elif part in values:
                out.append(values[part])
            else:
                raise MissingVariable(part)
        return "".join(out)


def compile_messages(messages: Iterable[Mapping[str, Any]]) -> tuple[CompiledMessage, ...]:
    return tuple(
        CompiledMessage(str(m["role"]), tuple(VARIABLE.split(str(m["content"])))) for m in messages
    )


def template_variables(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The variable names a template uses, in order of first appearance."""
    seen: dict[str, None] = {}
    for message in messages:
        for name in VARIABLE.findall(str(message.get("content") or "")):
            seen.setdefault(name, None)
    return list(seen)


def render_messages(
    compiled: tuple[CompiledMessage, ...], values: Mapping[str, str]
) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.render(values)} for m in compiled]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def system_fingerprint(messages: Any) -> str:
    """A short stable id of a caller's own system prompt ("" when it sends none).

    Whitespace is collapsed first, so re-indenting a prompt does not look like a change, while any
    change of wording does.
    """
    if not isinstance(messages, list):
        return ""
    texts = [
        _text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]
    if not texts:
        return ""
    normalised = " ".join("\n".join(texts).split())
    if not normalised:
        return ""
    return "sp_" + hashlib.sha256(normalised.encode()).hexdigest()[:16]
