from __future__ import annotations

from django import forms


class CachePurgeForm(forms.Form):
    """Within the signed-in tenant: a route, a prompt version, both, or neither (everything)."""

    route = forms.CharField(required=False, max_length=128)
    prompt = forms.RegexField(
        required=False,
        max_length=140,
        regex=r"^[\w.-]+(@\d+)?$",
        error_messages={"invalid": "Write 'name' or 'name@version'."},
    )
