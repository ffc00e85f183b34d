"""Console forms of the MCP gateway; the services validate again (one code path)."""

from __future__ import annotations

from typing import Any

from django import forms

from routing.mcp_gateway.models import EVERY_TOOL, McpServer
from routing.mcp_gateway.services import MAX_PRICE_USD
from tenants.models import Tenant


class ToolPriceForm(forms.Form):
    server = forms.ModelChoiceField(queryset=McpServer.objects.none(), label="Server")
    tool = forms.CharField(
        max_length=200,
        label="Tool",
        help_text=f"The server's name for it, or {EVERY_TOOL} for every tool not priced alone.",
    )
    price_usd = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=MAX_PRICE_USD,
        decimal_places=10,
        max_digits=16,
        label="Price per call (USD)",
        help_text="Counted in the budgets like model cost. Empty removes the price.",
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["server"]
        field.queryset = McpServer.objects.filter(tenant=tenant).order_by("name")


class ClientCredentialsForm(forms.Form):
    """A server's OAuth client credentials (docs/mcp.md, "Upstream credentials"). The secret is
    write-only: never rendered back, and left empty it keeps the stored one."""

    server = forms.ModelChoiceField(queryset=McpServer.objects.none(), label="Server")
    token_url = forms.URLField(
        required=False, max_length=500, label="Token endpoint", assume_scheme="https"
    )
    client_id = forms.CharField(required=False, max_length=200, label="Client id")
    client_secret = forms.CharField(
        required=False,
        max_length=4000,
        label="Client secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Encrypted at rest, sent only to the token endpoint. Empty keeps the stored one.",
    )
    scope = forms.CharField(required=False, max_length=500, label="Scope")
    audience = forms.CharField(required=False, max_length=500, label="Audience")
    turn_off = forms.BooleanField(
        required=False,
        label="Turn client credentials off",
        help_text="The server then gets its static credential, if it has one.",
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["server"]
        field.queryset = McpServer.objects.filter(tenant=tenant).order_by("name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("turn_off"):
            for name in ("token_url", "client_id"):
                if not data.get(name):
                    self.add_error(name, "Required, unless client credentials are turned off.")
        return data
