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
        )


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
