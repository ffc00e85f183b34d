"""`{{ amount|usd }}`: every amount in the console as billing/money.py shows it (a builtin)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from billing.money import QUANTUM, usd_text

register = template.Library()


@register.filter
def usd(value: object) -> str:
    """Four places, half up. A cost too small to show as 0.0001 says so rather than 0.0000."""
    if value in (None, ""):
        return usd_text(0)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return ""
    if 0 < amount < QUANTUM / 2:
        return f"<{QUANTUM}"
    return usd_text(amount)
