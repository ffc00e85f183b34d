"""Responses API tools -> chat tools, and the map that turns the model's calls back.

Client-side tools (the client runs them) always reach the model:
- `function` -> a chat function tool.
- `custom` (freeform text, optionally a Lark/regex grammar; Codex's `apply_patch`) -> chat's own
  `custom` tool, which OpenAI-format deployments take as it is; an Anthropic-format adapter
  carries it as a function with one string parameter `input`.
- `namespace` (a group of functions and freeform tools; Codex's MCP servers, agent tools and its
  code-mode `exec`) -> its members, names kept, so the answer's `function_call` or
  `custom_tool_call` carries the member's name and its `namespace`.
- `tool_search` with `execution: "client"` (Codex's deferred tool discovery) -> a function the
  client answers with a `tool_search_output` item; the tools it loads join the next request.
- Tools a client adds in its input (`additional_tools` items: Codex sends its whole tool set that
  way) join the request's tools the same way.

Hosted tools (the provider runs them: `web_search`, `file_search`, `code_interpreter`, ...) have no
provider behind the chat form that runs them, so the route's `hosted_tools` policy decides:
`refuse` (the default: a 400 naming the tool) or `drop` (left out; the caller is told in the
`x-gateway-dropped-tools` header and the audit record). Those on the route's forward list
(`forward`: only when a deployment of the route speaks the Responses API natively) are left out
of the chat form and named in `forwarded`: the native request carries them to the provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import orjson

from routing.core.types import JSON

HOSTED_TOOLS_REFUSE = "refuse"
HOSTED_TOOLS_DROP = "drop"
HOSTED_TOOLS_POLICIES = (HOSTED_TOOLS_REFUSE, HOSTED_TOOLS_DROP)
# Tool types the client runs: never "hosted", so never on a route's forward list.
CLIENT_TOOL_TYPES = frozenset({"function", "custom", "namespace"})
_TOOL_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def hosted_tool_problem(kind: str) -> str | None:
    """Why `kind` cannot be on a route's list of hosted tools to forward (None: it can)."""
    if not _TOOL_TYPE.match(kind):
        return f"'{kind}' is not a tool type (lower-case letters, digits and '_')"
    if kind in CLIENT_TOOL_TYPES:
        return f"'{kind}' tools are run by the client and always reach the model"
    return None


# The parameter a freeform tool's text travels in where only JSON-argument tools exist.
CUSTOM_INPUT_KEY = "input"
TOOL_SEARCH = "tool_search"


class ToolRefused(ValueError):
    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ToolOrigin:
    """What a chat tool name was in the client's request."""

    kind: str  # "function", "custom", "namespace" or "tool_search"
    name: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ChatTools:
    tools: list[JSON]
    origins: dict[str, ToolOrigin]
    dropped: list[str]  # hosted tools left out under the `drop` policy
    forwarded: list[str] = dataclass_field(default_factory=list)  # for a native provider to run


def _function(tool: JSON, name: str) -> JSON:
    function: JSON = {"name": name}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _custom(tool: JSON) -> JSON:
    custom: JSON = {"name": tool.get("name")}
    for key in ("description", "format"):
        if tool.get(key) is not None:
            custom[key] = tool[key]
    return {"type": "custom", "custom": custom}


class _Builder:
    def __init__(self, hosted_tools: str, forward: frozenset[str] = frozenset()) -> None:
        self.hosted_tools = hosted_tools
        self.forward = forward
        self.tools: list[JSON] = []
        self.origins: dict[str, ToolOrigin] = {}
        self.dropped: list[str] = []
        self.forwarded: list[str] = []

    def _claim(self, name: Any, origin: ToolOrigin, where: str) -> str:
        if not isinstance(name, str) or not name:
            raise ToolRefused(f"'{where}.name' must be a non-empty string.", param=f"{where}.name")
        if name in self.origins and self.origins[name] != origin:
            raise ToolRefused(
                f"Two tools are named '{name}'; tool names must be unique across namespaces.",
                param=f"{where}.name",
            )
        self.origins[name] = origin
        return name

    def add(self, tool: Any, where: str) -> None:
        if not isinstance(tool, dict):
            raise ToolRefused(f"'{where}' must be an object.", param=where)
        kind = tool.get("type")
        if kind == "function":
            name = self._claim(
                tool.get("name"), ToolOrigin("function", str(tool.get("name"))), where
            )
            self.tools.append(_function(tool, name))
        elif kind == "custom":
            self._claim(tool.get("name"), ToolOrigin("custom", str(tool.get("name"))), where)
            self.tools.append(_custom(tool))
        elif kind == "namespace":
            self._namespace(tool, where)
        elif kind == TOOL_SEARCH and tool.get("execution", "client") == "client":
            self._claim(TOOL_SEARCH, ToolOrigin(TOOL_SEARCH, TOOL_SEARCH), where)
            self.tools.append(_function(tool, TOOL_SEARCH))
        else:
            self._hosted(str(kind), where)

    def _namespace(self, tool: JSON, where: str) -> None:
        namespace = tool.get("name")
        members = tool.get("tools")
        if not isinstance(namespace, str) or not isinstance(members, list):
            raise ToolRefused(
                f"'{where}' (a namespace) needs a 'name' and a list of 'tools'.", param=where
            )
        for i, member in enumerate(members):
            inner = f"{where}.tools[{i}]"
            kind = member.get("type", "function") if isinstance(member, dict) else None
            if kind not in ("function", "custom"):
                raise ToolRefused(
                    f"A namespace holds function and custom tools only ('{inner}').",
                    param=f"{inner}.type",
                )
            assert isinstance(member, dict)
            origin = ToolOrigin(
                "namespace" if kind == "function" else "custom", str(member.get("name")), namespace
            )
            name = self._claim(member.get("name"), origin, inner)
            self.tools.append(_function(member, name) if kind == "function" else _custom(member))

    def _hosted(self, kind: str, where: str) -> None:
        if kind in self.forward:
            if kind not in self.forwarded:
                self.forwarded.append(kind)
            return
        if self.hosted_tools == HOSTED_TOOLS_DROP:
            self.dropped.append(kind)
            return
        raise ToolRefused(
            f"'{kind}' is a hosted tool (the provider runs it) and this route does not forward "
            f"it to a deployment that runs it. Remove it from 'tools', or ask an admin to add "
            f"'{kind}' to the route's forward_hosted_tools (a deployment speaking the Responses "
            f"API natively) or to set its hosted_tools policy to 'drop'.",
            param=f"{where}.type",
        )


def chat_tools(
    tools: list[Any],
    *,
    hosted_tools: str = HOSTED_TOOLS_REFUSE,
    forward: frozenset[str] = frozenset(),
) -> ChatTools:
    """Responses `tools` -> chat tools (raises `ToolRefused`)."""
    builder = _Builder(hosted_tools, forward)
    for i, tool in enumerate(tools):
        builder.add(tool, f"tools[{i}]")
    return ChatTools(builder.tools, builder.origins, builder.dropped, builder.forwarded)


def loaded_tools(
    items: list[Any],
    known: ChatTools,
    *,
    hosted_tools: str = HOSTED_TOOLS_REFUSE,
    forward: frozenset[str] = frozenset(),
) -> ChatTools:
    """Tools the input adds join the request: those a client-run `tool_search` loaded (its
    `tool_search_output` items) and those of `additional_tools` items."""
    builder = _Builder(hosted_tools, forward)
    builder.origins = dict(known.origins)
    builder.dropped = list(known.dropped)
    builder.forwarded = list(known.forwarded)
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            added = item.get("tools")
            if not isinstance(added, list):
                raise ToolRefused(
                    f"'input[{i}].tools' must be a list of tools.", param=f"input[{i}].tools"
                )
            for j, tool in enumerate(added):
                builder.add(tool, f"input[{i}].tools[{j}]")
        elif isinstance(item, dict) and item.get("type") == "tool_search_output":
            for j, tool in enumerate(item.get("tools") or ()):
                name = tool.get("name") if isinstance(tool, dict) else None
                if tool.get("type") == "function" and name in builder.origins:
                    continue  # already offered
                builder.add(tool, f"input[{i}].tools[{j}]")
    return ChatTools(
        known.tools + builder.tools, builder.origins, builder.dropped, builder.forwarded
    )


def chat_tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "custom":
        return {"type": "custom", "custom": {"name": choice.get("name")}}
    raise ToolRefused(f"tool_choice of type '{kind}' is not supported.", param="tool_choice")


def custom_input(arguments: str) -> str:
    """A freeform tool's text from JSON arguments `{"input": ...}` (a provider without freeform
    tools), else the arguments as they are."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get(CUSTOM_INPUT_KEY), str):
        return str(parsed[CUSTOM_INPUT_KEY])
    return arguments


def search_arguments(arguments: str) -> Any:
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"query": arguments}
