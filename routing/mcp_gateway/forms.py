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
