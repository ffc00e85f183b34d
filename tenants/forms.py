"""Console forms: they validate input (GET filters too) and hand clean values to the services."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from gateway_site.console.filters import FilterForm
from routing.selectors import pin_problems
from tenants.models import Role, Team, Tenant

GRACE_CHOICES = [
    ("0", "None: the old key stops now"),
    ("300", "5 minutes"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
]
EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]


class ConsoleForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # labels read "Name", not "Name:"
        super().__init__(*args, **kwargs)


class TeamChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class TeamsChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class KeyCreateForm(ConsoleForm):
    name = forms.CharField(max_length=200, help_text="To tell your keys apart, e.g. 'laptop'.")
    team = TeamChoiceField(queryset=Team.objects.none(), empty_label=None)
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every model the team may use.",
    )
    expires_in_days = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    # Limits and a budget of the key's own, on top of its team's and tenant's (tenants/quotas).
    requests_per_minute = forms.IntegerField(
        required=False, min_value=1, max_value=10_000_000, label="Requests per minute (optional)"
    )
    tokens_per_minute = forms.IntegerField(
        required=False, min_value=1, max_value=10_000_000_000, label="Tokens per minute (optional)"
    )
    budget_usd = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_value=Decimal("1000000000"),
        max_digits=14,
        decimal_places=4,
        label="Budget in USD (optional)",
        help_text="The key is refused once it has spent this much in the period.",
    )
    budget_period = forms.ChoiceField(
        choices=[("month", "Per month"), ("week", "Per week"), ("day", "Per day")],
        required=False,
        label="Budget period",
    )

    def __init__(self, *args: Any, teams: Any, models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["team"]
        field.queryset = teams
        self.fields["allowed_models"].choices = [(m, m) for m in models]  # type: ignore[attr-defined]

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()

    def expires_at(self) -> Any:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=int(days)) if days else None


class KeyRotateForm(ConsoleForm):
    grace_seconds = forms.TypedChoiceField(
        choices=GRACE_CHOICES, coerce=int, initial="3600", label="Old key keeps working for"
    )

    def grace(self) -> timedelta:
        return timedelta(seconds=self.cleaned_data["grace_seconds"])


class PlaygroundForm(ConsoleForm):
    api_key = forms.CharField(
        label="Your key",
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Sent once to the gateway with this request; never stored.",
    )
    model = forms.ChoiceField()
    compare_model = forms.ChoiceField(
        required=False, label="Compare with", help_text="A second model answers side by side."
    )
    system = forms.CharField(
        required=False,
        max_length=8000,
        label="System prompt",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    temperature = forms.DecimalField(
        required=False, min_value=0, max_value=2, decimal_places=2, label="Temperature"
    )
    max_tokens = forms.IntegerField(
        required=False, min_value=1, max_value=32768, label="Max tokens"
    )
    stream = forms.BooleanField(required=False, label="Stream the answer")
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=8000)
    # The conversation so far of each side (multi-turn), carried by the page: JSON turns.
    history_a = forms.CharField(required=False, widget=forms.HiddenInput, max_length=200_000)
    history_b = forms.CharField(required=False, widget=forms.HiddenInput, max_length=200_000)

    MAX_TURNS = 50

    def __init__(self, *args: Any, models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(m, m) for m in models]  # type: ignore[attr-defined]
        self.fields["compare_model"].choices = [  # type: ignore[attr-defined]
            ("", "No comparison"),
            *[(m, m) for m in models],
        ]

    def _history(self, name: str) -> list[dict[str, str]]:
        raw = self.cleaned_data.get(name) or ""
        if not raw:
            return []
        try:
            turns = json.loads(raw)
        except ValueError:
            raise forms.ValidationError(
                "The conversation could not be read; start a new one."
            ) from None
        if not isinstance(turns, list) or len(turns) > self.MAX_TURNS * 2:
            raise forms.ValidationError("The conversation is too long; start a new one.")
        for turn in turns:
            if (
                not isinstance(turn, dict)
                or set(turn) != {"role", "content"}
                or turn["role"] not in ("user", "assistant")
                or not isinstance(turn["content"], str)
            ):
                raise forms.ValidationError("The conversation could not be read; start a new one.")
        return turns

    def clean_history_a(self) -> list[dict[str, str]]:
        return self._history("history_a")

    def clean_history_b(self) -> list[dict[str, str]]:
        return self._history("history_b")


class TeamForm(ConsoleForm):
    slug = forms.SlugField(max_length=64)
    name = forms.CharField(max_length=200)
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every model the tenant may use.",
    )

    def __init__(self, *args: Any, models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_models"].choices = [(m, m) for m in models]  # type: ignore[attr-defined]


class PinsField(forms.Field):
    """Version pins typed as lines of `model = deployment`; a dict once cleaned."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return "\n".join(f"{model} = {version}" for model, version in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, str]:
        pins: dict[str, str] = {}
        for number, line in enumerate(str(value or "").splitlines(), start=1):
            if not line.strip():
                continue
            model, sep, version = (part.strip() for part in line.partition("="))
            if not (sep and model and version):
                raise forms.ValidationError(
                    f"Line {number}: write 'model = deployment', not '{line.strip()}'."
                )
            if model in pins:
                raise forms.ValidationError(f"Line {number}: '{model}' is pinned twice.")
            pins[model] = version
        return pins


class TeamEditForm(TeamForm):
    model_pins = PinsField(
        required=False,
        label="Version pins",
        help_text=(
            "One per line, model = deployment (or its exact upstream model). Requests of this "
            "team for that model go to that version only, never to another. Empty: no pins."
        ),
    )

    def __init__(self, *args: Any, models: list[str], tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, models=models, **kwargs)
        self.tenant = tenant

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("model_pins") and "allowed_models" in cleaned:
            problems = pin_problems(
                model_pins=cleaned["model_pins"],
                tenant=self.tenant,
                team_models=cleaned["allowed_models"],
            )
            for why in problems.values():
                self.add_error("model_pins", f"{why}.")
        return cleaned


class TenantModelsForm(ConsoleForm):
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every model of the gateway.",
    )

    def __init__(self, *args: Any, models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_models"].choices = [(m, m) for m in models]  # type: ignore[attr-defined]


def _team_field(teams: Any) -> TeamsChoiceField:
    return TeamsChoiceField(queryset=teams, required=False, widget=forms.CheckboxSelectMultiple)


class MemberForm(ConsoleForm):
    role = forms.ChoiceField(
        choices=[(r.value, r.label) for r in Role if r != Role.PLATFORM_ADMIN],
        initial=Role.DEVELOPER,
    )

    def __init__(self, *args: Any, teams: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["teams"] = _team_field(teams)
        self.order_fields(self.field_order)


class MemberAddForm(MemberForm):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(
        required=False,
        min_length=12,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty for a member who signs in through single sign-on.",
    )

    field_order = ["username", "email", "role", "teams", "password"]


class ActivityFilterForm(FilterForm):
    passthrough = frozenset({"page"})

    q = forms.CharField(required=False, max_length=200, label="Search")
    action = forms.CharField(required=False, max_length=64)
