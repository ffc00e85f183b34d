"""Console forms for limits and budgets; the services validate again (one code path)."""

from __future__ import annotations

from typing import Any

from django import forms

from gateway_site.bounds import INT_MAX
from tenants.models import ApiKey, Team, Tenant
from tenants.quotas.models import (
    EACH_AGENT,
    EACH_USER,
    LimitScope,
    Period,
    Scope,
    thresholds_checked,
)


class _ScopeForm(forms.Form):
    scope = forms.ChoiceField(choices=Scope.choices, label="Applies to")
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, label="Team")
    api_key = forms.ModelChoiceField(queryset=ApiKey.objects.none(), required=False, label="Key")
    end_user = forms.CharField(
        required=False,
        max_length=200,
        label="End user",
        help_text=f"An end user's id, or {EACH_USER} for each end user separately.",
    )
    shadow = forms.BooleanField(
        required=False, label="Shadow mode (measure and record, do not enforce)"
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team_field: Any = self.fields["team"]
        key_field: Any = self.fields["api_key"]
        team_field.queryset = Team.objects.filter(tenant=tenant).order_by("name")
        key_field.queryset = ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).order_by(
            "name"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        if scope == Scope.TEAM and not data.get("team"):
            self.add_error("team", "Choose the team this applies to.")
        if scope == Scope.KEY and not data.get("api_key"):
            self.add_error("api_key", "Choose the key this applies to.")
        if scope == Scope.USER and not data.get("end_user"):
            self.add_error("end_user", f"Name the end user, or {EACH_USER} for each of them.")
        return data


class RateLimitForm(_ScopeForm):
    scope = forms.ChoiceField(choices=LimitScope.choices, label="Applies to")
    agent = forms.CharField(
        required=False,
        max_length=200,
        label="Agent",
        help_text=f"An agent's name (e.g. codex, claude-code), or {EACH_AGENT} for each agent.",
    )
    # The columns are PostgreSQL integers: a larger number is a form error, not a DataError.
    requests_per_minute = forms.IntegerField(
        required=False, min_value=1, max_value=INT_MAX, label="Requests per minute"
    )
    tokens_per_minute = forms.IntegerField(
        required=False, min_value=1, max_value=INT_MAX, label="Tokens per minute"
    )
    max_concurrent = forms.IntegerField(
        required=False, min_value=1, max_value=INT_MAX, label="Requests at a time"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(
            data.get(f) for f in ("requests_per_minute", "tokens_per_minute", "max_concurrent")
        ):
            raise forms.ValidationError("Set at least one of the three limits.")
        if data.get("scope") == LimitScope.AGENT and not data.get("agent"):
            self.add_error("agent", f"Name the agent, or {EACH_AGENT} for each of them.")
        return data


class BudgetForm(_ScopeForm):
    amount_usd = forms.DecimalField(
        min_value=0, max_digits=14, decimal_places=4, label="Amount (USD)"
    )
    period = forms.ChoiceField(choices=Period.choices, initial=Period.MONTH, label="Per")
    timezone = forms.CharField(max_length=64, initial="UTC", label="Timezone (IANA name)")
    alert_thresholds_pct = forms.CharField(
        initial="50, 80, 95",
        label="Alert at (% of the amount, comma-separated)",
        max_length=40,
    )

    def clean_alert_thresholds_pct(self) -> list[int]:
        text = self.cleaned_data["alert_thresholds_pct"]
        try:
            return thresholds_checked(
                [int(part) for part in text.replace(" ", "").split(",") if part]
            )
        except ValueError as exc:
            message = str(exc) if "threshold" in str(exc) else "Whole percentages, e.g. 50, 80, 95."
            raise forms.ValidationError(message) from None


class ApprovalRuleForm(_ScopeForm):
    """A cost pre-approval threshold for the tenant, a team or a key (not for end users)."""

    threshold_usd = forms.DecimalField(
        min_value=0,
        max_digits=12,
        decimal_places=4,
        label="Hold requests predicted to cost more than (USD)",
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, tenant=tenant, **kwargs)
        scope: Any = self.fields["scope"]
        scope.choices = [c for c in Scope.choices if c[0] != Scope.USER]
        del self.fields["end_user"]


class ApprovalDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("refuse", "Refuse")])
    note = forms.CharField(required=False, max_length=500, label="Note (optional)")
