"""Console forms for prompts: they validate input (GET filters too) and hand clean values on."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from gateway_site.bounds import INT_MAX, contains_nul
from gateway_site.console.filters import FilterForm
from routing.prompts.models import NAME_PATTERN, PromptVersion


class _Form(forms.Form):
    label_suffix = ""


class PublishForm(_Form):
    """A new version: a system template, optionally a user template, parameters, default model."""

    system = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=100_000,
        label="System template",
        help_text="Variables as {{ name }}; the caller sends them in prompt_variables.",
    )
    user_template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=20_000,
        required=False,
        label="User template (optional)",
        help_text="Sent after the system message, before the caller's own messages.",
    )
    parameters = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Model parameters (JSON)",
        help_text='Defaults for the request, e.g. {"temperature": 0.2}; the caller\'s own win.',
    )
    model = forms.CharField(max_length=200, required=False, label="Default route or model")
    note = forms.CharField(max_length=500, required=False, label="Change note")

    @classmethod
    def initial_from(cls, version: PromptVersion | None) -> dict[str, Any]:
        if version is None:
            return {}
        by_role = {m["role"]: m["content"] for m in reversed(version.messages)}
        return {
            "system": by_role.get("system", ""),
            "user_template": by_role.get("user", ""),
            "parameters": json.dumps(version.parameters) if version.parameters else "",
            "model": version.model,
        }

    def clean_parameters(self) -> dict[str, Any]:
        text = str(self.cleaned_data.get("parameters") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Give an object, e.g. {"temperature": 0.2}.')
        if contains_nul(value):  # stored as jsonb, which refuses \u0000
            raise forms.ValidationError("Null characters are not allowed.")
        return value

    def messages(self) -> list[dict[str, str]]:
        data = self.cleaned_data
        messages = [{"role": "system", "content": data["system"]}]
        if str(data.get("user_template") or "").strip():
            messages.append({"role": "user", "content": data["user_template"]})
        return messages


class PromptCreateForm(PublishForm):
    name = forms.RegexField(
        regex=NAME_PATTERN,
        max_length=128,
        help_text="Letters, digits, '.', '_' and '-'; requests name it as <name>@<label>.",
    )
    description = forms.CharField(max_length=500, required=False)
    field_order = ["name", "description", "system", "user_template", "parameters", "model", "note"]


class LabelMoveForm(_Form):
    label = forms.RegexField(regex=r"^(?![0-9]+$)[a-z0-9][a-z0-9_-]*$", max_length=64)
    version = forms.TypedChoiceField(coerce=int)
    canary_version = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Canary version"
    )
    canary_percent = forms.IntegerField(
        min_value=0, max_value=100, required=False, initial=0, label="Canary share (%)"
    )
    note = forms.CharField(max_length=500, required=False)

    def __init__(self, *args: Any, numbers: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(n, f"v{n}") for n in numbers]
        self.fields["version"].choices = choices  # type: ignore[attr-defined]
        self.fields["canary_version"].choices = [("", "none"), *choices]  # type: ignore[attr-defined]


class DiffForm(_Form):
    old = forms.IntegerField(min_value=1, max_value=INT_MAX)
    new = forms.IntegerField(min_value=1, max_value=INT_MAX)


class RequestsFilterForm(FilterForm):
    failed = forms.BooleanField(required=False, label="Failed only")
    page = forms.IntegerField(min_value=1, max_value=INT_MAX, required=False)


class PinForm(_Form):
    """Hold a team or a key of the tenant to one version."""

    holder = forms.ChoiceField(label="Team or key")
    version = forms.TypedChoiceField(coerce=int)

    def __init__(
        self, *args: Any, numbers: list[int], teams: Any, keys: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._teams = {f"team:{t.pk}": t for t in teams}
        self._keys = {f"key:{k.pk}": k for k in keys}
        self.fields["holder"].choices = [  # type: ignore[attr-defined]
            ("Teams", [(value, t.name) for value, t in self._teams.items()]),
            ("Keys", [(value, f"{k.name} ({k.prefix}…)") for value, k in self._keys.items()]),
        ]
        self.fields["version"].choices = [(n, f"v{n}") for n in numbers]  # type: ignore[attr-defined]

    def chosen_holder(self) -> dict[str, Any]:
        value = self.cleaned_data["holder"]
        return {"team": self._teams.get(value), "api_key": self._keys.get(value)}
