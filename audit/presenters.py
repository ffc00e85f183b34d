"""What the compliance pages show, shaped in Python so templates stay free of logic."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.http import QueryDict

from audit.export import answer_text, content_text, last_user_text
from audit.models import AuditRecord
from audit.storable import readable

_TONES = {"success": "ok", "in_progress": "warn", "rejected": "warn"}


@dataclass(frozen=True, slots=True)
class Row:
    record: AuditRecord
    prompt: str
    answer: str
    tone: str
    tool_names: list[str]


def readable_record(record: AuditRecord) -> AuditRecord:
    """The record as a page shows it: columns stored escaped read back to the original text,
    each character a page cannot carry (NUL, a lone surrogate) shown as `⟨U+0000⟩`.

    A copy for display only; the chain status is checked against the stored row.
    """
    if not record.stored_escaped:
        return record
    shown = copy.copy(record)
    for name in record.stored_escaped:
        if hasattr(shown, name):
            setattr(shown, name, readable(getattr(record, name), escaped=True))
    return shown


def _clip(text: str, length: int = 140) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def row(record: AuditRecord) -> Row:
    record = readable_record(record)
    return Row(
        record=record,
        prompt=_clip(last_user_text(record.request_body)),
        answer=_clip(answer_text(record.response_body) or _tool_summary(record.tool_calls)),
        tone=_TONES.get(record.status, "bad"),
        tool_names=_tool_names(record.tool_calls),
    )


def _tool_names(calls: Any) -> list[str]:
    names = []
    for call in calls or []:
        if isinstance(call, dict):
            function = call.get("function") or {}
            names.append(str(function.get("name") or call.get("name") or "tool"))
    return names


def _tool_summary(calls: Any) -> str:
    names = _tool_names(calls)
    return f"Calls {', '.join(names)}" if names else ""


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return str(value)
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""


@dataclass(frozen=True, slots=True)
class RecordView:
    conversation: list[Turn]
    answer: Turn | None
    tool_calls: list[ToolCall]
    tool_results: list[Turn]
    attempts: list[dict[str, Any]]
    client_context: list[tuple[str, str]]
    findings: list[str]
    request_json: str
    response_json: str
    total_tokens: int
    tone: str


def _calls(raw: Any) -> list[ToolCall]:
    calls = []
    for call in raw or []:
        if isinstance(call, dict):
            function = call.get("function") or {}
            arguments = function.get("arguments", call.get("input", ""))
            calls.append(
                ToolCall(
                    id=str(call.get("id", "")),
                    name=str(function.get("name") or call.get("name") or "tool"),
                    arguments=_pretty(arguments),
                )
            )
    return calls


def _turns(request_body: Any) -> list[Turn]:
    if not isinstance(request_body, dict):
        return []
    turns = []
    if system := request_body.get("system"):  # Anthropic-shaped requests
        turns.append(Turn("system", content_text(system) or str(system)))
    for message in request_body.get("messages") or []:
        if isinstance(message, dict):
            turns.append(
                Turn(
                    role=str(message.get("role", "")),
                    text=content_text(message.get("content")),
                    tool_calls=_calls(message.get("tool_calls")),
                    tool_call_id=str(message.get("tool_call_id", "")),
                )
            )
    return turns


def record_view(record: AuditRecord) -> RecordView:
    answer_calls = _calls(record.tool_calls)
    answer = answer_text(record.response_body)
    return RecordView(
        conversation=_turns(record.request_body),
        answer=Turn("assistant", answer, answer_calls) if answer or answer_calls else None,
        tool_calls=answer_calls,
        tool_results=[
            Turn(
                "tool",
                _pretty(content_text(r.get("content")) or r.get("content", "")),
                tool_call_id=str(r.get("tool_call_id", "")),
            )
            for r in record.tool_results or []
            if isinstance(r, dict)
        ],
        attempts=[a for a in record.attempts or [] if isinstance(a, dict)],
        client_context=[(str(k), str(v)) for k, v in (record.client_context or {}).items()],
        findings=[
            ", ".join(f"{k}: {v}" for k, v in finding.items())
            for finding in record.guardrail_findings or []
            if isinstance(finding, dict)
        ],
        request_json=_pretty(record.request_body) if record.request_body is not None else "",
        response_json=_pretty(record.response_body) if record.response_body is not None else "",
        total_tokens=record.prompt_tokens + record.completion_tokens,
        tone=_TONES.get(record.status, "bad"),
    )


def filter_query(params: QueryDict) -> str:
    """The current filters as a query string, without the page cursor (for exports)."""
    kept = params.copy()
    kept.pop("before", None)
    return kept.urlencode()


def next_page_query(params: QueryDict, cursor: tuple[datetime, int] | None) -> str:
    if cursor is None:
        return ""
    kept = params.copy()
    kept["before"] = f"{cursor[0].isoformat()}|{cursor[1]}"
    return kept.urlencode()
