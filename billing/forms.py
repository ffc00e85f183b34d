"""Finance filters (GET): the period and what to group by, validated like any input."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django import forms

from billing import services
from billing.selectors import DIMENSIONS
from gateway_site.console.filters import FilterForm
from gateway_site.console.widgets import iso_date_field, iso_datetime_field
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


class FinanceFilterForm(FilterForm):
    passthrough = frozenset({"format"})
    MAX_DAYS = 366

    period = forms.ChoiceField(choices=list(PRESETS.items()), required=False)
    start = iso_date_field(required=False, label="From (UTC)")
    end = iso_date_field(required=False, label="To (UTC, inclusive)")
    by = forms.ChoiceField(
        choices=[(d, d.title()) for d in DIMENSIONS], required=False, label="Group by"
    )

    def clean(self) -> dict[str, object]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        custom = data.get("period") == "custom" or start or end
        if not custom or "start" in self.errors or "end" in self.errors:
            return data  # a date that does not parse says so beside its field
        if data.get("period") not in ("", None, "custom"):
            raise forms.ValidationError("Choose a period or dates, not both.")
        if not (start and end):
            raise forms.ValidationError("A custom period needs a start and an end date.")
        if end < start:
            self.add_error("end", "The end is before the start.")
        elif (end - start).days + 1 > self.MAX_DAYS:
            self.add_error("end", f"At most {self.MAX_DAYS} days at a time.")
        return data

    def window(self, today: date) -> tuple[date, date]:
        """[start, end) of what was asked; never called on a refused form (see FilterForm)."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        if data.get("start") and data.get("end"):
            return data["start"], data["end"] + timedelta(days=1)
        return preset_range(data.get("period") or "this_month", today)

    def dimension(self) -> str:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("by") or "team"


class UserRequestsFilterForm(FinanceFilterForm):
    # Not stripped: an end user id is matched exactly, spaces and tabs included.
    user = forms.CharField(required=False, max_length=200, strip=False, label="End user")


class PriceForm(forms.Form):
    """A new price version for one deployment (USD per 1M tokens)."""

    label_suffix = ""
    deployment: forms.ModelChoiceField[Deployment] = forms.ModelChoiceField(
        queryset=Deployment.objects.none(), empty_label=None
    )
    input_per_mtok = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=6, label="Input (USD per 1M tokens)"
    )
    output_per_mtok = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=6, label="Output (USD per 1M tokens)"
    )
    cached_input_per_mtok = forms.DecimalField(
        label="Cached input (USD per 1M tokens)",
        min_value=0,
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text="Provider prompt-cache reads; empty: charged as input.",
    )
    per_request_usd = forms.DecimalField(
        min_value=0,
        max_digits=12,
        decimal_places=8,
        required=False,
        initial=0,
        label="Per request (USD)",
    )
    tool_fees = forms.CharField(
        required=False,
        max_length=1000,
        label="Provider-run tool fees (USD per call)",
        help_text=(
            "e.g. web_search=0.025, file_search=0.0025. Empty: the fees in force stay; "
            "none: no fees."
        ),
    )
    effective_from = iso_datetime_field(
        required=False,
        label="Effective from (UTC)",
        help_text="e.g. 2026-12-01 00:00. Empty: now. Past requests keep their cost.",
    )

    def __init__(self, *args: object, deployments: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["deployment"].queryset = deployments  # type: ignore[attr-defined]

    def clean_tool_fees(self) -> dict[str, Decimal] | None:
        """None: the fees in force carry over; {}: none; else {tool type: USD per call}."""
        text = self.cleaned_data["tool_fees"].strip()
        if not text:
            return None
        if text.lower() == "none":
            return {}
        fees: dict[str, Decimal] = {}
        for part in filter(None, (p.strip() for p in re.split(r"[,\n]", text))):
            tool, sep, usd = (piece.strip() for piece in part.partition("="))
            if not sep or not tool or not usd:
                raise forms.ValidationError(
                    f"'{part}': write a tool and its fee, web_search=0.025."
                )
            if tool in fees:
                raise forms.ValidationError(f"'{tool}' is named twice.")
            try:
                fees[tool] = Decimal(usd)
            except InvalidOperation:
                raise forms.ValidationError(f"'{usd}' is not an amount in USD.") from None
            if not fees[tool].is_finite():
                raise forms.ValidationError(f"'{usd}' is not an amount in USD.")
        try:
            services.tool_prices_checked(fees)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return fees
