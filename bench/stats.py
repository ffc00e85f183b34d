"""Result types shared by the load generators, and the arithmetic on them."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (the same definition hey uses), None when there is no data."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class RunResult:
    """One timed run of one load generator against one target (latencies in ms)."""

    label: str
    duration_s: float
    statuses: Counter[int] = field(default_factory=Counter)
    # Requests that got no HTTP answer (timeouts, resets), with a sample of the messages.
    client_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    rps: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def non_200(self) -> int:
        return self.answered - self.ok


@dataclass
class StreamResult:
    """Streamed requests: time to the first `data:` line and to the end of the stream (ms)."""

    label: str
    requests: int
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    total_p50_ms: float | None
    total_p99_ms: float | None
    statuses: Counter[int] = field(default_factory=Counter)
    client_errors: int = 0
    # Answered 200 but the stream did not end with `data: [DONE]`.
    incomplete: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0  # wall time of the whole run

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def non_200(self) -> int:
        return self.answered - self.ok

    @property
    def streams_per_s(self) -> float:
        """Complete streams (200 and `data: [DONE]`) per second of the run."""
        return (self.ok - self.incomplete) / self.elapsed_s if self.elapsed_s else 0.0


def added(gateway: float | None, direct: float | None) -> float | None:
    """What the gateway adds to a latency; None when either side has no data."""
    if gateway is None or direct is None:
        return None
    return gateway - direct
