"""Behaviour defaults of the mock provider.

A `MockConfig` is given at startup; `POST /_mock/config` layers runtime overrides on
top of it (see `apply_overrides`). Per-request headers and `[mock ...]` directives
are layered on top of both at request time (see `behaviour.resolve_controls`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_provider.faults import DEFAULT_FAULTS, FAULT_KINDS

DEFAULT_MODELS: tuple[str, ...] = (
    "mock-gpt",
    "mock-gpt-2026-01-01",
    "mock-gpt-mini",
    "mock-claude",
    "mock-embed",
)


@dataclass(frozen=True, slots=True)
class MockConfig:
    """What the mock does when a request carries no header or directive of its own."""

    # Fixed delay before a non-streamed response, or before the first chunk of a stream
    # when `ttft_ms` is not set.
    latency_ms: int = 0
    # Delay before the first stream chunk; overrides `latency_ms` for streams only.
    ttft_ms: int | None = None
    # Delay between two stream chunks.
    chunk_delay_ms: int = 0
    # Error status to answer with (429, 500, 503, 529, 400, ...); None = no injected error.
    status: int | None = None
    # Fraction (0..1) of requests that get `status` when it comes from the config.
    fail_rate: float = 1.0
    # Seconds sent as `Retry-After` (and `retry-after-ms`) on injected errors.
    retry_after: float | None = None
    # A request whose text contains this string is answered with a 500.
    fail_marker: str | None = None
    # A stream is cut (no terminator, no final chunk) after this many SSE events.
    break_after_chunks: int | None = None
    # Mixed faults: this fraction (0..1) of requests, evenly spread like `fail_rate`, each gets
    # the next kind of `faults` in turn (see `mock_provider.faults`).
    fault_rate: float = 0.0
    faults: tuple[str, ...] = DEFAULT_FAULTS
    # How long a "stall" fault holds its answer (or the rest of it) back before carrying on.
    stall_ms: int = 30_000
    # When set, only `Authorization: Bearer <key>` or `x-api-key: <key>` is accepted.
    required_api_key: str | None = None
    # Words of the prompt a model echoes, per model (others: 12). A model that echoes fewer
    # words "knows less": the stand-in for a cheaper, weaker model in evaluation runs.
    echo_words: Mapping[str, int] = dataclasses.field(default_factory=lambda: {"mock-gpt-mini": 4})
    # Scripted tool calls, tool name -> its input (an object, or a freeform tool's text): the
    # first offered tool named here is called with that input (see `behaviour`).
    tool_script: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Not runtime-settable: identity and sizing of the server.
    models: tuple[str, ...] = DEFAULT_MODELS
    log_limit: int = 2000
    embedding_dimensions: int = 16


# Fields `POST /_mock/config` may change; the others describe the server itself.
BEHAVIOUR_FIELDS: frozenset[str] = frozenset(
    {
        "latency_ms",
        "ttft_ms",
        "chunk_delay_ms",
        "status",
        "fail_rate",
        "retry_after",
        "fail_marker",
        "break_after_chunks",
        "required_api_key",
        "echo_words",
        "tool_script",
        "fault_rate",
        "faults",
        "stall_ms",
    }
)

_INT_FIELDS = frozenset(
    {"latency_ms", "ttft_ms", "chunk_delay_ms", "status", "break_after_chunks", "stall_ms"}
)
_FLOAT_FIELDS = frozenset({"fail_rate", "retry_after", "fault_rate"})
_RATES = frozenset({"fail_rate", "fault_rate"})
_NULLABLE = frozenset(
    {"ttft_ms", "status", "retry_after", "fail_marker", "break_after_chunks", "required_api_key"}
)


class ConfigError(ValueError):
    """An override names an unknown field or carries a value of the wrong type."""


def _check(name: str, value: Any) -> Any:
    # Validate eagerly so a typo in a test's config fails loudly instead of being ignored.
    if name not in BEHAVIOUR_FIELDS:
        raise ConfigError(f"unknown or read-only field: {name}")
    if value is None:
        if name not in _NULLABLE:
            raise ConfigError(f"{name} may not be null")
        return None
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer")
        return value
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{name} must be a non-negative number")
        if name in _RATES and value > 1:
            raise ConfigError(f"{name} must be between 0 and 1")
        return float(value)
    if name == "echo_words":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()
        ):
            raise ConfigError("echo_words must map model names to non-negative integers")
        return dict(value)
    if name == "tool_script":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, dict | str) for k, v in value.items()
        ):
            raise ConfigError("tool_script must map tool names to an object or a string")
        return dict(value)
    if name == "faults":
        return parse_faults(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def parse_faults(value: Any) -> tuple[str, ...]:
    """A list of fault kinds (or one comma-separated string), each one of `FAULT_KINDS`."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError("faults must be a non-empty list of fault kinds")
    kinds = tuple(str(item).strip() for item in items)
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ConfigError(f"unknown fault kind(s) {unknown}; known: {sorted(FAULT_KINDS)}")
    return kinds


def apply_overrides(base: MockConfig, overrides: Mapping[str, Any]) -> MockConfig:
    """Return `base` with the behaviour fields in `overrides` replaced (validated)."""
    checked = {name: _check(name, value) for name, value in overrides.items()}
    return dataclasses.replace(base, **checked)


def config_to_dict(config: MockConfig) -> dict[str, Any]:
    """JSON-friendly view of a config (used by `GET /_mock/config`)."""
    data = dataclasses.asdict(config)
    data["models"] = list(config.models)
    data["echo_words"] = dict(config.echo_words)
    data["tool_script"] = dict(config.tool_script)
    data["faults"] = list(config.faults)
    return data
