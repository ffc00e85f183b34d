"""Fault controls of one request: headers, then `[mock ...]` directives, then config.

The rules are documented with the rest of the behaviour in `mock_provider.behaviour`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_provider.behaviour import BadRequest
from mock_provider.config import MockConfig
from mock_provider.faults import FAULT_KINDS

# Header name -> control name; a header overrides everything else.
HEADER_CONTROLS: dict[bytes, str] = {
    b"x-mock-status": "status",
    b"x-mock-retry-after": "retry_after",
    b"x-mock-latency-ms": "latency_ms",
    b"x-mock-ttft-ms": "ttft_ms",
    b"x-mock-chunk-delay-ms": "chunk_delay_ms",
    b"x-mock-break-after-chunks": "break_after_chunks",
    b"x-mock-fault": "fault",
    b"x-mock-stall-ms": "stall_ms",
}
_DIRECTIVE_KEYS = frozenset(HEADER_CONTROLS.values())
_DIRECTIVE_RE = re.compile(r"\[mock((?:\s+[a-z_]+=[^\s\]]*)*)\s*\]")
_PAIR_RE = re.compile(r"([a-z_]+)=([^\s\]]*)")


class ControlError(BadRequest):
    """A header or directive carries an unknown key or an unparsable value."""


@dataclass(frozen=True, slots=True)
class Controls:
    status: int | None
    forced: bool  # status came from a header or directive: fail regardless of fail_rate
    fail_rate: float
    retry_after: float | None
    latency_ms: int
    ttft_ms: int | None
    chunk_delay_ms: int
    break_after_chunks: int | None
    fail_marker: str | None
    fault: str | None  # a fault kind forced by a header or directive
    fault_rate: float
    faults: tuple[str, ...]
    stall_ms: int


def _parse_control(name: str, raw: str) -> int | float | str:
    if name == "fault":
        if raw not in FAULT_KINDS:
            raise ControlError(f"unknown mock fault {raw!r}; known: {sorted(FAULT_KINDS)}")
        return raw
    try:
        value: int | float = float(raw) if name == "retry_after" else int(raw)
    except ValueError:
        raise ControlError(f"mock control {name} has a bad value: {raw!r}") from None
    if value < 0:
        raise ControlError(f"mock control {name} must not be negative")
    return value


def parse_directives(text: str) -> dict[str, int | float | str]:
    """Controls from every `[mock key=value ...]` in `text`; later ones win."""
    found: dict[str, int | float | str] = {}
    for match in _DIRECTIVE_RE.finditer(text):
        for key, raw in _PAIR_RE.findall(match.group(1)):
            if key not in _DIRECTIVE_KEYS:
                raise ControlError(f"unknown mock directive key: {key}")
            found[key] = _parse_control(key, raw)
    return found


def resolve_controls(config: MockConfig, headers: Mapping[str, str], user_text: str) -> Controls:
    """Layer directive then header values over the (already merged) config."""
    values: dict[str, Any] = {
        "status": config.status,
        "retry_after": config.retry_after,
        "latency_ms": config.latency_ms,
        "ttft_ms": config.ttft_ms,
        "chunk_delay_ms": config.chunk_delay_ms,
        "break_after_chunks": config.break_after_chunks,
        "fault": None,
        "stall_ms": config.stall_ms,
    }
    forced = False
    # The substring test keeps the regex off the hot path of ordinary requests.
    if "[mock" in user_text:
        directives = parse_directives(user_text)
        forced = "status" in directives
        values.update(directives)
    for name, raw in headers.items():
        values[name] = _parse_control(name, raw)
        forced = forced or name == "status"
    return Controls(
        status=values["status"],
        forced=forced,
        fail_rate=config.fail_rate,
        retry_after=values["retry_after"],
        latency_ms=values["latency_ms"],
        ttft_ms=values["ttft_ms"],
        chunk_delay_ms=values["chunk_delay_ms"],
        break_after_chunks=values["break_after_chunks"],
        fail_marker=config.fail_marker,
        fault=values["fault"],
        fault_rate=config.fault_rate,
        faults=config.faults,
        stall_ms=values["stall_ms"],
    )


class FailCounter:
    """Spreads `fail_rate` failures evenly and reproducibly over the request sequence."""

    def __init__(self) -> None:
        self.seen = 0

    def should_fail(self, rate: float) -> bool:
        i = self.seen
        self.seen += 1
        # The epsilon keeps e.g. 0.29 * 100 from flooring to 28 through float error.
        return math.floor((i + 1) * rate + 1e-9) > math.floor(i * rate + 1e-9)
