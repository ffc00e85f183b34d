"""What other apps hear of a tenant's objects, so that tenants/ imports none of them."""

from __future__ import annotations

from django.dispatch import Signal

# A key was rotated (tenants.services.key_rotate), inside its transaction: `key` (the old one)
# and `successor`. Every app that scopes something to a key gives the successor the same
# (limits, budgets, guardrail policies, tool grants, prompt pins): "the same scope", never
# less, and never wider (a key's tool grants narrow its team's).
key_rotated = Signal()
