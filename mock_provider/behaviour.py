"""Deterministic behaviour of the mock provider: what it answers, and how it counts.

Everything here is a pure function of the request, so tests can predict the answer.

Token counting
    A token is a whitespace-separated word. Prompt tokens = the words of every text the
    request carries: the system prompt (OpenAI system/developer messages, Anthropic
    `system`), the text parts of every message, and tool result contents (OpenAI `tool`
    messages, Anthropic `tool_result` blocks). Tool definitions, tool-call arguments and
    images count 0, and there is no per-message overhead. Embedding inputs count their
    words (or the length of a token array).
    Completion tokens = the words of the generated text; for a tool call,
    ceil(len(arguments JSON) / 4).

Text reply
    "Mock reply to: <first 12 words of the last user message text>" (a model named in the
    config's `echo_words` echoes that many words instead: mock-gpt-mini echoes 4), or, when the last
    message is a tool result, "Tool result received: <first 12 words of it>" (all
    tool_result blocks of that turn, joined). "The last user message" is the last
    user-role message with non-empty text, so an Anthropic user turn that only carries
    tool_result blocks does not hide the prompt before it. The words are re-joined with
    single spaces; with no user text the reply is just "Mock reply to:".
    Structured output (OpenAI `response_format` json_schema / json_object, Anthropic
    `output_config.format` or `output_format` json_schema): the text answer is instead the
    JSON of a value valid against the schema (`mock_provider.structured`), or
    {"reply": <the text above>} in plain JSON mode, serialized by `json.dumps`.
    `max_tokens` / `max_completion_tokens` keep only that many words (the prefix
    included) and end with finish_reason "length" / stop_reason "max_tokens". A tool
    call is never truncated.

Tool call
    Made when the request offers tools, tool_choice is not "none" and the last message
    is not a tool result. The tool named by tool_choice is called, else the first one.
    A freeform (`custom`) tool is called with the text FREEFORM_INPUT.
    Scripted tools (the config's `tool_script`, name -> input): unless tool_choice names a
    tool, the first offered tool the script names is called, with the script's input (an
    object: the JSON arguments; a string: a freeform tool's text, or `{"input": <text>}` for a
    tool that takes JSON). So a coding agent's first answer can be a real command, and once
    its result comes back the answer is text: a two-step tool task.
    Arguments hold the schema's `required` properties (in that order), or all
    `properties` when nothing is required: string -> "mock" (or the first `enum` value),
    integer -> 1, number -> 1.5, boolean -> true, array -> [], object -> {}, null -> null.
    They are serialized as `json.dumps(args, ensure_ascii=False, separators=(", ", ": "))`
    - spaces included, so a proxy that re-serializes the JSON is caught by a byte
    comparison. The call id is `call_<16 hex>` / `toolu_<16 hex>`, the first 16 hex digits
    of sha256(raw request body).

Embeddings
    Each input text gives a unit-length float32 vector of `dimensions` (default 16)
    values drawn from shake_256(text); base64 encoding is the little-endian float32 bytes.

Fault controls (implemented in `mock_provider.controls`)
    Resolved per request, first match wins: `x-mock-*` request headers, then a
    `[mock key=value ...]` directive in the last user message text (for embeddings: the
    last input), then the
    runtime config (`POST /_mock/config`), then the startup config. A status given in
    a header or directive fails that request; a status from the config fails the
    fraction `fail_rate` of requests, counted deterministically: request i (0-based,
    counting only requests where a config status is in force) fails when
    floor((i+1)*rate) > floor(i*rate), so 0.5 fails every second request (the counter
    restarts whenever the runtime config is replaced). A status below 400 injects nothing.

    Headers: x-mock-status, x-mock-retry-after, x-mock-latency-ms, x-mock-ttft-ms,
    x-mock-chunk-delay-ms, x-mock-break-after-chunks, x-mock-fault, x-mock-stall-ms. Directive
    keys: status, retry_after, latency_ms, ttft_ms, chunk_delay_ms, break_after_chunks, fault,
    stall_ms, e.g.
    "[mock status=500]" or "[mock break_after_chunks=3 chunk_delay_ms=50]"; an unknown
    key or a bad value is answered with a 400. `fail_marker` and `fail_rate` come from
    the config only.

    - fail_marker: any counted text (or embedding input) containing it gets a 500.
    - latency_ms: slept before a non-streamed answer, injected errors included, and
      before the first stream event unless ttft_ms is set; chunk_delay_ms between events.
    - break_after_chunks=N: the stream stops after N SSE events (Anthropic's ping
      counts) and the connection is dropped without the chunked-encoding terminator, so
      clients see an incomplete body, never a clean end.
    - retry_after: sent as `Retry-After` (seconds) and `retry-after-ms` on injected errors.
    - fault_rate / faults / stall_ms: mixed faults (429, 5xx, TCP reset, stall, before or
      after the start of the answer) on an evenly spread fraction of requests, one kind after
      the other; `x-mock-fault` / `fault=` forces one. See `mock_provider.faults`.

Request log
    Every request outside `/_mock/*` and `/health` is appended to a log of the last
    `log_limit` (2000) entries: {"method", "path", "headers" (only authorization,
    x-api-key, anthropic-version, anthropic-beta, content-type, when present), "body"
    (parsed JSON, None if absent or unparsable), "status"}. `GET /_mock/requests`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_provider.structured import schema_instance

ECHO_WORDS = 12


class BadRequest(ValueError):
    """The request cannot be served; answered with a 400 in the endpoint's wire format."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: Mapping[str, Any]
    freeform: bool = False  # an OpenAI chat `custom` tool: its input is text, not JSON


@dataclass(slots=True)
class Prompt:
    """What a chat request says, normalized from either wire format."""

    texts: list[str]  # every counted text: system, message text, tool results
    last_user_text: str
    tool_result_text: str | None  # set only when the last message is a tool result
    tool: ToolSpec | None  # the tool to call, already chosen from tools + tool_choice
    max_tokens: int | None
    offered: tuple[ToolSpec, ...] = ()  # the tools a call may go to (none when disabled)
    forced: bool = False  # tool_choice named the tool
    # The JSON Schema a text answer must follow ({} for plain JSON mode); None for free text.
    json_schema: Mapping[str, Any] | None = None
    # Responses API hosted tools offered (web_search, ...): the mock runs each one.
    hosted_tools: tuple[str, ...] = ()

    def prompt_tokens(self) -> int:
        return sum(len(text.split()) for text in self.texts)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str | None
    tool_name: str | None
    arguments: str | None  # serialized JSON, exactly what goes on the wire
    tool_input: dict[str, Any] | None
    prompt_tokens: int
    completion_tokens: int
    truncated: bool
    freeform: bool = False  # `arguments` is a freeform tool's text


# What a freeform tool is called with: an empty patch in Codex's apply_patch envelope.
FREEFORM_INPUT = "*** Begin Patch\n*** End Patch\n"


def pick_tool(tools: list[ToolSpec], forced_name: str | None, enabled: bool) -> ToolSpec | None:
    """The tool to call: the one tool_choice names, else the first; None if disabled."""
    if not tools or not enabled:
        return None
    if forced_name is None:
        return tools[0]
    for tool in tools:
        if tool.name == forced_name:
            return tool
    return ToolSpec(forced_name, {})


def _value_for(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return "mock"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        # ["string", "null"] style: the first non-null type is the interesting one.
        kind = next((k for k in kind if k != "null"), "null")
    if not isinstance(kind, str):
        return "mock"
    return {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "object": {},
        "null": None,
    }.get(kind, "mock")


def tool_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        properties = {}
    required = schema.get("required")
    names = required if isinstance(required, list) and required else list(properties)
    return {str(name): _value_for(properties.get(name)) for name in names}


def serialize_arguments(args: Mapping[str, Any]) -> str:
    return json.dumps(args, ensure_ascii=False, separators=(", ", ": "))


def tool_call_id(prefix: str, body: bytes) -> str:
    return prefix + hashlib.sha256(body).hexdigest()[:16]


def _scripted(
    prompt: Prompt, script: Mapping[str, Any]
) -> tuple[ToolSpec, dict[str, Any], str] | None:
    """The first offered tool `script` names: the tool, its JSON input, what goes on the wire."""
    if prompt.forced:
        return None
    for tool in prompt.offered:
        if tool.name not in script:
            continue
        given = script[tool.name]
        if tool.freeform:
            text = given if isinstance(given, str) else serialize_arguments(given)
            return tool, {}, text
        args = {"input": given} if isinstance(given, str) else dict(given)
        return tool, args, serialize_arguments(args)
    return None


def plan_reply(
    prompt: Prompt, echo_words: int = ECHO_WORDS, script: Mapping[str, Any] | None = None
) -> Reply:
    """Decide the assistant turn for a normalized prompt (`script`: the config's tool_script)."""
    prompt_tokens = prompt.prompt_tokens()
    if prompt.tool is not None and prompt.tool_result_text is None:
        tool = prompt.tool
        args = tool_arguments(tool.schema)
        arguments = FREEFORM_INPUT if tool.freeform else serialize_arguments(args)
        if script and (scripted := _scripted(prompt, script)) is not None:
            tool, args, arguments = scripted
        return Reply(
            text=None,
            tool_name=tool.name,
            arguments=arguments,
            tool_input=args,
            prompt_tokens=prompt_tokens,
            completion_tokens=math.ceil(len(arguments) / 4),
            truncated=False,
            freeform=tool.freeform,
        )
    if prompt.tool_result_text is not None:
        words = ["Tool", "result", "received:", *prompt.tool_result_text.split()[:echo_words]]
    else:
        words = ["Mock", "reply", "to:", *prompt.last_user_text.split()[:echo_words]]
    if prompt.json_schema is not None:
        schema = prompt.json_schema
        text = json.dumps(schema_instance(schema) if schema else {"reply": " ".join(words)})
        words = text.split(" ")
    truncated = prompt.max_tokens is not None and len(words) > prompt.max_tokens
    if truncated:
        words = words[: prompt.max_tokens]
    return Reply(
        text=" ".join(words),
        tool_name=None,
        arguments=None,
        tool_input=None,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(words),
        truncated=truncated,
    )


def word_pieces(text: str) -> list[str]:
    """Stream deltas: one word each, later ones with their leading space."""
    if not text:
        return []
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def split_arguments(arguments: str) -> list[str]:
    """Two or three pieces whose concatenation is `arguments` (stream deltas)."""
    if len(arguments) < 3:
        return [arguments[:1], arguments[1:]]
    third = len(arguments) // 3
    return [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
