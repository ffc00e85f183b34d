"""The in-process counters, for a single gateway process without Redis (the embedded default).

Same semantics as the Redis script (tenants/quotas/core/redis_store.py); the shared contract tests run
against both. Every method is synchronous and awaits nothing, so on one event loop each call
is atomic.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from tenants.quotas.core.checks import (
    WINDOW_SECONDS,
    BudgetCheck,
    Check,
    ConcurrencyCheck,
    Outcome,
    Release,
    ShareCheck,
    Verdict,
    WindowCheck,
)


class _Buckets:
    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def recent(self, now: int) -> list[tuple[int, int]]:
        for second in [s for s in self.counts if s < now - WINDOW_SECONDS]:
            del self.counts[second]
        return sorted(self.counts.items())

    def total(self, now: int) -> int:
        return sum(count for _, count in self.recent(now))

    def add(self, second: int, amount: int) -> None:
        self.counts[second] = self.counts.get(second, 0) + amount


def _wait_to_free(buckets: list[tuple[int, int]], need: int, now: int) -> int:
    """Seconds until the oldest buckets leave the window and free at least `need` units."""
    freed = 0
    for second, count in buckets:
        freed += count
        if freed >= need:
            return second + WINDOW_SECONDS + 1 - now
    return WINDOW_SECONDS + 1


class _Budget:
    def __init__(self) -> None:
        self.spent: int | None = None  # None: not loaded from the ledger yet
        self.reservations: dict[str, tuple[int, float]] = {}  # request id → (amount, expiry)
        self.alerted = 0  # how many of the alert thresholds have alerted
        self.counted: set[str] = set()  # reserved calls a reload found in the ledger
        self.lapsed: set[str] = set()  # reservations dropped unsettled: still charged if settled

    def reserved(self, now: float) -> int:
        for request_id in [r for r, (_, exp) in self.reservations.items() if exp <= now]:
            del self.reservations[request_id]
            self.lapsed.add(request_id)
        return sum(amount for amount, _ in self.reservations.values())


class MemoryQuotaStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._windows: dict[str, _Buckets] = defaultdict(_Buckets)
        self._leases: dict[str, dict[str, float]] = defaultdict(dict)
        self._active: dict[str, dict[str, int]] = defaultdict(dict)
        self._budgets: dict[str, _Budget] = defaultdict(_Budget)

    async def admit(
        self, checks: Sequence[Check], request_id: str, lease_s: int, *, dry: bool = False
    ) -> Verdict:
        return self.admit_now(checks, request_id, lease_s, dry=dry)

    def admit_now(
        self, checks: Sequence[Check], request_id: str, lease_s: int, *, dry: bool = False
    ) -> Verdict:
        now_f = self.clock()
        now = int(now_f)
        unseeded = tuple(
            i
            for i, c in enumerate(checks)
            if isinstance(c, BudgetCheck) and self._budgets[c.key].spent is None
        )
        if unseeded:
            return Verdict(allowed=False, needs_seed=unseeded, at_s=now)
        outcomes: list[Outcome] = []
        failed: int | None = None
        retry: int | None = None
        for index, check in enumerate(checks):
            ok, outcome, wait = self._evaluate(check, now, now_f, dry)
            outcomes.append(outcome)
            if not ok and not check.shadow and failed is None:
                failed, retry = index, wait
        if failed is not None or dry:
            return Verdict(failed is None, tuple(outcomes), failed, retry, at_s=now)
        for index, check in enumerate(checks):
            alert = self._apply(check, request_id, now, now_f, lease_s)
            if alert:
                outcomes[index] = Outcome(
                    outcomes[index].remaining,
                    outcomes[index].reset_s,
                    outcomes[index].exceeded,
                    alert=alert,
                )
        return Verdict(True, tuple(outcomes), at_s=now)

    def _evaluate(
        self, check: Check, now: int, now_f: float, dry: bool
    ) -> tuple[bool, Outcome, int | None]:
        if isinstance(check, WindowCheck):
            buckets = self._windows[check.key].recent(now)
            used = sum(count for _, count in buckets)
            ok = used + check.amount <= check.limit
            # Until the window is empty again (OpenAI's meaning of the reset headers).
            reset = WINDOW_SECONDS + 1 if used + check.amount > 0 else 0
            wait: int | None = None
            if not ok:
                need = used + check.amount - check.limit
                wait = None if check.amount > check.limit else _wait_to_free(buckets, need, now)
            return ok, Outcome(check.limit - used - check.amount, reset, not ok), wait
        if isinstance(check, ConcurrencyCheck):
            leases = self._leases[check.key]
            for request_id in [r for r, exp in leases.items() if exp <= now_f]:
                del leases[request_id]
            ok = len(leases) + 1 <= check.limit
            return ok, Outcome(check.limit - len(leases) - 1, 0, not ok), 1
        if isinstance(check, BudgetCheck):
            budget = self._budgets[check.key]
            assert budget.spent is not None
            used = budget.spent + budget.reserved(now_f)
            ok = used + check.amount <= check.limit
            return ok, Outcome(check.limit - used - check.amount, 0, not ok), None
        return self._evaluate_share(check, now, dry)

    def _evaluate_share(
        self, check: ShareCheck, now: int, dry: bool
    ) -> tuple[bool, Outcome, int | None]:
        counts: list[int] = []
        for active_key, member in check.levels:
            active = self._active[active_key]
            for gone in [m for m, seen in active.items() if seen < now - WINDOW_SECONDS]:
                del active[gone]
            counts.append(len(active) + (0 if member in active else 1))
            if not dry:
                active[member] = now  # asking makes a consumer active, served or not
        share = check.share(counts)
        mine = self._windows[check.usage_key].recent(now)
        used = sum(count for _, count in mine)
        ok = used + check.amount <= share
        wait = (
            None if ok else _wait_to_free(mine, max(1, math.ceil(used + check.amount - share)), now)
        )
        return ok, Outcome(math.floor(share) - used - check.amount, 0, not ok), wait

    def _apply(self, check: Check, request_id: str, now: int, now_f: float, lease_s: int) -> int:
        if isinstance(check, WindowCheck):
            self._windows[check.key].add(now, check.amount)
        elif isinstance(check, ConcurrencyCheck):
            self._leases[check.key][request_id] = now_f + lease_s
        elif isinstance(check, ShareCheck):
            self._windows[check.usage_key].add(now, check.amount)
        else:
            budget = self._budgets[check.key]
            budget.reservations[request_id] = (check.amount, now_f + lease_s)
            assert budget.spent is not None
            level = budget.spent + budget.reserved(now_f)
            crossed = sum(level * 1000 >= p * check.limit for p in check.alert_permille)
            if crossed > budget.alerted:
                budget.alerted = crossed
                return crossed
        return 0

    async def settle(self, release: Release, request_id: str, *, at_once: bool = False) -> None:
        now = int(self.clock())
        for key, second, delta in release.window_adjustments:
            if second >= now - WINDOW_SECONDS:
                self._windows[key].add(second, delta)
        for key in release.concurrency_keys:
            self._leases[key].pop(request_id, None)
        for key, actual in release.budget_spend:
            budget = self._budgets[key]
            held = budget.reservations.pop(request_id, None) is not None
            counted = not held and request_id in budget.counted
            budget.counted.discard(request_id)
            if counted:
                continue
            if not held and request_id in budget.lapsed:
                budget.lapsed.discard(request_id)
                held = True
            if budget.spent is not None and (held or not release.if_still_reserved):
                budget.spent += actual

    async def drain(self) -> None:
        """Nothing waits here: every settlement is applied when it is made."""

    async def seed(
        self, key: str, spent: int, ttl_s: int, *, force: bool = False, counted: Sequence[str] = ()
    ) -> None:
        budget = self._budgets[key]
        if force or budget.spent is None:
            budget.spent = spent
            for request_id in counted:
                lapsed = request_id in budget.lapsed
                budget.lapsed.discard(request_id)
                if budget.reservations.pop(request_id, None) is not None or lapsed:
                    budget.counted.add(request_id)

    async def reserved_ids(self, key: str) -> list[str]:
        budget = self._budgets[key]
        return [*budget.reservations, *budget.lapsed]

    async def budget_state(self, key: str) -> tuple[int | None, int]:
        budget = self._budgets[key]
        return budget.spent, budget.reserved(self.clock())
