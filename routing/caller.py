"""Who asks, on whose behalf, and the worker services a step may read: what every step of the
proxy's pipeline takes (routing/pipeline.py).

A leaf of the proxy layer: the steps (prompts, guardrails, cache, admission, task category,
Responses state) import it, and it imports none of them, so no step reaches back into the
pipeline or the runtime that composes it (tests/test_architecture.py forbids import circles)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tenants.auth import KeyIdentity

if TYPE_CHECKING:
    from gateway_site.snapshot import Snapshot
    from routing.cache.engine import ResponseCache
    from routing.guardrails.table import PolicySnapshot
    from routing.prompts.registry import PromptTable
    from routing.table import RoutingTableCache
    from tenants.quotas.engine import QuotaEngine

# Attribution headers a caller may send; see docs/api.md#attribution.
END_USER_HEADER = "x-gateway-end-user"
FEATURE_HEADER = "x-gateway-feature"
CONTEXT_HEADERS = {"x-gateway-client-id": "client_id", "x-gateway-session-id": "session_id"}


class StepServices(Protocol):
    """The per-worker state the steps read (GatewayRuntime, routing/runtime.py, provides it)."""

    routes: RoutingTableCache
    prompts: Snapshot[PromptTable]
    guard_policies: PolicySnapshot
    quotas: QuotaEngine
    cache: ResponseCache

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks and on whose behalf: what every step of the pipeline reads, and none writes."""

    runtime: StepServices
    identity: KeyIdentity
    headers: Mapping[str, str]
    request_id: str
    end_user: str = ""
    client_context: Mapping[str, Any] = field(default_factory=dict)
    agent: str = ""  # the calling agent (routing/agent_identity.py): its rate limits
    # The provider-run tools the request offers (a deployment's price per call is keyed by
    # them), each with how many times it may run: what its budget reservation must cover.
    tool_uses: tuple[tuple[str, int], ...] = ()
