"""`/v1/responses` on a deployment that speaks the Responses API itself (provider kind
`openai-responses`; docs/api.md#native-or-translated).

The request is still translated to the internal chat form, which is what guardrails, limits,
budgets, the cache and the audit record work on; a Responses-native deployment is sent the
client's own body instead, as the gateway continued it (`previous_response_id` and
`conversation` replaced by the whole input: state is the gateway's, tenant-scoped, so `store` goes
upstream `false`), the model replaced, hosted tools the route drops left out. Anything else the
client sent reaches the provider as sent, and the provider's answer reaches the client as it
came (routing/wire.py rewrites only the response's id, `store`, `previous_response_id` and
`conversation`).

Hosted tools (web_search, file_search, code_interpreter, ...) on the route's forward list
(`forward_hosted_tools`, deny by default) go to the provider, which runs them: such a request is
served only by the route's Responses-native deployments. Should it have to go translated after
all (a guardrail masked it, a registry prompt was rendered into it, a restricted route has no
such deployment), the route's `hosted_tools` policy decides: `refuse` (400 naming the tool) or
`drop` (named in `x-gateway-dropped-tools`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from routing.core.providers.openai_responses import RESPONSES_KIND
from routing.core.strategy import RoutePlan
from routing.core.translate import responses_request_to_openai
from routing.core.translate.responses_tools import HOSTED_TOOLS_DROP, ChatTools
from routing.core.types import JSON, Target
from routing.errors import GatewayError
from routing.table import ResolvedModel

# The ids routing/responses_state/items.py gives input items: msg_<hex>_in<n>, item_<hex>_in<n>.
_MINTED = re.compile(r"^(?:msg|item)_[0-9a-f]{32}_in\d+$")


@dataclass(frozen=True, slots=True)
class NativeResponses:
    """What a Responses-native deployment is sent, and what happens to the forwarded hosted
    tools when the request cannot go natively."""

    body: JSON
    forwarded: tuple[str, ...] = ()
    hosted_policy: str = "refuse"

    def lost(self, already: list[str]) -> list[str]:
        """The forwarded tools a translated request goes without (raises under `refuse`)."""
        if self.forwarded and self.hosted_policy != HOSTED_TOOLS_DROP:
            kind = self.forwarded[0]
            raise GatewayError(
                400,
                f"'{kind}' is a hosted tool this route forwards only to a deployment that speaks "
                "the Responses API natively, and this request cannot go to one as it was sent "
                "(a guardrail or a registry prompt changed it, or no such deployment serves it "
                "now). Remove it from 'tools', or ask an admin to set the route's hosted_tools "
                "policy to 'drop'.",
                param="tools",
                code="hosted_tool_not_forwarded",
            )
        return [kind for kind in self.forwarded if kind not in already]


def is_native(target: Target) -> bool:
    return target.kind == RESPONSES_KIND


def forwardable(plan: RoutePlan) -> frozenset[str]:
    """The hosted tool types this route forwards: only when one of its deployments runs them."""
    if not plan.forward_hosted_tools or not any(map(is_native, plan.targets)):
        return frozenset()
    return frozenset(plan.forward_hosted_tools)


def prepare(
    body: JSON, plan: RoutePlan, *, sent: JSON
) -> tuple[JSON, ChatTools, RoutePlan, NativeResponses]:
    """The internal chat form of a Responses body as the gateway continued it (raises
    `UnsupportedRequest`), how its tools map back, the plan that serves it, and the native
    request: `sent`, the client's body, unless the gateway rebuilt its input."""
    translated, tools = responses_request_to_openai(
        body, hosted_tools=plan.hosted_tools, forward=forwardable(plan)
    )
    if tools.forwarded:  # only a Responses-native deployment runs them
        plan = plan.only(is_native)
    continued = sent.get("previous_response_id") is not None or sent.get("conversation")
    if continued and isinstance(body.get("input"), list):
        native = {**body, "input": [_unminted(item) for item in body["input"]]}
    else:
        native = {k: v for k, v in sent.items() if k in body or k == "input"}
    native = upstream_body(native, tools)
    return (
        translated,
        tools,
        plan,
        NativeResponses(native, tuple(tools.forwarded), plan.hosted_tools),
    )


def _unminted(item: Any) -> Any:
    """An input item without the id the gateway gave it to list it (the provider never saw it);
    ids the provider gave its own output items stay."""
    if isinstance(item, dict) and _MINTED.match(str(item.get("id") or "")):
        return {k: v for k, v in item.items() if k != "id"}
    return item


def uncached(resolved: ResolvedModel, tools: ChatTools) -> ResolvedModel:
    """A request that forwards a hosted tool is never answered from the cache: its chat form
    does not show the tool, and a provider-run tool's answer is what the world said then."""
    return dataclasses.replace(resolved, cache=None) if tools.forwarded else resolved


def _without(tools: Any, dropped: set[str]) -> Any:
    if not isinstance(tools, list):
        return tools
    return [t for t in tools if not (isinstance(t, dict) and t.get("type") in dropped)]


def upstream_body(body: JSON, tools: ChatTools) -> JSON:
    """The client's body as a Responses-native deployment gets it (the model is the adapter's)."""
    native = {**body, "store": False}  # the gateway keeps the response, as the tenant allows
    if tools.dropped:
        dropped = set(tools.dropped)
        if "tools" in native:
            native["tools"] = _without(native["tools"], dropped)
        if isinstance(native.get("input"), list):
            native["input"] = [
                {**item, "tools": _without(item.get("tools"), dropped)}
                if isinstance(item, dict) and item.get("type") == "additional_tools"
                else item
                for item in native["input"]
            ]
        choice = native.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in dropped:
            del native["tool_choice"]
    return native
