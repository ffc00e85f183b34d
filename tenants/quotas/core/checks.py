"""What one admission asks of the counters, and what they answer. No Django here.

Four kinds of check, all evaluated together and all-or-nothing: if one enforced check fails,
nothing is counted. Counts live in one-second buckets; a window check sums the last 61 of them,
so "at most N per minute" holds for every 60-second span, not only for aligned minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """At most `limit` units (requests or tokens) in any 60 s."""

    key: str
    limit: int
    amount: int
    label: str
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class ConcurrencyCheck:
    """At most `limit` requests in flight; each holds a lease until settled or expired."""

    key: str
    limit: int
    label: str
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """Spent + reserved + this request's reservation must stay within `limit` (nano-USD)."""

    key: str
    limit: int
    amount: int
    label: str
    ttl_s: int  # the window's keys outlive its end by a margin, then expire
    alert_permille: tuple[int, ...] = (500, 800, 950)  # ascending
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class ShareCheck:
    """A consumer's fair share of a provider account, down a hierarchy (tenant → team → end
    user, or the key when no end user is named): at each level, what the level above gets is
    divided equally between its members active in the last minute (asking makes one active,
    served or not). The leaf may use at most its share; capacity is never held for consumers
    idle for a minute, so theirs is lent to the others.

    `reserve_permille` of the capacity is kept out of the shares, so that a consumer that starts
    asking finds room while the others' shares adjust to it.
    """

    usage_key: str  # the leaf's own use: a window, like a WindowCheck's
    levels: tuple[tuple[str, str], ...]  # (active-members key, this request's member), top down
    capacity: int
    amount: int
    label: str
    reserve_permille: int = 100
    shadow: bool = False

    def share(self, active: Sequence[int]) -> float:
        """The leaf's share, given how many members are active at each level (top down).

        The same arithmetic as the Redis script's, operation for operation, so that both
        stores agree to the last bit."""
        share: float = self.capacity - self.capacity * self.reserve_permille // 1000
        for members in active:
            share = share / members
        return share


Check = WindowCheck | ConcurrencyCheck | BudgetCheck | ShareCheck


class Outcome(NamedTuple):
    """One check's answer. A named tuple, not a frozen dataclass: an admission at every level
    reads 13 of them, and a frozen dataclass costs a `__setattr__` call per field to build."""

    remaining: int
    reset_s: int  # seconds until the window frees its oldest units (0: nothing counted)
    exceeded: bool  # for a shadow check: it would have refused
    # A budget crossed a new alert threshold with this request: its number (1 = the lowest),
    # the highest crossed; 0: none. Each threshold alerts once per window.
    alert: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    outcomes: tuple[Outcome, ...] = ()
    failed: int | None = None  # index of the first enforced check that refused
    retry_after_s: int | None = None  # None: waiting will not help (e.g. larger than the limit)
    needs_seed: tuple[int, ...] = field(default=())  # budget checks whose window is not loaded
    at_s: int = 0  # the counters' clock (epoch second) when the request was counted


@dataclass(frozen=True, slots=True)
class Release:
    """What settling gives back: token corrections, the lease, the reservation and real spend."""

    window_adjustments: tuple[tuple[str, int, int], ...] = ()  # (key, bucket second, delta)
    concurrency_keys: tuple[str, ...] = ()
    budget_spend: tuple[tuple[str, int], ...] = ()  # (key, actual nano-USD)
    # The spend is charged only where the call's reservation is still held: settling a call
    # that may already be settled (its worker died between its record and its settlement)
    # charges it once, whichever happened.
    if_still_reserved: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "window_adjustments": [list(a) for a in self.window_adjustments],
            "concurrency_keys": list(self.concurrency_keys),
            "budget_spend": [list(b) for b in self.budget_spend],
            "if_still_reserved": self.if_still_reserved,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        return cls(
            tuple((str(k), int(s), int(d)) for k, s, d in data.get("window_adjustments", ())),
            tuple(str(k) for k in data.get("concurrency_keys", ())),
            tuple((str(k), int(n)) for k, n in data.get("budget_spend", ())),
            bool(data.get("if_still_reserved", False)),
        )
