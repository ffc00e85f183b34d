"""Rate limits, budgets and the spend ledger.

A limit or budget applies to one scope: a tenant, a team, a key, or end users of a tenant (one
named user, or `*` for each of them separately). A request must fit every scope that applies.
"""

from django.db import models
from django.db.models import Q


class Scope(models.TextChoices):
    TENANT = "tenant", "Tenant"
    TEAM = "team", "Team"
    KEY = "key", "Key"
    USER = "user", "End user"


EACH_USER = "*"
EACH_AGENT = "*"


class LimitScope(models.TextChoices):
    """A rate limit's scopes: a budget's, and agents (routing/agent_identity.py). Budgets have
    no agent scope: the spend ledger they are summed from keeps no agent."""

    TENANT = "tenant", "Tenant"
    TEAM = "team", "Team"
    KEY = "key", "Key"
    USER = "user", "End user"
    AGENT = "agent", "Agent"


class ScopedRule(models.Model):
    scope = models.CharField(max_length=8, choices=Scope.choices)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(
        "tenants.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # For scope "user": one end user's id, or "*" for every end user, each on their own.
    end_user = models.CharField(max_length=200, blank=True, default="")
    # Shadow mode: evaluated, recorded and metered, never enforced.
    shadow = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def scope_label(self) -> str:
        if self.scope == Scope.TEAM and self.team is not None:
            return f"team '{self.team.slug}'"
        if self.scope == Scope.KEY and self.api_key is not None:
            return f"key '{self.api_key.name}'"
        if self.scope == Scope.USER:
            return "each end user" if self.end_user == EACH_USER else f"end user '{self.end_user}'"
        return f"tenant '{self.tenant.slug}'"


def _one_per_scope(kind: str, also: list[str] | None = None) -> list[models.BaseConstraint]:
    """At most one rule per scope (and period): one partial unique index per kind of scope,
    which every database enforces the same way (no reliance on NULLs being distinct or not)."""
    extra = also or []
    where = {
        Scope.TENANT: ["tenant"],
        Scope.TEAM: ["team"],
        Scope.KEY: ["api_key"],
        Scope.USER: ["tenant", "end_user"],
    }
    return [
        models.UniqueConstraint(
            fields=[*fields, *extra],
            condition=Q(scope=scope),
            name=f"one_{kind}_per_{scope}",
        )
        for scope, fields in where.items()
    ]


class RateLimit(ScopedRule):
    """Requests and tokens per minute, and requests in flight, for one scope."""

    scope = models.CharField(max_length=8, choices=LimitScope.choices)
    # For scope "agent": one agent's name, or "*" for every agent, each on its own.
    agent = models.CharField(max_length=200, blank=True, default="")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_concurrent = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            *_one_per_scope("rate_limit"),
            models.UniqueConstraint(
                fields=["tenant", "agent"],
                condition=Q(scope=LimitScope.AGENT),
                name="one_rate_limit_per_agent",
            ),
        ]

    def __str__(self) -> str:
        return f"rate limit of {self.scope_label()}"

    def scope_label(self) -> str:
        if self.scope == LimitScope.AGENT:
            return "each agent" if self.agent == EACH_AGENT else f"agent '{self.agent}'"
        return super().scope_label()


class Period(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week (from Monday)"
    MONTH = "month", "Month"


DEFAULT_ALERT_THRESHOLDS_PCT = (50, 80, 95)


def default_alert_thresholds() -> list[int]:
    return list(DEFAULT_ALERT_THRESHOLDS_PCT)


def thresholds_checked(values: list[int]) -> list[int]:
    """Sorted, distinct percentages between 1 and 100 (at least one)."""
    if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise ValueError("alert thresholds are whole percentages, e.g. 50, 80, 95")
    if any(not 1 <= v <= 100 for v in values):
        raise ValueError("each alert threshold is between 1 and 100 (%)")
    if len(values) > 5:
        raise ValueError("at most 5 alert thresholds")
    return sorted(set(values))


class Budget(ScopedRule):
    """A spend limit in USD over a calendar window; spend is read from the ledger, never reset."""

    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    timezone = models.CharField(max_length=64, default="UTC")
    # Alert once per window at each of these shares of the amount (spend plus reservations).
    alert_thresholds_pct = models.JSONField(default=default_alert_thresholds)

    class Meta:
        constraints = _one_per_scope("budget", also=["period"])

    def __str__(self) -> str:
        adjective = {"day": "daily", "week": "weekly", "month": "monthly"}[self.period]
        return f"{adjective} budget of {self.scope_label()}"


class StoreFailure(models.TextChoices):
    OPEN = "open", "Serve the request unchecked"
    CLOSED = "closed", "Refuse the request (503)"


class OverCeiling(models.TextChoices):
    REJECT = "reject", "Reject the request"
    DOWNGRADE = "downgrade", "Send it to the cheaper route"


class QuotaPolicy(models.Model):
    """A tenant's choices for when the counters are unreachable, and its per-request ceiling."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="quota_policy"
    )
    on_store_failure_limits = models.CharField(
        max_length=8, choices=StoreFailure.choices, default=StoreFailure.OPEN
    )
    on_store_failure_budgets = models.CharField(
        max_length=8, choices=StoreFailure.choices, default=StoreFailure.CLOSED
    )
    # Cost pre-approval: a request whose worst-case cost is above this is rejected or downgraded.
    max_request_cost_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True
    )
    over_ceiling = models.CharField(
        max_length=10, choices=OverCeiling.choices, default=OverCeiling.REJECT
    )
    downgrade_route = models.CharField(max_length=128, blank=True, default="")
    # max_tokens assumed for the reservation when a request does not set one.
    default_max_tokens = models.PositiveIntegerField(default=4096)

    def __str__(self) -> str:
        return f"quota policy of {self.tenant}"


class SpendEntry(models.Model):
    """The ledger: one append-only row per charged request (or adjustment).

    A budget's spend in a window is the sum of the entries in it; nothing is ever zeroed.
    Written in the same transaction as the request's audit record.
    """

    request_id = models.CharField(max_length=40, blank=True, default="")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("tenants.Team", on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey(
        "tenants.ApiKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    end_user = models.CharField(max_length=200, blank=True, default="")
    amount_usd = models.DecimalField(max_digits=16, decimal_places=10)
    # The request's start: the window a request is charged to is the one it was admitted in.
    occurred_at = models.DateTimeField()
    estimated = models.BooleanField(default=False)  # usage counted locally, not reported

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "occurred_at"], name="spend_tenant_time"),
            models.Index(fields=["team", "occurred_at"], name="spend_team_time"),
            models.Index(fields=["api_key", "occurred_at"], name="spend_key_time"),
            models.Index(fields=["tenant", "end_user", "occurred_at"], name="spend_user_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["request_id"],
                condition=~Q(request_id=""),
                name="one_spend_entry_per_request",
            )
        ]

    def __str__(self) -> str:
        return f"{self.request_id or 'adjustment'}: ${self.amount_usd}"


class BudgetAlert(models.Model):
    """A budget window reached one of its alert thresholds (recorded once per threshold)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    window_start = models.DateTimeField()
    end_user = models.CharField(max_length=200, blank=True, default="")
    threshold_pct = models.PositiveSmallIntegerField()
    raised_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "window_start", "end_user", "threshold_pct"],
                name="one_alert_per_threshold_and_window",
            )
        ]

    def __str__(self) -> str:
        return f"{self.budget} reached {self.threshold_pct}% ({self.window_start:%Y-%m-%d})"


class ApprovalRule(ScopedRule):
    """Cost pre-approval: a request whose predicted (worst-case) cost is above `threshold_usd` is
    held until a budget owner approves it (tenants/quotas/approvals.py). Scopes: tenant, team or
    key; the most specific rule that applies is the one used."""

    threshold_usd = models.DecimalField(max_digits=12, decimal_places=4)

    class Meta:
        constraints = _one_per_scope("approval_rule")

    def __str__(self) -> str:
        return f"pre-approval above ${self.threshold_usd} for {self.scope_label()}"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a decision"
    APPROVED = "approved", "Approved: the client may retry once"
    REFUSED = "refused", "Refused"
    USED = "used", "Approved and used"


class CostApproval(models.Model):
    """One held request: what it would cost, for which key and body, and what was decided.

    Bound to the key and to a hash of the request's body: the approval lets exactly that request
    through, once, before `expires_at` (a pending one expires undecided at that moment too)."""

    public_id = models.CharField(max_length=40, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("tenants.Team", on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.CASCADE, related_name="+")
    body_sha256 = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True, default="")
    end_user = models.CharField(max_length=200, blank=True, default="")
    predicted_cost_usd = models.DecimalField(max_digits=18, decimal_places=10)
    threshold_usd = models.DecimalField(max_digits=12, decimal_places=4)
    rule_label = models.CharField(max_length=200, blank=True, default="")
    held_request_id = models.CharField(max_length=40, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=200, blank=True, default="")
    decision_note = models.CharField(max_length=500, blank=True, default="")
    used_at = models.DateTimeField(null=True, blank=True)
    used_request_id = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["tenant", "status", "-created_at"])]

    def __str__(self) -> str:
        return self.public_id
