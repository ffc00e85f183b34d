"""OpenAI Responses API request -> the internal chat form (and back, for round-trip tests).

Stored state is the proxy's business (routing/responses_state/): by the time a body reaches
this translation, `previous_response_id` and `conversation` have been replaced by the whole
input they stand for, and `store` is the proxy's to act on. What the gateway does not keep (item
references, background runs) is refused with a clear message rather than silently answered
without the context the client meant to send.

Mapping:
- `instructions` -> a leading system message.
- `input` (a string, or a list of items) -> messages: role messages with `input_text` /
  `input_image` / `output_text` parts; `function_call` items -> an assistant message's
  `tool_calls` (consecutive calls merge into one message); `function_call_output` -> a `tool`
  message; `reasoning` items are dropped (providers cannot take them back across formats).
  `custom_tool_call` / `custom_tool_call_output` and a client-run `tool_search_call` /
  `tool_search_output` likewise (see `responses_tools`). The tools of an `additional_tools` item
  join `tools`; a `configuration_update` item's `reasoning` replaces the request's. Fields the
  API does not define for the chat form (Codex's `internal_chat_message_metadata_passthrough`
  on messages) have nothing to map to and stay with the client.
- `tools` and `tool_choice` -> chat tools and tool_choice (`responses_tools`: client-side tools
  always, hosted tools by the route's policy).
- `max_output_tokens` -> `max_completion_tokens`; `text.format` -> `response_format`;
  `text.verbosity` -> `verbosity`; `reasoning.effort` -> `reasoning_effort`; sampling fields and
  `prompt_cache_key` pass as they are. `include` asks for parts only the Responses API has
  (`reasoning.encrypted_content`): nothing to forward, never a refusal. `client_metadata` is the
  caller's own context: the pipeline records it, no provider receives it.
"""

from __future__ import annotations

from typing import Any

import orjson

from routing.core.translate.responses_native import is_hosted_call
from routing.core.translate.responses_tools import (
    HOSTED_TOOLS_REFUSE,
    TOOL_SEARCH,
    ChatTools,
    ToolRefused,
    chat_tool_choice,
    chat_tools,
    loaded_tools,
)
from routing.core.types import JSON

_PASSED = (
    "temperature",
    "top_p",
    "user",
    "parallel_tool_calls",
    "metadata",
    "top_logprobs",
    "prompt_cache_key",
    "safety_identifier",
)
_STATEFUL = {
    # Continued by the proxy before translation; one still here was not looked up.
    "previous_response_id": "previous_response_id",
    "conversation": "conversation",
}


class UnsupportedRequest(ValueError):
    """A Responses request the gateway cannot serve; `param` names the offending field."""

    def __init__(self, message: str, *, param: str, code: str = "unsupported_parameter") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _stateless(param: str) -> UnsupportedRequest:
    return UnsupportedRequest(
        f"'{param}' is not supported: this gateway keeps state only for "
        "'previous_response_id' and 'conversation' (no item references or background runs). "
        "Continue with 'previous_response_id' or a 'conversation', or send the whole "
        "conversation in 'input'.",
        param=param,
        code="stateless_gateway",
    )


def _part(part: Any, where: str) -> JSON:
    if not isinstance(part, dict):
        raise UnsupportedRequest(f"'{where}' must be an object.", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        if part.get("file_id"):
            raise UnsupportedRequest(
                "Images by 'file_id' are not supported: send 'image_url' (a URL or data URL).",
                param=where,
            )
        image: JSON = {"url": part.get("image_url") or ""}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise UnsupportedRequest(f"Content of type '{kind}' is not supported.", param=f"{where}.type")


def _content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise UnsupportedRequest(f"'{where}' must be a string or a list.", param=where)
    parts = [_part(part, f"{where}[{i}]") for i, part in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # plain text reaches every provider
    return parts


def _output_text(output: Any) -> str | list[JSON]:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _content(output, "output")
    return "" if output is None else str(output)


class _Messages:
    def __init__(self, provider_items: bool = False) -> None:
        # Items a provider that runs hosted tools produced (web_search_call, mcp_list_tools,
        # ...), left in the history of a route that forwards them: the native request carries
        # them; the chat form, read by guardrails and limits, has no room for them.
        self.provider_items = provider_items
        self.messages: list[JSON] = []
        self.reasoning: JSON | None = None  # from a `configuration_update` item

    def add_item(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise UnsupportedRequest(f"'{where}' must be an object.", param=where)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            self._function_call(item)
        elif kind == "custom_tool_call":
            self._call(
                item,
                {
                    "type": "custom",
                    "custom": {
                        "name": str(item.get("name") or ""),
                        "input": str(item.get("input") or ""),
                    },
                },
            )
        elif kind == "tool_search_call" and item.get("execution", "client") == "client":
            arguments = item.get("arguments")
            if not isinstance(arguments, str):
                arguments = orjson.dumps(arguments or {}).decode()
            self._call(
                item,
                {"type": "function", "function": {"name": TOOL_SEARCH, "arguments": arguments}},
            )
        elif kind == "tool_search_output" and item.get("execution", "client") == "client":
            names = [
                str(tool.get("name"))
                for tool in item.get("tools") or ()
                if isinstance(tool, dict) and tool.get("name")
            ]
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id") or ""),
                    "content": "Tools loaded: " + (", ".join(names) or "none"),
                }
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id") or ""),
                    "content": _output_text(item.get("output")),
                }
            )
        elif kind == "reasoning":
            return
        elif kind == "additional_tools":
            return  # its tools join the request's (`responses_tools.loaded_tools`)
        elif kind == "configuration_update":
            if isinstance(item.get("reasoning"), dict):
                self.reasoning = item["reasoning"]  # a later setting replaces the request's
        elif kind == "item_reference":
            raise _stateless(f"{where}.id")
        elif self.provider_items and (is_hosted_call(item) or str(kind).startswith("mcp_")):
            return
        else:
            raise UnsupportedRequest(
                f"Input items of type '{kind}' are not supported.", param=f"{where}.type"
            )

    def _message(self, item: JSON, where: str) -> None:
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise UnsupportedRequest(f"Unknown role '{role}'.", param=f"{where}.role")
        self.messages.append({"role": role, "content": _content(item.get("content"), where)})

    def _function_call(self, item: JSON) -> None:
        # A namespaced function keeps its own name in the chat form (see `responses_tools`).
        self._call(
            item,
            {
                "type": "function",
                "function": {
                    "name": str(item.get("name") or ""),
                    "arguments": str(item.get("arguments") or ""),
                },
            },
        )

    def _call(self, item: JSON, body: JSON) -> None:
        call = {"id": str(item.get("call_id") or item.get("id") or ""), **body}
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
            return
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _response_format(text: Any) -> JSON | None:
    fmt = (text or {}).get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise UnsupportedRequest(f"text.format '{fmt['type']}' is not supported.", param="text.format")


def responses_request_to_openai(
    body: JSON,
    *,
    hosted_tools: str = HOSTED_TOOLS_REFUSE,
    forward: frozenset[str] = frozenset(),
) -> tuple[JSON, ChatTools]:
    """A Responses API body -> an OpenAI chat completions body, and how its tools map back
    (raises `UnsupportedRequest`). `hosted_tools`: the route's policy for provider-run tools;
    `forward`: those a Responses-native deployment will be sent (left out of the chat form)."""
    for field, param in _STATEFUL.items():
        if body.get(field) is not None:
            raise _stateless(param)
    if body.get("background"):
        raise _stateless("background")
    builder = _Messages(provider_items=bool(forward))
    if body.get("instructions"):
        builder.messages.append({"role": "system", "content": str(body["instructions"])})
    items = body.get("input")
    if isinstance(items, str):
        builder.messages.append({"role": "user", "content": items})
    elif isinstance(items, list):
        for i, item in enumerate(items):
            builder.add_item(item, f"input[{i}]")
    elif items is not None:
        raise UnsupportedRequest("'input' must be a string or a list of items.", param="input")
    chat: JSON = {"model": body.get("model"), "messages": builder.messages}
    for key in _PASSED:
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    try:
        tools = chat_tools(
            list(body.get("tools") or ()), hosted_tools=hosted_tools, forward=forward
        )
        if isinstance(items, list):
            tools = loaded_tools(items, tools, hosted_tools=hosted_tools, forward=forward)
        choice = body.get("tool_choice")
        # A forwarded hosted tool chosen by type is the native request's to carry.
        if choice is not None and not (isinstance(choice, dict) and choice.get("type") in forward):
            chat["tool_choice"] = chat_tool_choice(choice)
    except ToolRefused as refusal:
        raise UnsupportedRequest(refusal.message, param=refusal.param) from None
    if tools.tools:
        chat["tools"] = tools.tools
    elif "tool_choice" in chat:
        del chat["tool_choice"]  # every tool was a dropped (or forwarded) hosted one
    if (response_format := _response_format(body.get("text"))) is not None:
        chat["response_format"] = response_format
    if isinstance(body.get("text"), dict) and body["text"].get("verbosity"):
        chat["verbosity"] = body["text"]["verbosity"]
    reasoning = builder.reasoning if builder.reasoning is not None else body.get("reasoning")
    effort = (reasoning if isinstance(reasoning, dict) else {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat, tools


def openai_request_to_responses(chat: JSON) -> JSON:
    """The inverse mapping, for round-trip tests: a chat body -> a Responses body."""
    body: JSON = {"model": chat.get("model")}
    items: list[JSON] = []
    messages = list(chat.get("messages") or ())
    if messages and messages[0].get("role") == "system" and isinstance(messages[0]["content"], str):
        body["instructions"] = messages.pop(0)["content"]
    for message in messages:
        role = message["role"]
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message["content"],
                }
            )
            continue
        if message.get("content") is not None:
            kind = "output_text" if role == "assistant" else "input_text"
            items.append(
                {
                    "type": "message",
                    "role": role,
                    "content": [{"type": kind, "text": message["content"]}],
                }
            )
        for call in message.get("tool_calls") or ():
            items.append(
                {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                }
            )
    body["input"] = items
    if chat.get("tools"):
        body["tools"] = [{"type": "function", **t["function"]} for t in chat["tools"]]
    choice = chat.get("tool_choice")
    if isinstance(choice, dict):
        body["tool_choice"] = {"type": "function", "name": choice["function"]["name"]}
    elif choice is not None:
        body["tool_choice"] = choice
    if chat.get("max_completion_tokens") is not None:
        body["max_output_tokens"] = chat["max_completion_tokens"]
    for key in _PASSED:
        if chat.get(key) is not None:
            body[key] = chat[key]
    return body
