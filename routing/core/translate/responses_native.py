"""A Responses API answer from a deployment that speaks the Responses API itself -> the internal
chat form the gateway governs with (guardrails, cost, the audit record, the cache).

The client gets the provider's own answer (`routing/wire.py` only rewrites the fields the
gateway governs: the response id, `store`, `previous_response_id`, `conversation`); this form is
what the gateway reads it through. Provider-run tool calls (`web_search_call`,
`file_search_call`, `code_interpreter_call`, ...) have no chat equivalent: they travel beside the
message as `hosted_tool_calls`, a short summary each, so the record names the tools used.
"""

from __future__ import annotations

import re
from typing import Any

from routing.core.stream_tap import HOSTED_CALLS_KEY
from routing.core.types import JSON, usage_count, usage_details

# Events that carry the whole response object, and those that end a stream.
RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete"})
FAILED_EVENTS = frozenset({"response.failed", "error"})
_CLIENT_CALLS = frozenset({"function_call", "custom_tool_call"})
# What a summary of a provider-run call keeps (never its results: search pages, images, files).
_SUMMARY_KEYS = ("type", "id", "status", "action", "queries", "server_label", "name")


def hosted_call_summary(item: JSON) -> JSON:
    summary = {key: item[key] for key in _SUMMARY_KEYS if item.get(key) is not None}
    action = summary.get("action")
    if isinstance(action, dict):  # a search's query and sources' URLs, not page contents
        summary["action"] = {k: v for k, v in action.items() if k in ("type", "query", "url")}
    return summary


def is_hosted_call(item: Any) -> bool:
    kind = item.get("type") if isinstance(item, dict) else None
    return isinstance(kind, str) and kind.endswith("_call") and kind not in _CLIENT_CALLS


def hosted_tool_type(call: JSON) -> str:
    """The tool a provider-run call used, as a request names it: `web_search_call` → `web_search`
    (what a deployment's price per tool call is keyed by)."""
    return str(call.get("type") or "").removesuffix("_call")


_DATED = re.compile(r"_\d{4}(?:_?\d{2}){2}$")  # web_search_2025_08_26, web_search_20250305
# Declared tools whose calls carry another name (`computer_use_preview` runs `computer_call`s).
_CALLED = {"computer_use": "computer"}


def hosted_tool_price_key(kind: str) -> str:
    """The name a declared hosted tool's calls are priced under, as `hosted_tool_type` gives it
    for its calls: `web_search_preview_2025_03_11` → `web_search`. What a reservation counts
    must be what the answer is charged."""
    base = _DATED.sub("", kind).removesuffix("_preview")
    return _CALLED.get(base, base)


def hosted_tool_calls(chat: JSON | None) -> list[JSON]:
    """The provider-run tool calls an internal-form answer carries (none for most)."""
    for choice in (chat or {}).get("choices") or ():
        message = (choice or {}).get("message") or {}
        calls = message.get(HOSTED_CALLS_KEY)
        if calls:
            return list(calls)
    return []


def chat_usage(usage: Any) -> JSON:
    """Responses usage -> chat usage (what cost and limits are settled from)."""
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage_count(usage.get("input_tokens"), "input_tokens")
    completion = usage_count(usage.get("output_tokens"), "output_tokens")
    cached = usage_count(
        usage_details(usage, "input_tokens_details").get("cached_tokens"), "cached_tokens"
    )
    reasoning = usage_count(
        usage_details(usage, "output_tokens_details").get("reasoning_tokens"), "reasoning_tokens"
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _finish_reason(response: JSON, tool_calls: list[JSON]) -> str:
    if tool_calls:
        return "tool_calls"
    reason = (response.get("incomplete_details") or {}).get("reason")
    if response.get("status") == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return "stop"


def _client_call(item: JSON) -> JSON:
    if item.get("type") == "custom_tool_call":
        return {
            "id": item.get("call_id") or "",
            "type": "custom",
            "custom": {"name": item.get("name") or "", "input": item.get("input") or ""},
        }
    return {
        "id": item.get("call_id") or "",
        "type": "function",
        "function": {"name": item.get("name") or "", "arguments": item.get("arguments") or ""},
    }


def _texts(item: JSON) -> tuple[str, str]:
    text, refusal = "", ""
    for part in item.get("content") or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "output_text":
            text += str(part.get("text") or "")
        elif part.get("type") == "refusal":
            refusal += str(part.get("refusal") or "")
    return text, refusal


def responses_to_chat(response: JSON) -> JSON:
    """A whole Responses API response -> a chat completion (the internal form)."""
    text, refusal = "", ""
    tool_calls: list[JSON] = []
    hosted: list[JSON] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            more_text, more_refusal = _texts(item)
            text, refusal = text + more_text, refusal + more_refusal
        elif item.get("type") in _CLIENT_CALLS:
            tool_calls.append(_client_call(item))
        elif is_hosted_call(item):
            hosted.append(hosted_call_summary(item))
    message: JSON = {"role": "assistant", "content": text or None, "refusal": refusal or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if hosted:
        message[HOSTED_CALLS_KEY] = hosted
    return {
        "id": str(response.get("id") or ""),
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": str(response.get("model") or ""),
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(response, tool_calls)}
        ],
        "usage": chat_usage(response.get("usage")),
    }


_HOSTED_EVENTS = ("response.output_item.added", "response.output_item.done")


class ResponsesToChatStream:
    """Responses streaming events -> chat chunks, as they come: what the stream tap reads, and
    what the client gets when a response guardrail must read the answer as it streams."""

    def __init__(self) -> None:
        self.base: JSON = {"id": "", "object": "chat.completion.chunk", "created": 0, "model": ""}
        self.tools: dict[int, int] = {}  # output_index -> chat tool call index
        # Provider-run tool calls, summarized: each from when it starts (a stream cut while it
        # runs still pays for it), as it finished once it has.
        self.hosted: list[JSON] = []
        self._hosted_at: dict[int, int] = {}  # output_index -> its place in `hosted`
        self.done = False
        self._started = False

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        if not self._started:
            delta = {"role": "assistant", **delta}
            self._started = True
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        if kind in RESPONSE_EVENTS and isinstance(event.get("response"), dict):
            response = event["response"]
            self.base["id"] = self.base["id"] or str(response.get("id") or "")
            self.base["model"] = self.base["model"] or str(response.get("model") or "")
            self.base["created"] = self.base["created"] or int(response.get("created_at") or 0)
        if kind in _HOSTED_EVENTS and is_hosted_call(event.get("item")):
            summary = hosted_call_summary(event["item"])
            at = self._hosted_at.get(output := int(event.get("output_index") or 0))
            if at is None:
                self._hosted_at[output] = len(self.hosted)
                self.hosted.append(summary)
            else:
                self.hosted[at] = summary
        if kind == "response.output_text.delta":
            return [self._chunk({"content": str(event.get("delta") or "")})]
        if kind == "response.output_item.added":
            return self._item_added(event)
        if kind == "response.function_call_arguments.delta":
            return self._tool_delta(event, {"function": {"arguments": event.get("delta") or ""}})
        if kind == "response.custom_tool_call_input.delta":
            return self._tool_delta(event, {"custom": {"input": event.get("delta") or ""}})
        if kind in FINAL_EVENTS:
            return self._finish(event.get("response") or {})
        return []

    def _item_added(self, event: JSON) -> list[JSON]:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") not in _CLIENT_CALLS:
            return []
        index = len(self.tools)
        self.tools[int(event.get("output_index") or 0)] = index
        call = _client_call({**item, "arguments": "", "input": ""})
        return [self._chunk({"tool_calls": [{"index": index, **call}]})]

    def _tool_delta(self, event: JSON, delta: JSON) -> list[JSON]:
        index = self.tools.get(int(event.get("output_index") or 0))
        if index is None:
            return []
        return [self._chunk({"tool_calls": [{"index": index, **delta}]})]

    def _finish(self, response: JSON) -> list[JSON]:
        self.done = True
        calls: list[JSON] = [{}] * len(self.tools)  # only their number decides the finish
        finish = self._chunk({}, _finish_reason(response, calls))
        usage = {**self.base, "choices": [], "usage": chat_usage(response.get("usage"))}
        return [finish, usage]
