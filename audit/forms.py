"""The compliance search, validated like any form (GET filters too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AuditStatus, RecordKind
from audit.selectors import MAX_SEARCH_WORDS, AuditFilters, search_words
from gateway_site.bounds import BIGINT_MAX, INT_MAX
from gateway_site.console.filters import FilterForm
from gateway_site.console.widgets import iso_datetime_field
from tenants.models import ApiKey, Team, Tenant

STATUS_CHOICES = [("", "Any status"), *AuditStatus.choices]
KIND_CHOICES = [("", "Requests and tool calls"), *RecordKind.choices]


class AuditSearchForm(FilterForm):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Prompt or response text",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. rebalance bonds"}),
    )
    end_user = forms.CharField(required=False, max_length=200, label="End user (advisor)")
    agent = forms.CharField(
        required=False, max_length=200, label="Agent", help_text="e.g. claude-code or codex"
    )
    since = iso_datetime_field(required=False, label="From (UTC)")
    until = iso_datetime_field(required=False, label="Until (UTC)")
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="Any team"
    )
    key = forms.ModelChoiceField(
        queryset=ApiKey.objects.none(), required=False, empty_label="Any key", label="Key"
    )
    kind = forms.ChoiceField(choices=KIND_CHOICES, required=False, label="Kind")
    model = forms.CharField(required=False, max_length=200, label="Model or tool")
    provider = forms.CharField(required=False, max_length=64)
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    finding = forms.CharField(
        required=False, max_length=64, label="Guardrail finding", help_text="e.g. pii or email"
    )
    prompt_name = forms.CharField(required=False, max_length=128, label="Prompt")
    prompt_version = forms.IntegerField(
        required=False, min_value=1, max_value=INT_MAX, label="Prompt version"
    )
    # As the records' own column holds costs: a bound the database could not compare is refused.
    min_cost = forms.DecimalField(
        required=False, min_value=0, max_digits=16, decimal_places=10, label="Cost from (USD)"
    )
    max_cost = forms.DecimalField(
        required=False, min_value=0, max_digits=16, decimal_places=10, label="Cost to (USD)"
    )
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team: Any = self.fields["team"]
        team.queryset = Team.objects.filter(tenant=tenant).order_by("name")
        key: Any = self.fields["key"]
        key.queryset = ApiKey.objects.filter(tenant=tenant).order_by("name")

    MAIN = ("q", "end_user", "since", "until")

    def clean_q(self) -> str:
        text: str = self.cleaned_data.get("q") or ""
        if not text.strip():
            return ""
        words = search_words(text)
        if not words:
            raise forms.ValidationError(
                "Type at least one word (letters or digits): punctuation alone is not searched."
            )
        if len(words) > MAX_SEARCH_WORDS:
            raise forms.ValidationError(
                f"Search for at most {MAX_SEARCH_WORDS} words at a time (this has {len(words)})."
            )
        return text

    def clean_before(self) -> str:
        raw: str = self.cleaned_data.get("before") or ""
        if raw and parse_cursor(raw) is None:
            # Read as "no cursor", it would show page 1 again: a loop reading pages never ends.
            raise forms.ValidationError(
                "Not a page position of this search: start again from the first page."
            )
        return raw

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since > until:
            self.add_error("until", "Until is before From: no record could match.")
        return data

    def clean_since(self) -> datetime | None:
        return _in_utc(self.cleaned_data.get("since"))

    def clean_until(self) -> datetime | None:
        return _in_utc(self.cleaned_data.get("until"))

    def more_fields(self) -> list[Any]:
        """The filters folded under "More filters" (all but the main ones and the cursor)."""
        return [self[name] for name in self.fields if name not in (*self.MAIN, "before")]

    def more_used(self) -> bool:
        return any(field.value() not in (None, "") for field in self.more_fields())

    def filters(self) -> AuditFilters:
        """The search asked for: no filter when unbound. A refused form has no search (a filter
        dropped for its bad value would widen it), so asking for one is a programming error."""
        if self.refused:
            raise ValueError("invalid filters must be shown, never searched without them")
        data = self.cleaned_data if self.is_bound else {}
        return AuditFilters(
            text=data.get("q") or "",
            since=_aware(data.get("since")),
            until=_aware(data.get("until")),
            team_id=data["team"].pk if data.get("team") else None,
            end_user=(data.get("end_user") or "").strip(),
            agent=(data.get("agent") or "").strip(),
            api_key_id=data["key"].pk if data.get("key") else None,
            model=(data.get("model") or "").strip(),
            provider=(data.get("provider") or "").strip(),
            status=data.get("status") or "",
            finding=(data.get("finding") or "").strip(),
            prompt_name=(data.get("prompt_name") or "").strip(),
            prompt_version=data.get("prompt_version"),
            min_cost=data.get("min_cost"),
            max_cost=data.get("max_cost"),
            kind=data.get("kind") or "",
        )

    def cursor(self) -> tuple[datetime, int] | None:
        """The keyset position of the next page: `<started_at ISO>|<id>`."""
        raw = (self.cleaned_data.get("before") or "") if self.is_bound and self.is_valid() else ""
        return parse_cursor(raw)


def parse_cursor(raw: str) -> tuple[datetime, int] | None:
    """A keyset position `<started_at ISO>|<id>` (audit.presenters.next_page_query); None when
    it does not read as one (the first page)."""
    at_text, _, id_text = raw.partition("|")
    try:
        at = parse_datetime(at_text) if at_text else None
    except ValueError:  # well formed but not a date, e.g. month 13: no cursor, first page
        at = None
    if at is None or not id_text.isdigit() or int(id_text) > BIGINT_MAX:
        return None
    return at, int(id_text)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _in_utc(moment: datetime | None) -> datetime | None:
    """The moment in UTC (no offset, UTC meant); the database takes offsets up to 15:59 only, and
    a moment at the calendar's very edge has no UTC form: refused, never searched without it."""
    if moment is None or not timezone.is_aware(moment):
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise forms.ValidationError("This moment is outside the calendar in UTC.") from None


class ChainVerifyForm(forms.Form):
    since = iso_datetime_field(required=False, label="From (UTC)")
    until = iso_datetime_field(required=False, label="Until (UTC)")
