"""Placeholders for PII within one request, and putting the originals back.

The same value gets the same placeholder everywhere in the request (`<EMAIL_1>` in the system
prompt and in the third user turn), so the model can still reason about who is who. The map
lives only as long as the request's `Masker`; it is never stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from routing.guardrails.core.pii import Span

# Short names for the placeholders the model sees.
LABELS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
}
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
# A tail that could still become a placeholder once the next chunk arrives.
PARTIAL_PLACEHOLDER = re.compile(r"<(?:[A-Z][A-Z0-9_]*(?:_\d*)?)?$")
_SEPARATORS = re.compile(r"[\s\-.()]")


def _identity(entity: str, value: str) -> tuple[str, str]:
    # "4539 1488 0343 6467" and "4539-1488-0343-6467" are the same card.
    if entity == "EMAIL_ADDRESS":
        return entity, value.lower()
    return entity, _SEPARATORS.sub("", value)


class Masker:
    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        # Only what the caller sent comes back: PII the model wrote itself stays masked.
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, entity: str, value: str, *, restorable: bool = True) -> str:
        key = _identity(entity, value)
        found = self._placeholders.get(key)
        if found is None:
            label = LABELS.get(entity, entity)
            self._counts[label] = self._counts.get(label, 0) + 1
            found = f"<{label}_{self._counts[label]}>"
            self._placeholders[key] = found
            if restorable:
                self._originals[found] = value
        return found

    def mask(
        self, text: str, spans: Sequence[Span], *, restorable: bool = True
    ) -> tuple[str, list[str]]:
        """`text` with `spans` (sorted, disjoint) replaced; and the placeholder of each span."""
        out: list[str] = []
        used: list[str] = []
        at = 0
        for span in spans:
            name = self.placeholder(span.entity, text[span.start : span.end], restorable=restorable)
            out += (text[at : span.start], name)
            used.append(name)
            at = span.end
        out.append(text[at:])
        return "".join(out), used

    @property
    def restores(self) -> bool:
        return bool(self._originals)

    def restore_text(self, text: str) -> str:
        if not self._originals or "<" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._originals.get(m.group(0), m.group(0)), text)

    def restore_json(self, body: bytes) -> bytes:
        """Placeholders in a JSON document replaced by their (JSON-escaped) originals."""
        if not self._originals:
            return body
        if b"\\u003c" in body or b"\\u003C" in body:
            # Some servers escape '<': go through the parsed document instead.
            return orjson.dumps(_restore_tree(orjson.loads(body), self))
        return PLACEHOLDER.sub(lambda m: self._escaped(m.group(0)), body.decode("utf-8")).encode(
            "utf-8"
        )

    def _escaped(self, name: str) -> str:
        original = self._originals.get(name)
        return name if original is None else orjson.dumps(original).decode()[1:-1]


def _restore_tree(node: object, masker: Masker) -> object:
    if isinstance(node, str):
        return masker.restore_text(node)
    if isinstance(node, list):
        return [_restore_tree(item, masker) for item in node]
    if isinstance(node, dict):
        return {key: _restore_tree(value, masker) for key, value in node.items()}
    return node


def held_back(text: str) -> int:
    """How many trailing characters of a stream's text could be the start of a placeholder."""
    at = text.rfind("<", max(0, len(text) - 48))
    if at < 0:
        return 0
    return len(text) - at if PARTIAL_PLACEHOLDER.fullmatch(text, at) else 0
