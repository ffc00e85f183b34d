"""Forms of the tenant's audit governance pages: policy, legal holds and erasure requests."""

from __future__ import annotations

from typing import Any

from django import forms

from audit.models import ContentMode
from gateway_site.console.widgets import iso_datetime_field


class ConsoleForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # "End user", as every console form, not "End user:"
        super().__init__(*args, **kwargs)


class AuditPolicyForm(ConsoleForm):
    content_mode = forms.ChoiceField(choices=ContentMode.choices, label="Content kept")
    retention_days = forms.IntegerField(
        min_value=1,
        max_value=36_500,
        required=False,
        label="Retention (days)",
        help_text="Empty keeps records forever. Records under a legal hold are kept regardless.",
    )


class LegalHoldForm(ConsoleForm):
    reason = forms.CharField(max_length=500, help_text="The matter the hold is for.")
    end_user = forms.CharField(
        max_length=200, required=False, help_text="Empty holds every end user's records."
    )
    starts_at = iso_datetime_field(required=False, label="From (UTC)")
    ends_at = iso_datetime_field(required=False, label="Until (UTC)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("starts_at"), data.get("ends_at")
        if start and end and end <= start:
            self.add_error("ends_at", "The end comes after the start.")
        return data


class ErasureRequestForm(ConsoleForm):
    end_user = forms.CharField(max_length=200, help_text="The end user whose content goes.")
    reason = forms.CharField(
        max_length=500, help_text="The lawful basis, e.g. the data-subject request reference."
    )
