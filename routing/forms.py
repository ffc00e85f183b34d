"""Console forms for providers, deployments and routes (the platform pages, routing/console_views.py).

They only shape input: every rule (the egress policy, the credential kept unless the origin moves,
valid aliases) is the services' own, and their refusals come back as field errors.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet

from routing.core.translate.responses_tools import hosted_tool_problem
from routing.models import Deployment, Provider, ProviderKind, Route

NAME_HELP = "Lowercase letters, digits, '-' and '_'."
MAX_TARGETS = 6


class ProviderForm(forms.Form):
    name = forms.SlugField(max_length=64, help_text=NAME_HELP)
    kind = forms.ChoiceField(choices=ProviderKind.choices)
    base_url = forms.URLField(max_length=500, label="Base URL", assume_scheme="https")
    # Write-only: never rendered back (render_value=False), an empty field keeps the stored one.
    credential = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: never shown again. Leave empty to keep the stored credential.",
    )
    region = forms.CharField(max_length=32, required=False)
    requests_per_minute = forms.IntegerField(
        min_value=1, required=False, label="Capacity: requests per minute"
    )
    tokens_per_minute = forms.IntegerField(
        min_value=1, required=False, label="Capacity: tokens per minute"
    )
    capacity_queue_seconds = forms.FloatField(
        min_value=0,
        max_value=600,
        initial=0,
        required=False,
        label="Wait for capacity (seconds)",
        help_text="How long a request may wait for capacity before it falls over or gets a 429.",
    )


class DeploymentForm(forms.Form):
    name = forms.RegexField(
        regex=r"^[a-zA-Z0-9][a-zA-Z0-9._:-]*$",
        max_length=128,
        help_text="The public model name clients may ask for.",
    )
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), to_field_name="name")
    upstream_model = forms.CharField(max_length=200, label="Upstream model")
    input_price_per_mtok = forms.DecimalField(
        min_value=Decimal(0), max_digits=12, decimal_places=6, label="Input, USD per 1M tokens"
    )
    output_price_per_mtok = forms.DecimalField(
        min_value=Decimal(0), max_digits=12, decimal_places=6, label="Output, USD per 1M tokens"
    )

    def __init__(self, *args: Any, providers: QuerySet[Provider], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["provider"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = providers


class RouteForm(forms.Form):
    alias = forms.CharField(
        max_length=128, help_text="The model name clients send; '*' makes it a pattern."
    )
    description = forms.CharField(max_length=500, required=False)
    strategy = forms.ChoiceField(choices=Route.Strategy.choices, initial=Route.Strategy.ORDERED)
    sticky = forms.BooleanField(
        required=False, help_text="Weighted: each end user stays on one side."
    )
    timeout_seconds = forms.FloatField(
        min_value=0.1, required=False, label="Timeout per attempt (seconds)"
    )
    first_token_timeout_seconds = forms.FloatField(
        min_value=0.1, required=False, label="First-token timeout (seconds)"
    )
    hosted_tools = forms.ChoiceField(
        choices=Route.HostedTools.choices, label="Hosted tools (web_search, file_search, …)"
    )
    forward_hosted_tools = forms.CharField(
        max_length=500,
        required=False,
        label="Hosted tools to forward",
        help_text="Tool types (e.g. web_search, file_search), comma-separated, sent on to a "
        "deployment that speaks the Responses API natively. Empty: none.",
    )
    cache_mode = forms.ChoiceField(choices=Route.CacheMode.choices, label="Response cache")
    cache_ttl_seconds = forms.IntegerField(min_value=1, initial=3600, label="Cache TTL (seconds)")
    cache_scope = forms.ChoiceField(choices=Route.CacheScope.choices, label="Cache scope")
    cache_similarity = forms.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        label="Least similarity served (semantic)",
        help_text="Empty: the calibrated default.",
    )

    def __init__(
        self, *args: Any, deployments: QuerySet[Deployment], slots: int = MAX_TARGETS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # At least one empty slot more than a route has, so an edit never drops a target.
        self.slots = max(slots, MAX_TARGETS)
        choices = [("", "—"), *((d.name, d.name) for d in deployments)]
        for index in range(self.slots):
            label = "Primary deployment" if index == 0 else f"Fallback {index}"
            self.fields[f"target_{index}"] = forms.ChoiceField(
                choices=choices, required=index == 0, label=label
            )
            self.fields[f"weight_{index}"] = forms.IntegerField(
                min_value=1, initial=1, required=False, label=f"Weight of {label.lower()}"
            )
        self._deployments = {d.name: d for d in deployments}

    def target_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"target_{i}"], self[f"weight_{i}"]) for i in range(self.slots)]

    def clean_forward_hosted_tools(self) -> list[str]:
        kinds = [k.strip() for k in self.cleaned_data["forward_hosted_tools"].split(",")]
        kinds = [k for k in kinds if k]
        if problem := next(filter(None, map(hosted_tool_problem, kinds)), None):
            raise forms.ValidationError(problem)
        return kinds

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        targets: list[Deployment] = []
        weights: list[int] = []
        for index in range(self.slots):
            name = data.get(f"target_{index}")
            if not name:
                continue
            deployment = self._deployments[name]
            if deployment in targets:
                self.add_error(f"target_{index}", "A deployment may appear only once.")
                continue
            targets.append(deployment)
            weights.append(data.get(f"weight_{index}") or 1)
        data["targets"], data["weights"] = targets, weights
        return data
