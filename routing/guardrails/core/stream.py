"""Guardrails on a streamed answer: OpenAI-format SSE events in, filtered events out.

Trade-off (docs/guardrails.md): *hold back a window*. The text of each choice is released to
the client only once `window_chars` more characters have arrived after it, so an output rule's
term (or a PII value) split across chunks is seen whole before any of it is sent; if a blocking
rule matches, the stream is cut there and the client gets an error event instead. The cost is
that the client sees text about `window_chars` characters (~15 tokens by default) later than
the provider sent it; buffering the whole answer would cost its entire duration instead.
With only placeholder restoring on, just a possible partial placeholder at the end is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from routing.guardrails.core.checks import JSON, Refusal, output_refusal, rule_findings
from routing.guardrails.core.masking import Masker, held_back
from routing.guardrails.core.pii import PiiScanner
from routing.guardrails.core.policy import Policy


class OutputBlocked(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass
class _Choice:
    index: int
    pending: str = ""  # received, not yet released
    released: int = 0  # characters of the provider's text released so far
    audited: list[str] = field(default_factory=list)  # released text, PII masked


def _data(event: bytes) -> bytes | None:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


class StreamFilter:
    def __init__(
        self, policy: Policy, masker: Masker, scanner: PiiScanner | None, *, restore: bool
    ) -> None:
        self.policy = policy
        self.masker = masker
        self.restore = restore
        self.scanner = scanner if policy.pii_in_responses and policy.pii else None
        self.window = policy.window_chars if (policy.output_rules or self.scanner) else 0
        self.choices: dict[int, _Choice] = {}
        self.findings: list[JSON] = []
        self._template: JSON = {}

    def audited_text(self, index: int = 0) -> str:
        choice = self.choices.get(index)
        return "".join(choice.audited) if choice else ""

    def feed(self, event: bytes) -> list[bytes]:
        """Events to send for one upstream event; raises OutputBlocked to cut the stream."""
        data = _data(event)
        if data is None:
            return [event]
        if data == b"[DONE]":
            return [*self.flush(), event]
        chunk = orjson.loads(data)
        out: list[bytes] = []
        changed = ending = False
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            index = int(choice.get("index", 0))
            state = self.choices.setdefault(index, _Choice(index))
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._template = chunk
                state.pending += text
                delta["content"] = ""
                changed = True
            final = bool(choice.get("finish_reason") or delta.get("tool_calls"))
            ending = ending or final
            out += self._release(state, final=final)
        if not changed:
            return [*out, event]
        if not _still_says_something(chunk):
            return out
        # Text released at the end goes before the finish; a role announcement before the text.
        return [*out, _event(chunk)] if ending else [_event(chunk), *out]

    def flush(self) -> list[bytes]:
        out: list[bytes] = []
        for state in self.choices.values():
            out += self._release(state, final=True)
        return out

    def _release(self, state: _Choice, *, final: bool) -> list[bytes]:
        text = state.pending
        if not text:
            return []
        hold = max(self.window, held_back(text) if self.restore else 0)
        cut = len(text) if final else len(text) - hold
        if cut <= 0:
            return []
        spans = []
        if self.scanner is not None:
            found = self.scanner.find(
                text,
                list(self.policy.pii),
                min_score=self.policy.pii_min_score,
                custom=self.policy.recognizers,
            )
            for span in found:
                if span.start < cut < span.end:
                    cut = span.start  # never release half a value
            spans = [s for s in found if s.end <= cut]
            if cut <= 0:
                return []
        where = f"choices[{state.index}].delta.content"
        for finding in rule_findings(
            self.policy.output_rules, text, where=where, offset=state.released
        ):
            if finding["action"] == "block":
                self.findings.append(finding)
                raise OutputBlocked(output_refusal(finding))
            if finding["start"] < state.released + cut:
                self.findings.append(finding)
        segment = text[:cut]
        masked, names = self.masker.mask(segment, spans, restorable=False)
        self.findings += [
            {
                "stage": "response",
                "check": "pii",
                "type": span.entity,
                "action": "mask",
                "policy": self.policy.pii[span.entity].policy,
                "where": where,
                "start": span.start + state.released,
                "end": span.end + state.released,
                "placeholder": name,
            }
            for span, name in zip(spans, names, strict=True)
        ]
        state.pending = text[cut:]
        state.released += cut
        state.audited.append(masked)
        client = self.masker.restore_text(masked) if self.restore else masked
        return [self._content_event(state.index, client)]

    def _content_event(self, index: int, text: str) -> bytes:
        base = self._template
        chunk: dict[str, Any] = {
            key: base[key]
            for key in ("id", "object", "created", "model", "system_fingerprint")
            if key in base
        }
        chunk["choices"] = [{"index": index, "delta": {"content": text}, "finish_reason": None}]
        if "usage" in base:
            chunk["usage"] = None
        return _event(chunk)


def _still_says_something(chunk: JSON) -> bool:
    if chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if choice.get("finish_reason") or any(
            value not in (None, "") for key, value in delta.items() if key != "content"
        ):
            return True
    return False


def _event(chunk: JSON) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
