"""Finance filters (GET): the period and what to group by, validated like any input."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms

from billing.selectors import DIMENSIONS
from routing.models import Deployment

PRESETS = {
    "this_month": "This month",
    "last_month": "Last month",
    "last_30_days": "Last 30 days",
    "custom": "Custom",
}


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """[start, end) in whole days."""
    first = today.replace(day=1)
    if preset == "last_month":
        return (first - timedelta(days=1)).replace(day=1), first
    if preset == "last_30_days":
        return today - timedelta(days=29), today + timedelta(days=1)
    return first, today + timedelta(days=1)


class FinanceFilterForm(forms.Form):
    period = forms.ChoiceField(choices=list(PRESETS.items()), required=False)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        required=False,
        label="End (inclusive)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    by = forms.ChoiceField(
        choices=[(d, d.title()) for d in DIMENSIONS], required=False, label="Group by"
    )

    def window(self, today: date) -> tuple[date, date]:
        data = self.cleaned_data if self.is_valid() else {}
        preset = data.get("period") or "this_month"
        if preset == "custom" and data.get("start") and data.get("end"):
            start, last = data["start"], data["end"]
            if last < start:
                start, last = last, start
            return start, min(last, start + timedelta(days=366)) + timedelta(days=1)
        return preset_range(preset, today)

    def dimension(self) -> str:
        data = self.cleaned_data if self.is_valid() else {}
        return data.get("by") or "team"


class PriceForm(forms.Form):
    """A new price version for one deployment (USD per 1M tokens)."""

    label_suffix = ""
    deployment: forms.ModelChoiceField[Deployment] = forms.ModelChoiceField(
        queryset=Deployment.objects.none(), empty_label=None
    )
    input_per_mtok = forms.DecimalField(min_value=0, max_digits=12, decimal_places=6)
    output_per_mtok = forms.DecimalField(min_value=0, max_digits=12, decimal_places=6)
    cached_input_per_mtok = forms.DecimalField(
        min_value=0,
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text="Provider prompt-cache reads; empty: charged as input.",
    )
    per_request_usd = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=8, required=False, initial=0
    )
    effective_from = forms.DateTimeField(
        required=False,
        help_text="UTC, e.g. 2026-12-01 00:00. Empty: now. Past requests keep their cost.",
    )

    def __init__(self, *args: object, deployments: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["deployment"].queryset = deployments  # type: ignore[attr-defined]
