"""The management API (`/api/v1/`): the same services as the console and the YAML, called with
the admin key as the actor, so every change lands in the activity log."""

from __future__ import annotations

from ninja import NinjaAPI

from management.api import keys, platform, tenancy
from management.auth import AdminKeyAuth
from management.errors import install_error_handlers

DESCRIPTION = """\
Manage tenants, teams, members, virtual keys, providers, deployments and routes.

Authenticate with an admin key: `Authorization: Bearer gwa-…` (create the first one with
`manage.py create_admin_key --platform --name …`). A tenant key sees and changes only its tenant;
anything outside it answers 404, as if it did not exist. Errors are always
`{"error": {"code", "message", "fields"}}`. Guide: docs/management_api.md.
"""


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="AI gateway: management API",
        version="1",
        description=DESCRIPTION,
        urls_namespace="management",
        auth=AdminKeyAuth(),
        docs_url=None,  # served at the stable /api/docs (gateway_site/urls.py)
    )
    api.add_router("/", tenancy.router)
    api.add_router("/", keys.router)
    api.add_router("/", platform.router)
    install_error_handlers(api)
    return api


management_api = build_api()
