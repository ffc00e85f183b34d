"""Console forms for guardrail policies: the spec is YAML, validated by the same schema as the
declarative configuration (routing/guardrails/core/policy.py), with its errors shown."""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from pydantic import ValidationError as SpecError

from routing.guardrails.core.policy import PolicySpec
from routing.guardrails.models import ReviewLabel, ReviewStatus
from tenants.forms import ConsoleForm

# What "Start from" fills the spec with: one per kind of policy.
TEMPLATES: dict[str, str] = {
    "pii": (
        "pii:\n"
        "  entities: {}          # empty: e-mail, phone, card, IBAN, SSN, IP, all masked\n"
        "  restore: false        # put the values back in the answer\n"
        "images:\n"
        "  action: mask          # mask | refuse | record\n"
        "  fallback: refuse      # when an image cannot be read: refuse | record\n"
    ),
    "injection": (
        "injection:\n"
        "  action: quarantine    # block | quarantine | route | flag\n"
        "  threshold: 0.5\n"
        '  route: ""             # restricted route alias for route (or quarantine)\n'
    ),
    "output": (
        "output:\n"
        "  rules:\n"
        "    - name: project-falcon\n"
        "      category: confidential\n"
        "      terms: [Project Falcon]\n"
        "      action: block     # block | flag\n"
    ),
    "schema": (
        "structured_output:\n"
        "  json_schema: {type: object, required: [answer]}\n"
        "  retries: 1\n"
        "  fallback: true\n"
    ),
}
KIND_CHOICES = [
    ("pii", "PII masking"),
    ("injection", "Prompt injection"),
    ("output", "Output rules"),
    ("schema", "Structured output (JSON schema)"),
]


def spec_yaml(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True) if spec else ""


class PolicyForm(ConsoleForm):
    name = forms.SlugField(max_length=64, help_text="Letters, digits and dashes; unique.")
    description = forms.CharField(max_length=500, required=False)
    spec = forms.CharField(
        label="Checks (YAML)",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code"}),
        help_text="Sections pii, images, injection, output, structured_output "
        "(docs/guardrails.md).",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    shadow = forms.BooleanField(
        label="Shadow mode",
        required=False,
        help_text="Record what the policy would do, without masking, refusing or rerouting.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["name"].disabled = True

    def clean_spec(self) -> PolicySpec:
        text = self.cleaned_data["spec"]
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"This is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise forms.ValidationError("The checks must be a mapping of sections.")
        try:
            return PolicySpec.model_validate(data)
        except SpecError as exc:
            raise forms.ValidationError(
                [
                    f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                    for e in exc.errors()
                ]
            ) from None


SCOPE_CHOICES = [("tenant", "The whole tenant"), ("team", "A team"), ("key", "A key")]


class AttachForm(ConsoleForm):
    scope = forms.ChoiceField(choices=[], label="Attach to")
    target = forms.CharField(required=False, label="Which one")

    def __init__(self, *args: Any, teams: Any, keys: Any, routes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teams, self.keys, self.routes = teams, keys, routes
        scope: Any = self.fields["scope"]
        scope.choices = [*SCOPE_CHOICES, ("route", "A route (this tenant's requests on it)")]
        choices = [("", "—")]
        choices += [(f"team:{t.pk}", f"Team {t.name}") for t in teams]
        choices += [(f"key:{k.pk}", f"Key {k.name} ({k.prefix}…)") for k in keys]
        choices += [(f"route:{alias}", f"Route {alias}") for alias in routes]
        self.fields["target"].widget = forms.Select(choices=choices)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope, target = data.get("scope"), data.get("target") or ""
        if scope == "tenant":
            return {"scope": "tenant"}
        kind, _, value = target.partition(":")
        if kind != scope or not value:
            raise forms.ValidationError(f"Choose which {scope} to attach the policy to.")
        found: Any = None
        if scope == "team":
            found = self.teams.filter(pk=int(value)).first() if value.isdigit() else None
        elif scope == "key":
            found = self.keys.filter(pk=int(value)).first() if value.isdigit() else None
        elif scope == "route" and value in self.routes:
            found = value
        if found is None:
            raise forms.ValidationError(f"No such {scope} in this tenant.")
        return {"scope": scope, "target": found}


class DryRunForm(ConsoleForm):
    prompt = forms.CharField(
        label="Paste a prompt",
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class ReviewForm(ConsoleForm):
    status = forms.ChoiceField(
        choices=[
            ("", "—"),
            (ReviewStatus.RELEASED, "Release"),
            (ReviewStatus.DISMISSED, "Dismiss"),
        ],
        required=False,
    )
    label = forms.ChoiceField(choices=[("", "—"), *ReviewLabel.choices], required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("status") and not data.get("label"):
            raise forms.ValidationError("Release, dismiss or label the request.")
        return data
