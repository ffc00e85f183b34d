"""A route's cache settings and a request's Cache-Control directives."""

from __future__ import annotations

import re
from dataclasses import dataclass

EXACT, SEMANTIC = "exact", "semantic"
MODES = ("off", EXACT, SEMANTIC)
# Whose answers a request may be served: never another tenant's; optionally only its team's or
# its end user's own.
SCOPES = ("tenant", "team", "user")
# Chosen on the shipped calibration set (docs/benchmarks.md#semantic-cache): false hits < 1 %.
DEFAULT_SIMILARITY = 0.90


@dataclass(frozen=True, slots=True)
class CachePolicy:
    mode: str  # "exact" or "semantic" (semantic also serves exact repeats)
    ttl_s: int
    scope: str = "tenant"
    similarity: float = DEFAULT_SIMILARITY

    @property
    def semantic(self) -> bool:
        return self.mode == SEMANTIC


@dataclass(frozen=True, slots=True)
class Directives:
    """What the client's `Cache-Control` asks: `no-cache` (do not serve from the cache, but keep
    the fresh answer), `no-store` (keep nothing of this request), `max-age=N` (only an answer at
    most N seconds old)."""

    no_cache: bool = False
    no_store: bool = False
    max_age_s: int | None = None


_DIRECTIVE = re.compile(r"^\s*([a-z-]+)\s*(?:=\s*\"?(\d+)\"?)?\s*$")


def parse_cache_control(header: str) -> Directives:
    """Unknown directives are ignored, as HTTP caches do; a malformed max-age means max-age=0."""
    no_cache = no_store = False
    max_age: int | None = None
    for part in header.lower().split(","):
        match = _DIRECTIVE.match(part)
        if not match:
            continue
        name, value = match.groups()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age":
            max_age = int(value) if value is not None else 0
    return Directives(no_cache=no_cache or max_age == 0, no_store=no_store, max_age_s=max_age)
