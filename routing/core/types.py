"""Typed values that flow through the proxy."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment, as the proxy needs it to send a request."""

    deployment_id: int
    deployment_name: str
    provider_name: str
    kind: str  # "openai" or "anthropic": the wire format of the provider
    base_url: str
    api_key: str = field(repr=False)
    upstream_model: str
    region: str = ""
    input_price_per_mtok: Decimal = Decimal(0)
    output_price_per_mtok: Decimal = Decimal(0)
    cached_input_price_per_mtok: Decimal | None = None  # None: cache reads cost as input
    request_price_usd: Decimal = Decimal(0)
    tool_call_prices: tuple[tuple[str, Decimal], ...] = ()  # provider-run tools: USD per call
    # The provider account's capacity (None: not limited by the gateway).
    capacity_rpm: int | None = None
    capacity_tpm: int | None = None
    capacity_queue_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    # (tool type, runs) of the tools the provider ran itself and counts in its usage
    # (Anthropic's `server_tool_use`: web_search_requests → web_search), priced per run.
    tool_runs: tuple[tuple[str, int], ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: JSON | None) -> Usage:
        if not usage:
            return cls()
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
            tool_runs=tool_runs(usage.get(SERVER_TOOL_USE)),
        )

    def plus(self, other: Usage) -> Usage:
        """Both answers' usage (each was paid for)."""
        runs = dict(self.tool_runs)
        for tool, count in other.tool_runs:
            runs[tool] = runs.get(tool, 0) + count
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            tuple(sorted(runs.items())),
        )

    def usage_json(self) -> JSON:
        """The usage object of an internal-form answer (OpenAI's fields, and the tool runs)."""
        usage: JSON = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.tool_runs:
            usage[SERVER_TOOL_USE] = {f"{tool}_requests": runs for tool, runs in self.tool_runs}
        return usage


# Where an internal-form usage keeps the provider-run tools' counts (Anthropic's own field).
SERVER_TOOL_USE = "server_tool_use"


def tool_runs(counts: Any) -> tuple[tuple[str, int], ...]:
    """{"web_search_requests": 2} → (("web_search", 2),): what a provider reports running."""
    if not isinstance(counts, dict):
        return ()
    runs = []
    for name, value in sorted(counts.items()):
        if not (isinstance(name, str) and name.endswith("_requests")):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            runs.append((name.removesuffix("_requests"), value))
    return tuple(runs)


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete (non-streamed) upstream answer, already in the client's wire format."""

    status: int
    body: bytes
    parsed: JSON
    usage: Usage
    # The provider's own answer, byte for byte, when the client speaks the provider's format
    # (an Anthropic Messages request served natively); `body`/`parsed` are the internal form.
    native: bytes | None = None


@dataclass(slots=True)
class Attempt:
    """One try of one deployment; the audit record lists them all."""

    deployment: str
    provider: str
    status: int | None = None
    error: str = ""
    latency_ms: float = 0.0

    def as_json(self) -> JSON:
        return {
            "deployment": self.deployment,
            "provider": self.provider,
            "status": self.status,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 2),
        }
