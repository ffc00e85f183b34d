"""Typed values that flow through the proxy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

JSON = dict[str, Any]

logger = logging.getLogger(__name__)


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
        if not isinstance(usage, dict) or not usage:
            return cls()
        details = usage.get("prompt_tokens_details")
        details = details if isinstance(details, dict) else {}
        return cls(
            prompt_tokens=usage_count(usage.get("prompt_tokens"), "prompt_tokens"),
            completion_tokens=usage_count(usage.get("completion_tokens"), "completion_tokens"),
            cached_tokens=usage_count(details.get("cached_tokens"), "cached_tokens"),
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
        if isinstance(value, bool):
            continue
        if (count := usage_count(value, name, most=MAX_TOOL_RUNS)) > 0:
            runs.append((name.removesuffix("_requests"), count))
    return tuple(runs)


# No answer counts more (the largest context windows hold about ten million tokens): a count
# past these is a garbled report, and charging it would overflow the record's cost.
MAX_TOKENS = 100_000_000
MAX_TOOL_RUNS = 10_000


def usage_details(usage: Any, name: str) -> dict[str, Any]:
    """A usage report's `*_details` object, or {} when it is missing or not an object."""
    details = usage.get(name) if isinstance(usage, dict) else None
    return details if isinstance(details, dict) else {}


def usage_count(value: Any, name: str = "", *, most: int = MAX_TOKENS) -> int:
    """A count from a provider's usage report as the gateway can charge it: a whole number from
    0 to `most` (a whole float such as 12.0, or ASCII digits such as "12", read as one).
    Anything else (text, a fraction, a negative, a huge number) reads as 0 and is logged: a
    garbled report must not fail the call, leave it unrecorded, or credit the spend ledger."""
    if value is None:
        return 0
    whole_float = isinstance(value, float) and value.is_integer()
    if whole_float or (isinstance(value, str) and value.isascii() and value.isdigit()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most:
        return value
    logger.warning("provider usage: %s=%r is not a count; read as 0", name or "a count", value)
    return 0


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
