"""Alert rules in the console (platform admins): each alert's threshold, over the environment's."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.activity.services import Actor
from audit.observability.alert_rules import AlertRuleConflict, alert_rule_save, defaults_of
from audit.observability.models import AlertRuleKind
from audit.observability.selectors import alert_rules_all
from gateway_site.console.access import console_context, console_view
from tenants.models import Role


class AlertRuleForm(forms.Form):
    rule = forms.ChoiceField(choices=AlertRuleKind.choices, widget=forms.HiddenInput)
    enabled = forms.BooleanField(required=False, initial=True)
    threshold = forms.FloatField(min_value=0)
    minimum = forms.FloatField(
        min_value=0, label="Least volume", help_text="Attempts, USD, findings or requests."
    )


@console_view(Role.PLATFORM_ADMIN)
def rules(request: HttpRequest) -> HttpResponse:
    ctx = console_context(request)
    base = settings.GATEWAY_ALERTS
    own = {row.rule: row for row in alert_rules_all()}
    posted = None
    if request.method == "POST":
        posted = AlertRuleForm(request.POST, auto_id=f"id_{request.POST.get('rule', '')}_%s")
    status = 200
    if posted is not None:
        status = 400
        if posted.is_valid():
            data = posted.cleaned_data
            try:
                alert_rule_save(
                    rule=data["rule"],
                    enabled=data["enabled"],
                    threshold=data["threshold"],
                    minimum=data["minimum"],
                    creating=request.POST.get("intent") == "create",
                    actor=Actor.user(request.user),
                )
            except AlertRuleConflict as conflict:
                status = 409
                posted.add_error(None, f"{conflict}: reload the page (nothing was changed).")
            else:
                messages.success(request, f"Alert rule {AlertRuleKind(data['rule']).label} saved.")
                return redirect("observability:rules", tenant_slug=ctx.tenant.slug)
    rows = []
    for kind in AlertRuleKind:
        default = defaults_of(base, kind)
        row = own.get(kind)
        initial = {
            "rule": kind.value,
            "enabled": row.enabled if row else True,
            "threshold": row.threshold if row else default[0],
            "minimum": row.minimum if row else default[1],
        }
        form = AlertRuleForm(initial=initial, auto_id=f"id_{kind.value}_%s")
        if posted is not None and posted.data.get("rule") == kind.value:
            form = posted
        rows.append({"kind": kind, "row": row, "default": default, "form": form})
    return render(request, "observability/rules.html", {"rows": rows}, status=status)
