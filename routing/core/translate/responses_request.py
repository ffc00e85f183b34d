"""OpenAI Responses API request -> the internal chat form (and back, for round-trip tests).

The gateway is stateless: it keeps no responses, so anything that refers to stored state
(`previous_response_id`, `conversation`, item references, background runs) is refused with a
clear message rather than silently answered without the context the client meant to send.
`store` is accepted and ignored: nothing is ever stored.

Mapping:
- `instructions` -> a leading system message.
- `input` (a string, or a list of items) -> messages: role messages with `input_text` /
  `input_image` / `output_text` parts; `function_call` items -> an assistant message's
  `tool_calls` (consecutive calls merge into one message); `function_call_output` -> a `tool`
  message; `reasoning` items are dropped (providers cannot take them back across formats).
- `tools` (function tools only) and `tool_choice` -> chat tools and tool_choice.
- `max_output_tokens` -> `max_completion_tokens`; `text.format` -> `response_format`;
  `reasoning.effort` -> `reasoning_effort`; sampling fields pass as they are.
"""

from __future__ import annotations

from typing import Any

from routing.core.types import JSON

_PASSED = ("temperature", "top_p", "user", "parallel_tool_calls", "metadata", "top_logprobs")
_STATEFUL = {
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
        f"'{param}' is not supported: this gateway is stateless and stores no responses. "
        "Send the whole conversation in 'input' instead.",
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
    def __init__(self) -> None:
        self.messages: list[JSON] = []

    def add_item(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise UnsupportedRequest(f"'{where}' must be an object.", param=where)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            self._function_call(item)
        elif kind == "function_call_output":
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id") or ""),
                    "content": _output_text(item.get("output")),
                }
            )
        elif kind == "reasoning":
            return
        elif kind == "item_reference":
            raise _stateless(f"{where}.id")
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
        call = {
            "id": str(item.get("call_id") or item.get("id") or ""),
            "type": "function",
            "function": {
                "name": str(item.get("name") or ""),
                "arguments": str(item.get("arguments") or ""),
            },
        }
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
            return
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise UnsupportedRequest(
            f"Only function tools are supported; '{kind}' is a hosted tool this gateway "
            "cannot run.",
            param=f"{where}.type",
        )
    function: JSON = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if isinstance(choice, dict):
        raise UnsupportedRequest(
            f"tool_choice of type '{choice.get('type')}' is not supported.",
            param="tool_choice",
        )
    return choice


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


def responses_request_to_openai(body: JSON) -> JSON:
    """A Responses API body -> an OpenAI chat completions body (raises `UnsupportedRequest`)."""
    for field, param in _STATEFUL.items():
        if body.get(field) is not None:
            raise _stateless(param)
    if body.get("background"):
        raise _stateless("background")
    builder = _Messages()
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
    if body.get("tools"):
        chat["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if (response_format := _response_format(body.get("text"))) is not None:
        chat["response_format"] = response_format
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


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
