"""Admitting a request against every limit and budget that applies, and settling it afterwards.

One call to the counters admits (all levels, all-or-nothing); settling gives back what was not
used. The counters are Redis when REDIS_URL is set, in-process otherwise; the ledger in the
database is the truth a budget window is (re)loaded from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from django.utils import timezone
from prometheus_client import Counter
from redis.exceptions import RedisClusterException, RedisError

from gateway_site.db_threads import run_db
from gateway_site.snapshot import Snapshot
from tenants.quotas import ledger
from tenants.quotas.core.checks import (
    BudgetCheck,
    Check,
    ConcurrencyCheck,
    Release,
    Verdict,
    WindowCheck,
)
from tenants.quotas.core.redis_store import StoreBusy
from tenants.quotas.core.windows import Window, window_at
from tenants.quotas.responses import (
    budget_exhausted,
    limit_exceeded,
    rate_headers,
    store_busy,
    store_unavailable,
)
from tenants.quotas.table import BudgetRule, Meter, PolicyRule, QuotaTable

logger = logging.getLogger(__name__)

NANOS = Decimal(1_000_000_000)
LEASE_SECONDS = 600  # a crashed worker's reservations and leases expire after this
# A store that waited too long for a free connection (StoreBusy) is busy, not down: settlement
# treats it as a failure (the window reloads from the ledger), admission refuses.
# On a Redis Cluster a slot no master serves yet (a failover under way) raises a
# RedisClusterException, which is no RedisError: an outage all the same.
STORE_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError, StoreBusy)
_RETRY_STORE_AFTER_S = 1.0
# Admissions whose outcome is unknown (the store timed out: a hung Redis may still run the script
# when it resumes) are undone once the store answers again; at most this many are remembered.
_UNDO_MAX = 10_000
_PLANS_MAX = 10_000  # scopes (end users included) whose check plan is kept; then it starts over

BUSY_REFUSALS = Counter(
    "gateway_quota_store_busy_refusals",
    "Requests refused because no connection to the limit counters freed up in time.",
)
STORE_FAILURES = Counter(
    "gateway_quota_store_failures",
    "Calls to the limit and budget counters (Redis) that failed; each tenant's policy applied.",
)
UNCHECKED = Counter(
    "gateway_quota_unchecked_requests",
    "Requests served without their limits checked because the counters were unavailable.",
)
SHADOW_REFUSALS = Counter(
    "gateway_quota_shadow_refusals",
    "Requests a shadow limit or budget would have refused (recorded, not enforced).",
    ["meter"],
)


def tenant_tag(tenant_id: int) -> str:
    """The hash tag of every counter one tenant's admission touches: on a Redis Cluster they
    share one slot, so the admit and settle scripts stay atomic. It precedes any name a caller
    chose (an end user's may hold braces), so it is always the key's first "{...}"."""
    return f"{{t{tenant_id}}}"


def to_nanos(usd: Decimal, *, round_up: bool = False) -> int:
    rounding = ROUND_CEILING if round_up else ROUND_HALF_UP
    return int((usd * NANOS).to_integral_value(rounding=rounding))


class QuotaStore(Protocol):
    async def admit(
        self, checks: list[Check], request_id: str, lease_s: int, *, dry: bool = False
    ) -> Verdict: ...
    async def settle(self, release: Release, request_id: str, *, at_once: bool = False) -> None: ...
    async def seed(
        self, key: str, spent: int, ttl_s: int, *, force: bool = False, counted: Sequence[str] = ()
    ) -> None: ...
    async def reserved_ids(self, key: str) -> list[str]: ...
    async def drain(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Demand:
    """What one request asks for: computed by the pipeline before forwarding."""

    tenant_id: int
    team_id: int
    key_id: int
    end_user: str
    prompt_tokens: int
    tokens_exact: bool
    max_output_tokens: int | None
    # Worst-case price among the deployments that may serve it (USD per 1M tokens).
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    # A price per call on top of the tokens' (a priced MCP tool: routing/mcp_gateway/).
    fixed_cost_usd: Decimal = Decimal(0)
    # Counted in the budgets only: a tool call is not a model request for the rate limits.
    budgets_only: bool = False
    agent: str = ""  # the calling agent: its rate limits (routing/agent_identity.py)


@dataclass(slots=True)
class Admission:
    request_id: str
    checks: list[Check] = field(default_factory=list)
    meters: list[Meter] = field(default_factory=list)
    verdict: Verdict | None = None
    token_charge: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    provider_tpm: list[tuple[str, int]] = field(default_factory=list)  # (key, second counted)

    def release(self, *, total_tokens: int, cost_usd: Decimal) -> Release:
        delta = total_tokens - self.token_charge
        adjustments = [(key, second, delta) for key, second in self.provider_tpm if delta]
        concurrency: list[str] = []
        budgets: list[tuple[str, int]] = []
        if self.verdict is None:
            return Release(tuple(adjustments))
        for check in self.checks:
            if isinstance(check, WindowCheck) and check.key.endswith(":tpm"):
                # Reconcile the estimate with the provider's reported usage.
                if delta:
                    adjustments.append((check.key, self.verdict.at_s, delta))
            elif isinstance(check, ConcurrencyCheck):
                concurrency.append(check.key)
            elif isinstance(check, BudgetCheck):
                budgets.append((check.key, to_nanos(cost_usd)))
        return Release(tuple(adjustments), tuple(concurrency), tuple(budgets))


@dataclass(frozen=True, slots=True)
class _Window:
    """A budget window, with its counters' key part and its bounds in epoch seconds."""

    window: Window
    key: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class _TokensPlan:
    key: str
    meter: Meter


@dataclass(slots=True)
class _BudgetPlan:
    budget: BudgetRule
    key: str  # all but the window's own part
    limit: int
    alert_permille: tuple[int, ...]
    # The window in force, its counters' key and its meter: built when the window begins, not
    # per request. Plans are rebuilt with the table, so this never outlives its rule.
    current: tuple[_Window, str, Meter] | None = None


_PlanItem = tuple[Check, Meter] | _TokensPlan | _BudgetPlan


def _plan(table: QuotaTable, demand: Demand) -> list[_PlanItem]:
    plan: list[_PlanItem] = []
    tag = tenant_tag(demand.tenant_id)
    scopes = table.scopes(
        demand.tenant_id, demand.team_id, demand.key_id, demand.end_user, demand.agent
    )
    for scope, counter_id in scopes:
        rule = None if demand.budgets_only else table.limits.get(scope)
        if rule is not None:
            base = f"gw:q:{tag}:{counter_id}"
            label, shadow = rule.label, rule.shadow
            if rule.requests_per_minute is not None:
                limit = rule.requests_per_minute
                check = WindowCheck(f"{base}:rpm", limit, 1, label, shadow)
                plan.append((check, Meter("requests", label, limit, shadow)))
            if rule.tokens_per_minute is not None:
                meter = Meter("tokens", label, rule.tokens_per_minute, shadow)
                plan.append(_TokensPlan(f"{base}:tpm", meter))
            if rule.max_concurrent is not None:
                limit = rule.max_concurrent
                lease = ConcurrencyCheck(f"{base}:conc", limit, label, shadow)
                plan.append((lease, Meter("concurrent", label, limit, shadow)))
        for budget in table.budgets.get(scope, ()):
            user = demand.end_user if budget.per_user else ""
            plan.append(
                _BudgetPlan(
                    budget,
                    f"gw:b:{budget.id}:{tag}:{user}:",
                    to_nanos(budget.amount_usd),
                    tuple(pct * 10 for pct in budget.alert_thresholds_pct),
                )
            )
    return plan


class QuotaEngine:
    def __init__(self, store: QuotaStore, table: Snapshot[QuotaTable], *, store_name: str) -> None:
        self.store = store
        self.table = table
        self.store_name = store_name
        self._down_until = 0.0
        self._failures = 0  # bumped on every store failure: budget windows reload after it
        self._seeded_at_failure: dict[str, int] = {}
        self._seed_locks: dict[str, asyncio.Lock] = {}
        self._alerts: set[asyncio.Future[Any]] = set()
        self._undo: list[tuple[str, Release]] = []
        self._undoing = False
        self._windows: dict[tuple[str, str], _Window] = {}
        self._plans_table: QuotaTable | None = None
        self._plans: dict[tuple[Any, ...], tuple[_PlanItem, ...]] = {}

    async def policy(self, tenant_id: int) -> PolicyRule:
        return (await self.table.get()).policy(tenant_id)

    async def admit(
        self,
        demand: Demand,
        request_id: str,
        *,
        now: datetime | None = None,
        dry: bool = False,
        requests_only: bool = False,
    ) -> Admission:
        """Count the request against every rule that applies, or raise the refusal (429/503).

        A dry run evaluates the same checks, counts nothing and never raises for a refusal.
        `requests_only`: a request served without a provider (a cached answer) counts against
        requests-per-minute limits only: no tokens, no concurrency lease, no budget."""
        table = await self.table.get()
        admission = Admission(request_id)
        policy = table.policy(demand.tenant_id)
        reserve = Decimal(0) if requests_only else self.reservation_usd(demand, policy)
        admission.token_charge = demand.prompt_tokens + (demand.max_output_tokens or 0)
        self._plan_checks(admission, table, demand, reserve, now or timezone.now())
        if requests_only:
            kept = [i for i, m in enumerate(admission.meters) if m.kind == "requests"]
            admission.checks = [admission.checks[i] for i in kept]
            admission.meters = [admission.meters[i] for i in kept]
        admission.record = {
            "prompt_tokens_estimated": demand.prompt_tokens,
            "tokens_exact": demand.tokens_exact,
            "reserved_usd": f"{reserve:f}",
        }
        if not admission.checks:
            return admission
        if self.store_resting():
            return self._unchecked(admission, policy)
        try:
            verdict = await self._run(admission, demand, dry=dry)
        except StoreBusy:
            BUSY_REFUSALS.inc()
            if self.store_resting():  # the store failed while this request waited in line
                return self._unchecked(admission, policy)
            raise store_busy() from None
        except STORE_ERRORS as error:
            self.store_failed(error)
            self._undo_later(admission)
            return self._unchecked(admission, policy)
        if self._undo and not self._undoing:
            self._undoing = True
            self._background(self._undo_unknown_admissions())
        admission.verdict = verdict
        admission.record["store"] = self.store_name
        recorded = admission.record["checks"] = []
        for meter, outcome in zip(admission.meters, verdict.outcomes, strict=False):
            check = {
                "meter": meter.kind,
                "scope": meter.label,
                "limit": meter.limit,
                "remaining": outcome.remaining,
            }
            if meter.shadow:
                check["shadow"], check["would_refuse"] = True, outcome.exceeded
                if outcome.exceeded and not dry:
                    SHADOW_REFUSALS.labels(meter.kind).inc()
            recorded.append(check)
        admission.headers = rate_headers(admission.meters, verdict)
        if not verdict.allowed and not dry:
            assert verdict.failed is not None
            meter = admission.meters[verdict.failed]
            if meter.kind == "budget":
                raise budget_exhausted(meter, admission.checks[verdict.failed], verdict)
            raise limit_exceeded(meter, verdict, admission.headers)
        for meter, outcome in zip(admission.meters, verdict.outcomes, strict=False):
            if outcome.alert and meter.budget is not None and meter.window is not None:
                pct = meter.budget.alert_thresholds_pct[outcome.alert - 1]
                logger.warning("budget alert threshold %s%% reached: %s", pct, meter.label)
                self._raise_alert(meter, demand.end_user if meter.budget.per_user else "", pct)
        return admission

    def _raise_alert(self, meter: Meter, end_user: str, pct: int) -> None:
        budget, window = meter.budget, meter.window
        self._background(run_db(lambda: ledger.alert_raise(budget, window, end_user, pct)))

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._alerts.add(task)
        task.add_done_callback(self._alerts.discard)

    def _undo_later(self, admission: Admission) -> None:
        """The store failed during this admission, which is then served unchecked or refused,
        never with its reservation: if the script ran after all (a hung Redis runs what it was
        sent when it resumes), its budget reservations and concurrency leases must not stay
        held for the lease's ten minutes. Request windows expire on their own within a minute."""
        concurrency = tuple(c.key for c in admission.checks if isinstance(c, ConcurrencyCheck))
        budgets = tuple((c.key, 0) for c in admission.checks if isinstance(c, BudgetCheck))
        if not (concurrency or budgets):
            return
        if len(self._undo) >= _UNDO_MAX:
            self._undo.pop(0)  # its lease expires on its own
        self._undo.append((admission.request_id, Release((), concurrency, budgets)))

    async def _undo_unknown_admissions(self) -> None:
        """Once the store answers again (after what it ran late, since the new answer came
        after it resumed), release what the failed admissions may have reserved."""
        try:
            while self._undo:
                request_id, release = self._undo[0]
                await self.store.settle(release, request_id, at_once=True)
                self._undo.pop(0)
        except STORE_ERRORS as error:
            self.store_failed(error)
        finally:
            self._undoing = False

    def reservation_usd(self, demand: Demand, policy: PolicyRule) -> Decimal:
        output = demand.max_output_tokens or policy.default_max_tokens
        cost = (
            demand.prompt_tokens * demand.input_price_per_mtok
            + output * demand.output_price_per_mtok
        ) / Decimal(1_000_000) + demand.fixed_cost_usd
        return cost.quantize(Decimal("1e-10"), rounding=ROUND_CEILING)

    def _plan_checks(
        self,
        admission: Admission,
        table: QuotaTable,
        demand: Demand,
        reserve: Decimal,
        now: datetime,
    ) -> None:
        # Every level of limits means a dozen checks per request: one pass, no call per check.
        amount = to_nanos(reserve, round_up=True)
        at = now.timestamp()
        charge = admission.token_charge
        checks, meters = admission.checks, admission.meters
        for item in self._plan(table, demand):
            if type(item) is tuple:
                checks.append(item[0])
                meters.append(item[1])
            elif type(item) is _TokensPlan:
                meter = item.meter
                checks.append(WindowCheck(item.key, meter.limit, charge, meter.label, meter.shadow))
                meters.append(meter)
            else:
                assert isinstance(item, _BudgetPlan)
                window = self._window(item.budget.period, item.budget.timezone, at, now)
                current = item.current
                if current is None or current[0] is not window:
                    budget = item.budget
                    meter = Meter(
                        "budget", budget.label, item.limit, budget.shadow, budget, window.window
                    )
                    current = item.current = (window, item.key + window.key, meter)
                meter = current[2]
                checks.append(
                    BudgetCheck(
                        current[1],
                        item.limit,
                        amount,
                        meter.label,
                        max(60, int(window.end_s - at) + 2 * 86_400),
                        item.alert_permille,
                        meter.shadow,
                    )
                )
                meters.append(meter)

    def _plan(self, table: QuotaTable, demand: Demand) -> tuple[_PlanItem, ...]:
        """What a request of these scopes is checked against, less its amounts and budget
        windows: worked out once per table and scope, not per request."""
        if table is not self._plans_table or len(self._plans) > _PLANS_MAX:
            self._plans_table, self._plans = table, {}
        scope = (
            demand.tenant_id, demand.team_id, demand.key_id, demand.end_user, demand.agent,
            demand.budgets_only,
        )  # fmt: skip
        plan = self._plans.get(scope)
        if plan is None:
            plan = self._plans[scope] = tuple(_plan(table, demand))
        return plan

    def _window(self, period: str, zone: str, at: float, now: datetime) -> _Window:
        """The budget window `now` (`at`, in epoch seconds) falls in: computed once per window,
        not per request (a time zone conversion and two strftime calls per budget)."""
        found = self._windows.get((period, zone))
        if found is None or not found.start_s <= at < found.end_s:
            window = window_at(period, zone, now)
            found = self._windows[(period, zone)] = _Window(
                window, window.key, window.start.timestamp(), window.end.timestamp()
            )
        return found

    async def _run(self, admission: Admission, demand: Demand, *, dry: bool) -> Verdict:
        await self._reseed_after_failure(admission, demand)
        checks, request_id = admission.checks, admission.request_id
        verdict = await self.store.admit(checks, request_id, LEASE_SECONDS, dry=dry)
        if verdict.needs_seed:
            for index in verdict.needs_seed:
                await self._seed(admission, index, demand, force=False)
            verdict = await self.store.admit(checks, request_id, LEASE_SECONDS, dry=dry)
            if verdict.needs_seed:
                raise ConnectionError("budget window could not be loaded into the counters")
        return verdict

    async def _reseed_after_failure(self, admission: Admission, demand: Demand) -> None:
        """After the store failed, its budget counters may have missed settlements: reload each
        window from the ledger once before trusting it again."""
        if not self._failures:
            return
        for index, check in enumerate(admission.checks):
            if (
                isinstance(check, BudgetCheck)
                and self._seeded_at_failure.get(check.key) != self._failures
            ):
                # One reload per window, the others wait for it: a reload racing another
                # request's settlement could count its spend twice or not at all.
                if len(self._seed_locks) > _UNDO_MAX:
                    self._seed_locks.clear()  # windows past; at worst two reloads race once
                lock = self._seed_locks.setdefault(check.key, asyncio.Lock())
                async with lock:
                    if self.store_resting():
                        # It failed for the request ahead: do not queue up another timeout.
                        raise ConnectionError("the quota store failed during the reload")
                    if self._seeded_at_failure.get(check.key) != self._failures:
                        await self._seed(admission, index, demand, force=True)

    async def _seed(self, admission: Admission, index: int, demand: Demand, *, force: bool) -> None:
        check, meter = admission.checks[index], admission.meters[index]
        assert isinstance(check, BudgetCheck) and meter.budget and meter.window
        budget, window = meter.budget, meter.window
        held: list[str] = []
        if force:
            # Settlements still waiting to be sent are in the ledger already: applied after
            # the reload, they would count twice.
            await self.store.drain()
            # So are calls recorded but not settled yet (another worker's settlement on its way,
            # a dead worker's, one lost in the failure): the reload counts them as settled.
            held = await self.store.reserved_ids(check.key)
        spent, counted = await run_db(
            lambda: ledger.window_spend_charged(budget, demand.end_user, window, held)
        )
        await self.store.seed(check.key, to_nanos(spent), check.ttl_s, force=force, counted=counted)
        self._seeded_at_failure[check.key] = self._failures

    def store_resting(self) -> bool:
        """After a failure the store is left alone for a second, so that requests do not each
        wait on a dead connection; the next request after that tries it again."""
        return time.monotonic() < self._down_until

    def store_failed(self, error: BaseException) -> None:
        self._failures += 1
        STORE_FAILURES.inc()
        self._down_until = time.monotonic() + _RETRY_STORE_AFTER_S
        logger.error(
            "quota store unavailable (%s: %s): applying each tenant's failure policy",
            type(error).__name__,
            error,
        )

    def _unchecked(self, admission: Admission, policy: PolicyRule) -> Admission:
        kinds = {m.kind for m in admission.meters if not m.shadow}
        if "budget" in kinds and not policy.budgets_fail_open:
            raise store_unavailable("budgets")
        if kinds - {"budget"} and not policy.limits_fail_open:
            raise store_unavailable("rate limits")
        admission.record["store"] = "unavailable: served unchecked by policy"
        UNCHECKED.inc()
        admission.checks, admission.meters = [], []
        return admission

    async def release_reserved(self, release: Release, request_id: str) -> None:
        """Give back what a call that never settled (its worker died) still holds: at once,
        not with the next admission (recovery runs when nothing else may)."""
        try:
            await self.store.settle(release, request_id, at_once=True)
        except STORE_ERRORS as error:
            self.store_failed(error)

    async def settle(self, admission: Admission, *, total_tokens: int, cost_usd: Decimal) -> None:
        """Give back what the request did not use and charge what it cost; never raises."""
        release = admission.release(total_tokens=total_tokens, cost_usd=cost_usd)
        if not (release.window_adjustments or release.concurrency_keys or release.budget_spend):
            return
        try:
            await self.store.settle(release, admission.request_id)
        except STORE_ERRORS as error:
            # The ledger has the charge; the window reloads from it once the store is back.
            self.store_failed(error)
