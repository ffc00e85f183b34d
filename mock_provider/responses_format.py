"""OpenAI Responses API wire format (`POST /v1/responses`): request parsing, the response object
and its streaming events, as OpenAI sends them.

Besides the usual deterministic reply (mock_provider.behaviour), the mock runs the hosted tools a
request offers (`web_search`, `file_search`, `code_interpreter`, ...): each one offered gets a
completed `<type>_call` output item before the answer, so a proxy that forwards hosted tools can
be told from one that drops them. `include: ["reasoning.encrypted_content"]` adds a reasoning
item with an opaque `encrypted_content`, which only a Responses client can take back. The mock
keeps no state: `previous_response_id` is echoed, never looked up.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from mock_provider.behaviour import (
    BadRequest,
    Prompt,
    Reply,
    ToolSpec,
    pick_tool,
    split_arguments,
    word_pieces,
)

_CLIENT_TOOLS = frozenset({"function", "custom", "namespace"})
_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
ENCRYPTED_REASONING = "gAAAAB-mock-encrypted-reasoning"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _offered(body: dict[str, Any]) -> list[Any]:
    """`tools`, and those `additional_tools` input items add (Codex sends its tools that way)."""
    tools = list(body["tools"]) if isinstance(body.get("tools"), list) else []
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or item.get("type") != "additional_tools":
            continue
        added = item.get("tools")
        tools += added if isinstance(added, list) else []
    return tools


def _tools(body: dict[str, Any]) -> tuple[list[ToolSpec], list[str]]:
    """Client tools (functions and freeform tools, namespaces opened) and hosted tool types."""
    specs: list[ToolSpec] = []
    hosted: list[str] = []
    for tool in _offered(body):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise BadRequest("each tool must be an object with a 'type'")
        kind = tool["type"]
        members = tool.get("tools") if kind == "namespace" else [tool]
        if kind == "tool_search" and tool.get("execution", "client") == "client":
            continue  # the client searches its own tools: nothing for the mock to run
        if kind not in _CLIENT_TOOLS:
            hosted.append(kind)
            continue
        for member in members if isinstance(members, list) else ():
            name = member.get("name") if isinstance(member, dict) else None
            if not isinstance(name, str) or not name:
                raise BadRequest("a function or custom tool needs a 'name'")
            if member.get("type") == "custom":
                specs.append(ToolSpec(name, {}, freeform=True))
            else:
                params = member.get("parameters")
                specs.append(ToolSpec(name, params if isinstance(params, dict) else {}))
    return specs, hosted


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {}
    return None


def parse_responses(body: dict[str, Any]) -> Prompt:
    """The request as a prompt, with the hosted tool types it offers (the mock runs them)."""
    if not isinstance(body.get("model"), str):
        raise BadRequest("'model' must be a string")
    texts: list[str] = []
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
    items = body.get("input")
    last_user, tool_result = "", None
    if isinstance(items, str):
        texts.append(items)
        last_user = items
    elif isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                raise BadRequest("each input item must be an object")
            if item.get("type") in _OUTPUTS:
                output = _text(item.get("output"))
                texts.append(output)
                tool_result = output
                continue
            if item.get("type", "message") != "message":
                continue  # calls, reasoning, hosted calls: nothing to count
            text = _text(item.get("content"))
            texts.append(text)
            tool_result = None
            if item.get("role") == "user" and text:
                last_user = text
    else:
        raise BadRequest("'input' must be a string or a list of items")
    choice = body.get("tool_choice")
    forced = choice.get("name") if isinstance(choice, dict) else None
    limit = body.get("max_output_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise BadRequest("'max_output_tokens' must be an integer")
    specs, hosted = _tools(body)
    enabled = choice != "none"
    return Prompt(
        texts=texts,
        last_user_text=last_user,
        tool_result_text=tool_result,
        tool=pick_tool(specs, forced, enabled),
        offered=tuple(specs) if enabled else (),
        forced=forced is not None,
        json_schema=_schema(body),
        max_tokens=limit,
        hosted_tools=tuple(hosted) if enabled else (),
    )


def _hosted_item(kind: str, query: str) -> dict[str, Any]:
    item_id = "".join(word[0] for word in kind.split("_"))[:2] + "_" + secrets.token_hex(12)
    if kind.startswith("web_search"):
        action = {
            "type": "search",
            "query": query,
            "sources": [{"type": "url", "url": "https://example.org/mock"}],
        }
        return {"type": "web_search_call", "id": item_id, "status": "completed", "action": action}
    if kind == "file_search":
        return {
            "type": "file_search_call",
            "id": item_id,
            "status": "completed",
            "queries": [query],
            "results": None,
        }
    if kind == "code_interpreter":
        return {
            "type": "code_interpreter_call",
            "id": item_id,
            "status": "completed",
            "code": "print('mock')",
            "container_id": "cntr_mock",
            "outputs": None,
        }
    return {"type": f"{kind}_call", "id": item_id, "status": "completed"}


def _output(prompt: Prompt, reply: Reply, call_id: str, reasoning: bool) -> list[Any]:
    output: list[dict[str, Any]] = []
    if reasoning:
        output.append(
            {
                "type": "reasoning",
                "id": "rs_" + secrets.token_hex(12),
                "summary": [],
                "encrypted_content": ENCRYPTED_REASONING,
            }
        )
    output += [_hosted_item(kind, prompt.last_user_text) for kind in prompt.hosted_tools]
    if reply.tool_name is not None and reply.freeform:
        output.append(
            {
                "type": "custom_tool_call",
                "id": "ctc_" + secrets.token_hex(12),
                "call_id": call_id,
                "name": reply.tool_name,
                "input": reply.arguments or "",
                "status": "completed",
            }
        )
    elif reply.tool_name is not None:
        output.append(
            {
                "type": "function_call",
                "id": "fc_" + secrets.token_hex(12),
                "call_id": call_id,
                "name": reply.tool_name,
                "arguments": reply.arguments or "",
                "status": "completed",
            }
        )
    else:
        text = {"type": "output_text", "text": reply.text or "", "annotations": [], "logprobs": []}
        output.append(
            {
                "type": "message",
                "id": "msg_" + secrets.token_hex(12),
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    return output


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def response_object(
    body: dict[str, Any], prompt: Prompt, reply: Reply, response_id: str, call_id: str
) -> dict[str, Any]:
    include = body.get("include")
    reasoning = isinstance(include, list) and "reasoning.encrypted_content" in include
    output = _output(prompt, reply, call_id, reasoning)
    incomplete = reply.truncated
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if incomplete else "completed",
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _usage(reply),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_body(
    body: dict[str, Any], prompt: Prompt, reply: Reply, response_id: str, call_id: str
) -> bytes:
    return orjson.dumps(response_object(body, prompt, reply, response_id, call_id))


class _Events:
    def __init__(self) -> None:
        self.events: list[bytes] = []

    def add(self, kind: str, **data: Any) -> None:
        payload = {"type": kind, "sequence_number": len(self.events), **data}
        self.events.append(
            b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
        )


def _stream_item(events: _Events, index: int, item: dict[str, Any]) -> None:
    kind = item["type"]
    if kind == "message":
        text = item["content"][0]["text"]
        events.add(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "content": []},
        )
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        events.add("response.content_part.added", **ids, part=part)
        for piece in word_pieces(text):
            events.add("response.output_text.delta", **ids, delta=piece, logprobs=[])
        events.add("response.output_text.done", **ids, text=text, logprobs=[])
        events.add("response.content_part.done", **ids, part={**part, "text": text})
    elif kind in ("function_call", "custom_tool_call"):
        field = "arguments" if kind == "function_call" else "input"
        delta = (
            "response.function_call_arguments"
            if kind == "function_call"
            else ("response.custom_tool_call_input")
        )
        events.add(
            "response.output_item.added",
            output_index=index,
            item={**item, field: "", "status": "in_progress"},
        )
        for piece in split_arguments(item[field]):
            events.add(f"{delta}.delta", item_id=item["id"], output_index=index, delta=piece)
        events.add(f"{delta}.done", item_id=item["id"], output_index=index, **{field: item[field]})
    else:  # reasoning, provider-run tool calls
        events.add(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress"} if "status" in item else item,
        )
        if kind.endswith("_call"):
            events.add(f"response.{kind}.completed", item_id=item["id"], output_index=index)
    events.add("response.output_item.done", output_index=index, item=item)


def response_stream(
    body: dict[str, Any], prompt: Prompt, reply: Reply, response_id: str, call_id: str
) -> list[bytes]:
    """Every SSE event of the stream, in OpenAI's order, ending with `response.completed`
    (or `response.incomplete`)."""
    final = response_object(body, prompt, reply, response_id, call_id)
    events = _Events()
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    started["incomplete_details"] = None
    events.add("response.created", response=started)
    events.add("response.in_progress", response=started)
    for index, item in enumerate(final["output"]):
        _stream_item(events, index, item)
    events.add(f"response.{final['status']}", response=final)
    return events.events
